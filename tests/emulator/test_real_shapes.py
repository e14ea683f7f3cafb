"""Shapes seen in real captures (GENESYS.md §10, issue 12), produced on request and SDK-conformant.

Not-responding agent legs and several legs of one user, wrapupRequired while connected, the
communication still connected in ACW, media-specific REST conversations with queue{id}/user{id},
and analytics without totalHits, with ivr/delay/system segments and ghost wrap-up segments.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sdk_schema import assert_conforms, check, roundtrip
from test_conversations import in_acw
from websockets.sync.client import connect

from emulator_client import RawClient
from genesys_emulator.testing import RunningEmulator

MEDIA_MODELS = {
    "call": ("calls", "CallConversation"),
    "callback": ("callbacks", "CallbackConversation"),
    "email": ("emails", "EmailConversation"),
    "message": ("messages", "MessageConversation"),
}
QUERY = {"interval": "2020-01-01T00:00:00Z/2100-01-01T00:00:00Z"}


def rest(raw: RawClient, token: str, conversation_id: str, array: str = "") -> Any:
    path = f"/api/v2/conversations/{array + '/' if array else ''}{conversation_id}"
    reply = raw.call("GET", path, token)
    assert reply.status == 200, reply.body
    return reply.body


def agents(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in body["participants"] if p["purpose"] == "agent"]


def comm(p: dict[str, Any]) -> dict[str, Any]:
    return next(
        c for a in ("calls", "callbacks", "chats", "emails", "messages") for c in p.get(a, [])
    )


def segments(body: dict[str, Any], participant_id: str) -> list[dict[str, Any]]:
    conv = body["conversations"][0]
    p = next(p for p in conv["participants"] if p["participantId"] == participant_id)
    return [s for session in p["sessions"] for s in session["segments"]]


def test_a_not_responding_leg_of_the_same_user(
    emulator: RunningEmulator, raw: RawClient, main_token: str, wait: Any
) -> None:
    started = in_acw(emulator, wait, not_responding=1, same_user=True)
    legs = started["participants"]
    assert [leg["responding"] for leg in legs] == [False, True]
    assert started["participantId"] == legs[1]["participantId"]
    body = rest(raw, main_token, started["conversationId"])
    assert_conforms(body, "Conversation")
    unanswered, answered = agents(body)
    assert unanswered["userId"] == answered["userId"]
    assert unanswered["wrapupRequired"] is False and "startAcwTime" not in unanswered
    assert comm(unanswered)["state"] == "disconnected" and "afterCallWork" not in comm(unanswered)
    assert comm(unanswered)["disconnectType"] == "transfer.noanswer"
    assert answered["wrapupRequired"] is True and "startAcwTime" in answered
    truth = emulator.ground_truth()
    assert [e["participantId"] for e in truth] == [answered["id"]]


def test_not_responding_legs_of_other_agents(
    emulator: RunningEmulator, raw: RawClient, main_token: str, wait: Any
) -> None:
    started = in_acw(emulator, wait, not_responding=2)
    body = rest(raw, main_token, started["conversationId"])
    users = [p["userId"] for p in agents(body)]
    assert len(users) == 3 and len(set(users)) == 3


def test_wrapup_required_while_connected_and_connected_in_acw(
    emulator: RunningEmulator, raw: RawClient, main_token: str, wait: Any
) -> None:
    talking = emulator.start_conversation(
        queue="Support", talk_s=30, outcome="nothing", wrapup_required_while_connected=True
    )

    def connected() -> dict[str, Any] | None:
        agent = agents(rest(raw, main_token, talking["conversationId"]))[0]
        return agent if comm(agent)["state"] == "connected" else None

    agent = wait(connected)
    assert agent["wrapupRequired"] is True and "startAcwTime" not in agent
    in_work = in_acw(emulator, wait, connected_in_acw=True)
    body = rest(raw, main_token, in_work["conversationId"])
    assert_conforms(body, "Conversation")
    agent = agents(body)[0]
    assert comm(agent)["state"] == "connected"
    assert comm(agent)["afterCallWork"]["state"] == "pending" and "startAcwTime" in agent


@pytest.mark.parametrize("media", sorted(MEDIA_MODELS))
def test_media_specific_conversations_use_queue_and_user_objects(
    emulator: RunningEmulator, raw: RawClient, main_token: str, wait: Any, media: str
) -> None:
    array, model = MEDIA_MODELS[media]
    started = in_acw(emulator, wait, media=media, not_responding=1, same_user=True)
    emulator.action(started["conversationId"], action="agent_wrapup")
    body = rest(raw, main_token, started["conversationId"], array)
    assert_conforms(body, model)
    assert roundtrip(body, model) == []
    for p in body["participants"]:
        assert "queueId" not in p and "userId" not in p
        assert set(p["queue"]) == {"id", "selfUri"}
    answered = next(p for p in body["participants"] if p["id"] == started["participantId"])
    assert answered["user"]["id"] == started["userId"]
    assert answered["queue"]["id"] == started["queueId"]
    assert answered["wrapup"]["code"] and answered["endAcwTime"]


def test_media_specific_conversation_errors(
    emulator: RunningEmulator, raw: RawClient, main_token: str, wait: Any
) -> None:
    started = in_acw(emulator, wait, media="email")
    wrong_media = raw.call(
        "GET", f"/api/v2/conversations/calls/{started['conversationId']}", main_token
    )
    assert (wrong_media.status, wrong_media.body["code"]) == (404, "not.found")
    token = raw.bearer("no-analytics", "no-analytics-secret")
    refused = raw.call("GET", f"/api/v2/conversations/emails/{started['conversationId']}", token)
    assert refused.status == 403


def test_analytics_capture_shapes(emulator: RunningEmulator, raw: RawClient, wait: Any) -> None:
    emulator.reset(analytics_capture_shapes=True)
    token = raw.bearer(emulator.client_id, emulator.client_secret)
    started = in_acw(emulator, wait, not_responding=1, same_user=True)
    emulator.action(started["conversationId"], action="agent_wrapup")
    body = raw.call("POST", "/api/v2/analytics/conversations/details/query", token, QUERY).body
    assert_conforms(body, "AnalyticsConversationQueryResponse")
    assert "totalHits" not in body and len(body["conversations"]) == 1
    kinds = {
        s["segmentType"]
        for p in body["conversations"][0]["participants"]
        for session in p["sessions"]
        for s in session["segments"]
    }
    assert {"system", "ivr", "delay", "alert", "interact", "wrapup"} <= kinds
    unanswered = started["participants"][0]["participantId"]
    alert, ghost = segments(body, unanswered)
    assert alert["segmentType"] == "alert" and alert["disconnectType"] == "noAnswerTransfer"
    assert ghost["segmentType"] == "wrapup" and ghost["segmentStart"] == ghost["segmentEnd"]
    assert ghost["wrapUpCode"] and ghost["disconnectType"] and ghost["errorCode"]
    closed = segments(body, started["participantId"])[-1]
    assert closed["segmentType"] == "wrapup" and closed["disconnectType"] == "endpoint"


def test_plain_analytics_keep_total_hits_and_no_ghost_segment(
    emulator: RunningEmulator, raw: RawClient, main_token: str, wait: Any
) -> None:
    started = in_acw(emulator, wait, not_responding=1)
    body = raw.call("POST", "/api/v2/analytics/conversations/details/query", main_token, QUERY).body
    assert body["totalHits"] == 1
    unanswered = started["participants"][0]["participantId"]
    assert [s["segmentType"] for s in segments(body, unanswered)] == ["alert"]


def test_traffic_with_not_responding_legs(
    emulator: RunningEmulator, raw: RawClient, main_token: str, wait: Any
) -> None:
    run = emulator.traffic(count=6, rate_per_s=1000, seed=3, not_responding=1.0, mix={"nothing": 1})
    progress = wait(
        lambda: (p := emulator.traffic_progress(run["trafficId"]))["started"] == 6 and p
    )
    for conversation_id in progress["conversationIds"]:
        body = wait(
            lambda cid=conversation_id: len(agents(b := rest(raw, main_token, cid))) == 2 and b
        )
        assert_conforms(body, "Conversation")


# What seed 11 drew before not-responding legs existed: seeded traffic (benchmarks, fault matrix)
# must stay reproducible when the new option is off.
SEED_11_DRAWS = [
    "Retention/messages",
    "Callbacks/calls",
    "Sales/emails",
    "Unwatched Queue/calls",
    "Support/messages",
    "Retention/chats",
    "Unwatched Queue/messages",
    "Support/messages",
]


@pytest.mark.parametrize("extra", [{}, {"not_responding": 0}])
def test_seeded_traffic_is_unchanged_when_not_responding_is_off(
    emulator: RunningEmulator, wait: Any, extra: dict[str, Any]
) -> None:
    run = emulator.traffic(count=8, rate_per_s=1000, seed=11, talk_s=[5, 5], **extra)
    ids = wait(
        lambda: (
            (p := emulator.traffic_progress(run["trafficId"]))["started"] == 8
            and p["conversationIds"]
        )
    )
    conversations = [emulator.control("GET", f"/_emulator/conversations/{c}") for c in ids]
    assert [_queue_and_media(c) for c in conversations] == SEED_11_DRAWS


def _queue_and_media(conversation: dict[str, Any]) -> str:
    """What the traffic generator drew for a conversation: its queue (the ACD leg) and media."""
    acd = conversation["participants"][1]
    media = next(a for a in ("calls", "callbacks", "chats", "emails", "messages") if a in acd)
    return f"{acd['name']}/{media}"


STRAY = ["additionalProperties", "queueName", "userUri"]


def test_stray_keys_are_added_on_request_and_only_then(
    emulator: RunningEmulator, raw: RawClient, main_token: str, wait: Any
) -> None:
    plain = in_acw(emulator, wait, media="chat")
    assert "additionalProperties" not in agents(rest(raw, main_token, plain["conversationId"]))[0]
    emulator.reset(capture_stray_keys=True)
    token = raw.bearer(emulator.client_id, emulator.client_secret)
    channel = raw.call("POST", "/api/v2/notifications/channels", token).body
    topic = f"v2.routing.queues.{plain['queueId']}.conversations"
    with connect(channel["connectUri"], max_size=None) as ws:
        ws.send(json.dumps({"message": "subscribe", "topics": [topic]}))
        started = in_acw(emulator, wait, media="call")
        event = next(
            f["eventBody"]
            for f in (json.loads(ws.recv(timeout=5)) for _ in range(100))
            if f.get("eventBody", {}).get("id") == started["conversationId"]
        )
    body = rest(raw, token, started["conversationId"])
    for doc, model in ((event, "QueueConversationEventTopicConversation"), (body, "Conversation")):
        agent = agents(doc)[0]
        assert agent["additionalProperties"] == {} and agent["chats"] == []
        assert agent["calls"][0]["additionalProperties"] == {}
        assert check(doc, model, ignore_keys=STRAY) == []
    media = rest(raw, token, started["conversationId"], "calls")
    answered = next(p for p in media["participants"] if p["id"] == started["participantId"])
    assert answered["userUri"] == f"/api/v2/users/{started['userId']}"
    assert answered["queueName"] == "Support"
    assert check(media, "CallConversation", ignore_keys=STRAY) == []
