"""Reading conversations and the wrap-up rules: every breach answers like the platform."""

from __future__ import annotations

from typing import Any

import PureCloudPlatformClientV2 as sdk_module
import pytest
from PureCloudPlatformClientV2.rest import ApiException

from emulator_client import RawClient
from genesys_emulator.testing import RunningEmulator

MEDIA_ARRAYS = {
    "call": "calls",
    "callback": "callbacks",
    "chat": "chats",
    "email": "emails",
    "message": "messages",
}


def codes_of(emulator: RunningEmulator, queue: str) -> dict[str, str]:
    q = next(q for q in emulator.control("GET", "/_emulator/org")["queues"] if q["name"] == queue)
    return {c["name"]: c["id"] for c in q["codes"]}


def in_acw(
    emulator: RunningEmulator, wait: Any, queue: str = "Support", **kw: Any
) -> dict[str, Any]:
    started = emulator.start_conversation(queue=queue, talk_s=0.01, outcome="nothing", **kw)
    wait(
        lambda: any(e["participantId"] == started["participantId"] for e in emulator.ground_truth())
    )
    return started


def truth(emulator: RunningEmulator, participant_id: str) -> dict[str, Any]:
    return next(e for e in emulator.ground_truth() if e["participantId"] == participant_id)


def participant_path(started: dict[str, Any], array: str | None = None) -> str:
    media = f"{array}/" if array else ""
    conv, pid = started["conversationId"], started["participantId"]
    return f"/api/v2/conversations/{media}{conv}/participants/{pid}"


def patch(raw: RawClient, token: str, started: dict[str, Any], body: object) -> Any:
    path = (
        f"/api/v2/conversations/{started['conversationId']}/participants/{started['participantId']}"
    )
    return raw.call("PATCH", path, token, body)


def test_get_conversation_in_acw_through_the_sdk(
    emulator: RunningEmulator, sdk: Any, wait: Any
) -> None:
    started = in_acw(emulator, wait)
    conv = sdk_module.ConversationsApi(sdk).get_conversation(started["conversationId"])
    purposes = [p.purpose for p in conv.participants]
    assert purposes == ["customer", "acd", "agent"]
    agent = conv.participants[2]
    assert agent.user_id == started["userId"] and agent.queue_id == started["queueId"]
    assert agent.wrapup_required and agent.wrapup_prompt == "mandatory"
    assert agent.start_acw_time is not None and agent.end_acw_time is None
    assert agent.calls[0].after_call_work.state == "pending"
    assert agent.wrapup is None and agent.wrapup_skipped is False


def test_sdk_patch_applies_the_code_and_ends_acw(
    emulator: RunningEmulator, sdk: Any, wait: Any
) -> None:
    started = in_acw(emulator, wait)
    code_id = codes_of(emulator, "Support")["Resolved"]
    body = sdk_module.MediaParticipantRequest()
    body.wrapup = sdk_module.Wrapup()
    body.wrapup.code, body.wrapup.name, body.wrapup.notes = code_id, "Resolved", "by test"
    api = sdk_module.ConversationsApi(sdk)
    api.patch_conversation_participant(started["conversationId"], started["participantId"], body)
    agent = api.get_conversation(started["conversationId"]).participants[2]
    assert agent.wrapup.code == code_id and agent.wrapup.notes == "by test"
    assert agent.end_acw_time == agent.wrapup.end_time
    assert agent.calls[0].after_call_work.state == "complete"
    assert agent.wrapup_required is True
    entry = truth(emulator, started["participantId"])
    assert entry["wrapup"]["by"] == "api" and entry["apiWrapupCalls"] == 1


@pytest.mark.parametrize("media", ["call", "callback", "email", "message"])
def test_media_specific_patch_and_post_wrapup(
    emulator: RunningEmulator, raw: RawClient, main_token: str, wait: Any, media: str
) -> None:
    code_id = codes_of(emulator, "Support")["Escalated"]
    array = MEDIA_ARRAYS[media]
    first = in_acw(emulator, wait, media=media)
    path = participant_path(first, array)
    assert raw.call("PATCH", path, main_token, {"wrapup": {"code": code_id}}).status == 202
    second = in_acw(emulator, wait, media=media)
    post = (
        f"/api/v2/conversations/{array}/{second['conversationId']}/participants/"
        f"{second['participantId']}/communications/{second['communicationId']}/wrapup"
    )
    assert raw.call("POST", post, main_token, {"code": code_id, "notes": "n"}).status == 202
    assert truth(emulator, second["participantId"])["wrapup"]["code"] == code_id


