"""Issue 11's platform behaviours: writes over a finished wrap-up (option) and events lost silently."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sdk_schema import assert_conforms
from test_conversations import codes_of, in_acw, patch, truth
from websockets.sync.client import ClientConnection, connect

from emulator_client import RawClient
from genesys_emulator.testing import RunningEmulator

CHANNELS = "/api/v2/notifications/channels"


def wrapup(code: str) -> dict[str, Any]:
    return {"wrapup": {"code": code}}


def agent_coded(emulator: RunningEmulator, wait: Any, code: str) -> dict[str, Any]:
    started = in_acw(emulator, wait)
    emulator.action(started["conversationId"], action="agent_wrapup", code=code)
    return started


# --- overwrite_allowed ---------------------------------------------------------------------------


def test_by_default_a_code_over_an_agent_code_is_refused(
    emulator: RunningEmulator, raw: RawClient, main_token: str, wait: Any
) -> None:
    codes = codes_of(emulator, "Support")
    started = agent_coded(emulator, wait, "Resolved")
    assert patch(raw, main_token, started, wrapup(codes["Escalated"])).status == 400
    assert [h["by"] for h in truth(emulator, started["participantId"])["history"]] == ["agent"]


def test_overwrite_allowed_lets_the_last_write_win_and_records_it(
    emulator: RunningEmulator, raw: RawClient, wait: Any
) -> None:
    emulator.reset(overwrite_allowed=True)
    token = raw.bearer(emulator.client_id, emulator.client_secret)
    codes = codes_of(emulator, "Support")
    started = agent_coded(emulator, wait, "Resolved")
    ended = truth(emulator, started["participantId"])["acwEndedAt"]
    assert patch(raw, token, started, wrapup(codes["Escalated"])).status == 202
    entry = truth(emulator, started["participantId"])
    assert [(h["by"], h["code"]) for h in entry["history"]] == [
        ("agent", codes["Resolved"]),
        ("api", codes["Escalated"]),
    ]
    assert (entry["wrapup"]["by"], entry["wrapup"]["code"]) == ("api", codes["Escalated"])
    assert entry["wrapup"]["at"] == entry["history"][-1]["at"]
    assert entry["acwEndedAt"] == ended  # ACW ended when the agent coded, not at the overwrite
    rest = raw.call("GET", f"/api/v2/conversations/{started['conversationId']}", token).body
    assert_conforms(rest, "Conversation")
    agent = next(p for p in rest["participants"] if p["id"] == started["participantId"])
    assert agent["wrapup"]["code"] == codes["Escalated"]


@pytest.mark.parametrize("ending", ["end_acw", "skip"])
def test_overwrite_allowed_accepts_a_code_after_acw_ended_without_one(
    emulator: RunningEmulator, raw: RawClient, wait: Any, ending: str
) -> None:
    emulator.reset(overwrite_allowed=True)
    token = raw.bearer(emulator.client_id, emulator.client_secret)
    started = in_acw(emulator, wait, queue="Sales")
    emulator.action(started["conversationId"], action=ending)
    code = codes_of(emulator, "Sales")["Quote sent"]
    assert patch(raw, token, started, wrapup(code)).status == 202
    entry = truth(emulator, started["participantId"])
    assert (entry["wrapup"]["by"], entry["wrapup"]["code"]) == ("api", code)


def test_overwrite_allowed_accepts_a_second_api_write(
    emulator: RunningEmulator, raw: RawClient, wait: Any
) -> None:
    emulator.reset(overwrite_allowed=True)
    token = raw.bearer(emulator.client_id, emulator.client_secret)
    codes = codes_of(emulator, "Support")
    started = in_acw(emulator, wait)
    assert patch(raw, token, started, wrapup(codes["Resolved"])).status == 202
    assert patch(raw, token, started, wrapup(codes["Escalated"])).status == 202
    entry = truth(emulator, started["participantId"])
    assert entry["apiWrapupWrites"] == 2
    assert [h["by"] for h in entry["history"]] == ["api", "api"]


def test_overwrite_allowed_still_needs_acw_to_have_started(
    emulator: RunningEmulator, raw: RawClient
) -> None:
    emulator.reset(overwrite_allowed=True)
    token = raw.bearer(emulator.client_id, emulator.client_secret)
    started = emulator.start_conversation(queue="Support", talk_s=30, outcome="nothing")
    code = codes_of(emulator, "Support")["Resolved"]
    reply = patch(raw, token, started, wrapup(code))
    assert (reply.status, reply.body["code"]) == (400, "bad.request")


# --- lose_events ---------------------------------------------------------------------------------


def topic_of(emulator: RunningEmulator, name: str) -> str:
    queue = next(
        q for q in emulator.control("GET", "/_emulator/org")["queues"] if q["name"] == name
    )
    return f"v2.routing.queues.{queue['id']}.conversations"


@pytest.fixture
def stream(
    emulator: RunningEmulator, raw: RawClient, main_token: str
) -> Iterator[ClientConnection]:
    """A socket subscribed to Support and Sales."""
    channel = raw.call("POST", CHANNELS, main_token).body
    topics = [{"id": topic_of(emulator, "Support")}, {"id": topic_of(emulator, "Sales")}]
    raw.call("PUT", f"{CHANNELS}/{channel['id']}/subscriptions", main_token, topics)
    with connect(channel["connectUri"], max_size=None) as ws:
        yield ws


def frames_until(
    ws: ClientConnection, conversation_id: str, predicate: Any
) -> list[dict[str, Any]]:
    """Frames (heartbeats included) until a snapshot of this conversation satisfies predicate."""
    received = []
    deadline = time.monotonic() + 5
    while True:
        frame = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        received.append(frame)
        body = frame.get("eventBody", {})
        if body.get("id") == conversation_id and predicate(body):
            return received


def acw_started(body: dict[str, Any]) -> bool:
    return any("startAcwTime" in p for p in body["participants"] if p["purpose"] == "agent")


def snapshots(received: list[dict[str, Any]], conversation_id: str) -> list[dict[str, Any]]:
    return [f["eventBody"] for f in received if f.get("eventBody", {}).get("id") == conversation_id]


def test_lost_events_are_never_delivered_while_heartbeats_go_on(
    emulator: RunningEmulator, stream: ClientConnection
) -> None:
    # A conversation publishes: created (alerting), answered (connected), hung up (ACW).
    emulator.fault(kind="lose_events", count=2)
    started = emulator.start_conversation(queue="Support", talk_s=0.5, outcome="nothing")
    received = frames_until(stream, started["conversationId"], acw_started)
    seen = snapshots(received, started["conversationId"])
    assert len(seen) == 1 and acw_started(seen[0])  # the two before ACW were lost
    assert any(f.get("eventBody", {}).get("message") == "WebSocket Heartbeat" for f in received)
    assert emulator.control("GET", "/_emulator/faults")["eventLosses"] == []


def test_lost_events_can_be_limited_to_one_queue(
    emulator: RunningEmulator, stream: ClientConnection
) -> None:
    emulator.fault(kind="lose_events", count=10, queue="Support")
    sales = emulator.start_conversation(queue="Sales", talk_s=0.05, outcome="nothing")
    received = frames_until(stream, sales["conversationId"], acw_started)
    assert len(snapshots(received, sales["conversationId"])) == 3
    pending = emulator.control("GET", "/_emulator/faults")["eventLosses"]
    assert pending == [
        {"kind": "lose_events", "remaining": 10, "topic": topic_of(emulator, "Support")}
    ]


def test_an_event_no_socket_would_receive_does_not_count(
    emulator: RunningEmulator, wait: Any
) -> None:
    emulator.fault(kind="lose_events", count=1)
    in_acw(emulator, wait)
    assert emulator.control("GET", "/_emulator/faults")["eventLosses"][0]["remaining"] == 1


def test_clearing_faults_clears_event_losses(emulator: RunningEmulator) -> None:
    emulator.fault(kind="lose_events", count=3, queue="Sales")
    assert emulator.control("DELETE", "/_emulator/faults") == {"pending": [], "eventLosses": []}


@pytest.mark.parametrize("spec", [{"count": 0}, {"count": "2"}, {"count": 1, "queue": "Nope"}])
def test_bad_lose_events_input_is_a_400(emulator: RunningEmulator, spec: dict[str, Any]) -> None:
    from genesys_emulator.testing import ControlPlaneError

    with pytest.raises(ControlPlaneError) as caught:
        emulator.fault(kind="lose_events", **spec)
    assert caught.value.status == 400


# --- acw_state_noise -----------------------------------------------------------------------------


def agent_acw(body: dict[str, Any]) -> list[dict[str, Any] | None]:
    """The agent legs' afterCallWork, as the event shows it."""
    return [
        call.get("afterCallWork")
        for p in body["participants"]
        if p["purpose"] == "agent"
        for call in p.get("calls", [])
    ]


@pytest.mark.parametrize("state", ["unknown", "somethingNew", None])
def test_acw_state_noise_changes_the_events_not_the_conversation(
    emulator: RunningEmulator, stream: ClientConnection, raw: RawClient, main_token: str, state: Any
) -> None:
    emulator.fault(kind="acw_state_noise", count=10, state=state)
    started = emulator.start_conversation(queue="Support", talk_s=0.05, outcome="nothing")
    cid = started["conversationId"]
    received = frames_until(stream, cid, acw_started)
    shown = agent_acw(snapshots(received, cid)[-1])
    assert shown == [None] if state is None else [a and a["state"] for a in shown] == [state]
    rest = raw.call("GET", f"/api/v2/conversations/{cid}", main_token).body
    agent = next(p for p in rest["participants"] if p["purpose"] == "agent")
    assert agent["calls"][0]["afterCallWork"]["state"] == "pending", "REST keeps the truth"
    emulator.control("DELETE", "/_emulator/faults")