def test_chats_have_no_media_specific_wrapup_route(
    emulator: RunningEmulator, raw: RawClient, main_token: str, wait: Any
) -> None:
    started = in_acw(emulator, wait, media="chat")
    reply = raw.call("PATCH", participant_path(started, "chats"), main_token, {"wrapup": {}})
    assert reply.status == 404
    code_id = codes_of(emulator, "Support")["Resolved"]
    assert (
        raw.call(
            "PATCH", participant_path(started), main_token, {"wrapup": {"code": code_id}}
        ).status
        == 202
    )


def test_media_mismatch_is_404(
    emulator: RunningEmulator, raw: RawClient, main_token: str, wait: Any
) -> None:
    started = in_acw(emulator, wait, media="email")
    path = participant_path(started, "calls")
    reply = raw.call("PATCH", path, main_token, {"wrapup": {"code": "x"}})
    assert (reply.status, reply.body["code"]) == (404, "not.found")


def test_wrong_communication_is_404(
    emulator: RunningEmulator, raw: RawClient, main_token: str, wait: Any
) -> None:
    started = in_acw(emulator, wait)
    path = participant_path(started, "calls") + "/communications/nope/wrapup"
    assert raw.call("POST", path, main_token, {"code": "x"}).status == 404


def test_code_must_be_assigned_to_the_queue(
    emulator: RunningEmulator, raw: RawClient, main_token: str, wait: Any
) -> None:
    started = in_acw(emulator, wait)
    foreign = codes_of(emulator, "Sales")["Sale closed"]
    reply = patch(raw, main_token, started, {"wrapup": {"code": foreign}})
    assert (reply.status, reply.body["code"]) == (400, "bad.request")
    assert truth(emulator, started["participantId"])["wrapup"]["by"] is None


@pytest.mark.parametrize(
    "body", [{"wrapup": {}}, {"wrapup": {"name": "Resolved"}}, {}, {"wrapup": "x"}]
)
def test_missing_code_is_400(
    emulator: RunningEmulator, raw: RawClient, main_token: str, wait: Any, body: object
) -> None:
    started = in_acw(emulator, wait)
    reply = patch(raw, main_token, started, body)
    assert (reply.status, reply.body["code"]) == (400, "bad.request")


def test_other_fields_are_refused_with_403(
    emulator: RunningEmulator, raw: RawClient, main_token: str, wait: Any
) -> None:
    started = in_acw(emulator, wait)
    code_id = codes_of(emulator, "Support")["Resolved"]
    reply = patch(raw, main_token, started, {"wrapup": {"code": code_id}, "state": "disconnected"})
    assert (reply.status, reply.body["code"]) == (403, "not.authorized")
    assert "state" in reply.body["message"]


def test_only_agent_participants_can_be_wrapped_up(
    emulator: RunningEmulator, raw: RawClient, main_token: str, sdk: Any, wait: Any
) -> None:
    started = in_acw(emulator, wait)
    conv = sdk_module.ConversationsApi(sdk).get_conversation(started["conversationId"])
    customer = conv.participants[0].id
    code_id = codes_of(emulator, "Support")["Resolved"]
    reply = patch(
        raw, main_token, {**started, "participantId": customer}, {"wrapup": {"code": code_id}}
    )
    assert (reply.status, reply.body["code"]) == (400, "bad.request")


def test_not_yet_in_acw_is_400(emulator: RunningEmulator, raw: RawClient, main_token: str) -> None:
    started = emulator.start_conversation(queue="Support", talk_s=5, outcome="nothing")
    code_id = codes_of(emulator, "Support")["Resolved"]
    reply = patch(raw, main_token, started, {"wrapup": {"code": code_id}})
    assert (reply.status, reply.body["code"]) == (400, "bad.request")


def test_already_coded_or_ended_is_400(
    emulator: RunningEmulator, raw: RawClient, main_token: str, wait: Any
) -> None:
    started = in_acw(emulator, wait)
    code_id = codes_of(emulator, "Support")["Resolved"]
    assert patch(raw, main_token, started, {"wrapup": {"code": code_id}}).status == 202
    again = patch(raw, main_token, started, {"wrapup": {"code": code_id}})
    assert (again.status, again.body["code"]) == (400, "bad.request")
    ended = in_acw(emulator, wait)
    emulator.action(ended["conversationId"], action="end_acw")
    assert patch(raw, main_token, ended, {"wrapup": {"code": code_id}}).status == 400
    assert truth(emulator, started["participantId"])["apiWrapupCalls"] == 2


def test_missing_wrapup_permission_names_it(
    emulator: RunningEmulator, raw: RawClient, wait: Any
) -> None:
    started = in_acw(emulator, wait)
    token = raw.bearer("no-wrapup", "no-wrapup-secret")
    reply = patch(raw, token, started, {"wrapup": {"code": "x"}})
    assert (reply.status, reply.body["code"]) == (403, "not.authorized")
    assert "conversation:participant:wrapup" in reply.body["message"]
    assert truth(emulator, started["participantId"])["apiWrapupCalls"] == 1


def test_view_permission_for_get(emulator: RunningEmulator, raw: RawClient, wait: Any) -> None:
    started = in_acw(emulator, wait)
    token = raw.bearer("no-analytics", "no-analytics-secret")
    reply = raw.call("GET", f"/api/v2/conversations/{started['conversationId']}", token)
    assert reply.status == 403 and "conversation:communication:view" in reply.body["message"]


def test_invisible_queue_conversation_is_forbidden(
    emulator: RunningEmulator, raw: RawClient, wait: Any
) -> None:
    started = in_acw(emulator, wait, queue="Sales")
    token = raw.bearer("support-only", "support-only-secret")
    reply = raw.call("GET", f"/api/v2/conversations/{started['conversationId']}", token)
    assert (reply.status, reply.body["code"]) == (403, "not.authorized")


def test_unknown_conversation_and_participant_are_404(
    emulator: RunningEmulator, raw: RawClient, main_token: str, wait: Any
) -> None:
    assert raw.call("GET", "/api/v2/conversations/nope", main_token).body["code"] == "not.found"
    started = in_acw(emulator, wait)
    reply = patch(raw, main_token, {**started, "participantId": "nope"}, {"wrapup": {"code": "x"}})
    assert (reply.status, reply.body["code"]) == (404, "not.found")


def test_user_context_option_and_fault(
    emulator: RunningEmulator, raw: RawClient, wait: Any
) -> None:
    expected = (
        "This request requires a user context. Client credentials cannot be used for requests "
        "to this resource."
    )
    emulator.reset(require_user_context=True)
    token = raw.bearer(emulator.client_id, emulator.client_secret)
    started = in_acw(emulator, wait)
    code_id = codes_of(emulator, "Support")["Resolved"]
    reply = patch(raw, token, started, {"wrapup": {"code": code_id}})
    assert (reply.status, reply.body["message"], reply.body["code"]) == (
        400,
        expected,
        "bad.request",
    )
    emulator.reset()
    token = raw.bearer(emulator.client_id, emulator.client_secret)
    started = in_acw(emulator, wait)
    emulator.fault(
        kind="http",
        method="PATCH",
        path="/api/v2/conversations/*/participants/*",
        status=403,
        body="user_context",
    )
    reply = patch(raw, token, started, {"wrapup": {"code": code_id}})
    assert (reply.status, reply.body["message"], reply.body["code"]) == (
        403,
        expected,
        "not.authorized",
    )
    assert patch(raw, token, started, {"wrapup": {"code": code_id}}).status == 202


def test_participant_wrapup_codes(emulator: RunningEmulator, sdk: Any, wait: Any) -> None:
    started = in_acw(emulator, wait, queue="Sales")
    codes = sdk_module.ConversationsApi(sdk).get_conversation_participant_wrapupcodes(
        started["conversationId"], started["participantId"]
    )
    assert {c.name for c in codes} == set(codes_of(emulator, "Sales"))


def test_sdk_errors_carry_the_error_body(emulator: RunningEmulator, sdk: Any) -> None:
    with pytest.raises(ApiException) as caught:
        sdk_module.ConversationsApi(sdk).get_conversation("nope")
    assert caught.value.status == 404
    assert '"contextId"' in caught.value.body
