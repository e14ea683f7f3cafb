"""The notification socket's own protocol, driven by a raw WebSocket client with no REST subscription.

Shapes from the issue and the public clients written against the real service:
subscribe/unsubscribe messages with an optional correlationId, answered by control frames without a
topicName (`result` 200 / 400 / 404). REST and socket subscriptions are one list.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from emulator_client import RawClient
from genesys_emulator.testing import RunningEmulator

CHANNELS = "/api/v2/notifications/channels"
UNKNOWN_QUEUE_TOPIC = "v2.routing.queues.0b5e9a7c-6d1f-4c2e-9a3b-7f8e1d2c3b4a.conversations"


def queue_topic(emulator: RunningEmulator, name: str) -> str:
    queues = emulator.control("GET", "/_emulator/org")["queues"]
    qid = next(q["id"] for q in queues if q["name"] == name)
    return f"v2.routing.queues.{qid}.conversations"


def frames(ws: ClientConnection, timeout: float = 5.0) -> Iterator[dict[str, Any]]:
    """Every frame until the deadline (heartbeats included)."""
    deadline = time.monotonic() + timeout
    while True:
        yield json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))


def first(ws: ClientConnection, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    return next(f for f in frames(ws) if match(f))


def control_frame(frame: dict[str, Any]) -> bool:
    return "result" in frame and "topicName" not in frame


def conversation_event(conversation_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f.get("eventBody", {}).get("id") == conversation_id


def send(ws: ClientConnection, message: object) -> dict[str, Any]:
    """Send one client message and return the control frame that answers it."""
    ws.send(message if isinstance(message, str) else json.dumps(message))
    return first(ws, control_frame)


def subscribe(ws: ClientConnection, topics: list[str], cid: str = "a1b2c3d4e5f6g7h8") -> Any:
    return send(ws, {"message": "subscribe", "topics": topics, "correlationId": cid})


def rest_topics(raw: RawClient, token: str, channel_id: str) -> list[str]:
    reply = raw.call("GET", f"{CHANNELS}/{channel_id}/subscriptions", token)
    return [t["id"] for t in reply.body["entities"]]


def channel_state(emulator: RunningEmulator, channel_id: str) -> dict[str, Any]:
    listing = emulator.control("GET", "/_emulator/channels")["channels"]
    return next(c for c in listing if c["id"] == channel_id)


@pytest.fixture
def channel(raw: RawClient, main_token: str) -> dict[str, Any]:
    reply = raw.call("POST", CHANNELS, main_token)
    assert reply.status == 200
    return dict(reply.body)


@pytest.fixture
def ws(channel: dict[str, Any]) -> Iterator[ClientConnection]:
    with connect(channel["connectUri"], max_size=None) as socket:
        yield socket


def test_subscribe_over_the_socket_is_acknowledged_and_events_arrive(
    emulator: RunningEmulator, ws: ClientConnection
) -> None:
    support = queue_topic(emulator, "Support")
    ack = subscribe(ws, [support], cid="Xy12Xy12Xy12Xy12")
    assert ack == {"result": "200", "status": "subscribed", "correlationId": "Xy12Xy12Xy12Xy12"}
    started = emulator.start_conversation(queue="Support", outcome="nothing")
    event = first(ws, conversation_event(started["conversationId"]))
    assert event["topicName"] == support
    assert set(event) == {"topicName", "version", "eventBody", "metadata"}


def test_the_ack_omits_the_correlation_id_when_none_was_sent(
    emulator: RunningEmulator, ws: ClientConnection
) -> None:
    ack = send(ws, {"message": "subscribe", "topics": [queue_topic(emulator, "Sales")]})
    assert ack == {"result": "200", "status": "subscribed"}


def test_socket_and_rest_subscriptions_are_one_list(
    emulator: RunningEmulator,
    raw: RawClient,
    main_token: str,
    channel: dict[str, Any],
    ws: ClientConnection,
) -> None:
    support, sales = queue_topic(emulator, "Support"), queue_topic(emulator, "Sales")
    raw.call("PUT", f"{CHANNELS}/{channel['id']}/subscriptions", main_token, [{"id": support}])
    assert subscribe(ws, [sales, support])["result"] == "200"
    assert rest_topics(raw, main_token, channel["id"]) == [support, sales]
    assert send(ws, {"message": "unsubscribe", "topics": [support], "correlationId": "u1"}) == {
        "result": "200",
        "status": "unsubscribed",
        "correlationId": "u1",
    }
    assert rest_topics(raw, main_token, channel["id"]) == [sales]


@pytest.mark.parametrize("topic", [UNKNOWN_QUEUE_TOPIC, "v2.users.someone.presence", "not a topic"])
def test_a_refused_topic_gets_a_400_frame_and_nothing_is_subscribed(
    emulator: RunningEmulator,
    raw: RawClient,
    main_token: str,
    channel: dict[str, Any],
    ws: ClientConnection,
    topic: str,
) -> None:
    support = queue_topic(emulator, "Support")
    refusal = subscribe(ws, [support, topic], cid="r1")
    assert refusal["result"] == "400" and refusal["status"] == "failure"
    assert refusal["correlationId"] == "r1"
    assert topic in refusal["message"]
    assert rest_topics(raw, main_token, channel["id"]) == []


def test_a_topic_the_client_may_not_see_is_refused(
    emulator: RunningEmulator, raw: RawClient
) -> None:
    token = raw.bearer("support-only", "support-only-secret")
    channel = raw.call("POST", CHANNELS, token).body
    with connect(channel["connectUri"]) as socket:
        refusal = subscribe(socket, [queue_topic(emulator, "Sales")])
        assert (refusal["result"], refusal["status"]) == ("400", "failure")
        assert subscribe(socket, [queue_topic(emulator, "Support")])["result"] == "200"


def test_more_than_the_topic_limit_is_refused(emulator: RunningEmulator, raw: RawClient) -> None:
    emulator.reset(max_topics_per_channel=1)
    token = raw.bearer(emulator.client_id, emulator.client_secret)
    channel = raw.call("POST", CHANNELS, token).body
    with connect(channel["connectUri"]) as socket:
        assert subscribe(socket, [queue_topic(emulator, "Support")])["result"] == "200"
        refusal = subscribe(socket, [queue_topic(emulator, "Sales")])
        assert (refusal["result"], refusal["status"]) == ("400", "failure")
        assert "at most 1 topics" in refusal["message"]


@pytest.mark.parametrize(
    ("message", "cid"),
    [
        ("{not json", None),
        ("[1, 2]", None),
        ({"message": "subscribe", "topics": "v2.x", "correlationId": "m1"}, "m1"),
        ({"message": "dance", "correlationId": "m2"}, "m2"),
        ({"message": "subscribe", "topics": [], "correlationId": 7}, None),
    ],
)
def test_a_malformed_message_gets_a_400_error_frame(
    ws: ClientConnection, message: object, cid: str | None
) -> None:
    answer = send(ws, message)
    assert (answer["result"], answer["status"]) == ("400", "error")
    assert isinstance(answer["message"], str) and answer["message"]
    assert answer.get("correlationId") == cid


def test_unsubscribing_stops_the_events(emulator: RunningEmulator, ws: ClientConnection) -> None:
    support, sales = queue_topic(emulator, "Support"), queue_topic(emulator, "Sales")
    subscribe(ws, [support, sales])
    assert send(ws, {"message": "unsubscribe", "topics": [support]})["status"] == "unsubscribed"
    dropped = emulator.start_conversation(queue="Support", outcome="nothing")
    kept = emulator.start_conversation(queue="Sales", outcome="nothing")
    # Frames leave in publication order: Sales' first snapshot comes after Support's would have.
    seen = []
    for frame in frames(ws):
        seen.append(frame.get("eventBody", {}).get("id"))
        if seen[-1] == kept["conversationId"]:
            break
    assert dropped["conversationId"] not in seen


def test_resubscribing_over_the_socket_extends_the_channel_life(
    emulator: RunningEmulator, raw: RawClient
) -> None:
    emulator.reset(channel_lifetime_s=5)
    token = raw.bearer(emulator.client_id, emulator.client_secret)
    channel = raw.call("POST", CHANNELS, token).body
    support = queue_topic(emulator, "Support")
    with connect(channel["connectUri"]) as socket:
        subscribe(socket, [support])
        deadline = time.monotonic() + 5
        while channel_state(emulator, channel["id"])["expiresInS"] > 4.4:
            assert time.monotonic() < deadline
            socket.send(json.dumps({"message": "ping"}))
            first(socket, lambda f: f.get("eventBody", {}).get("message") == "pong")
        before = raw.call("GET", CHANNELS, token).body["entities"][0]["expires"]
        assert subscribe(socket, [support])["result"] == "200"
        assert channel_state(emulator, channel["id"])["expiresInS"] > 4.5
        after = raw.call("GET", CHANNELS, token).body["entities"][0]["expires"]
    assert after > before


def test_unsubscribe_does_not_extend_the_channel_life(
    emulator: RunningEmulator, raw: RawClient
) -> None:
    emulator.reset(channel_lifetime_s=5)
    token = raw.bearer(emulator.client_id, emulator.client_secret)
    channel = raw.call("POST", CHANNELS, token).body
    with connect(channel["connectUri"]) as socket:
        before = channel_state(emulator, channel["id"])["expiresInS"]
        send(socket, {"message": "unsubscribe", "topics": []})
        assert channel_state(emulator, channel["id"])["expiresInS"] <= before


def test_ping_is_still_answered_with_a_pong(ws: ClientConnection) -> None:
    ws.send(json.dumps({"message": "ping", "correlationId": "p1"}))
    pong = first(ws, lambda f: f.get("topicName") == "channel.metadata" and "pong" in str(f))
    assert pong == {"topicName": "channel.metadata", "eventBody": {"message": "pong"}}


# --- the channel is gone: a result 404 frame, then the close -----------------------------------


def wait_close_code(ws: ClientConnection) -> tuple[list[dict[str, Any]], int | None]:
    """Frames received until the server closes the socket, and the close code."""
    received = []
    with pytest.raises(ConnectionClosed) as closed:
        received.extend(frames(ws))
    return received, closed.value.rcvd.code if closed.value.rcvd else None


def test_an_expired_channel_sends_a_404_frame_before_closing(
    emulator: RunningEmulator, ws: ClientConnection
) -> None:
    subscribe(ws, [])
    emulator.fault(kind="expire_channels")
    received, code = wait_close_code(ws)
    gone = [f for f in received if control_frame(f)]
    assert len(gone) == 1 and gone[0]["result"] == "404"
    assert set(gone[0]) == {"result", "message"} and "expired" in gone[0]["message"]
    assert code == 1001


def test_an_expired_token_sends_a_404_frame_before_closing(
    emulator: RunningEmulator, ws: ClientConnection
) -> None:
    subscribe(ws, [])
    emulator.fault(kind="expire_tokens")
    received, _ = wait_close_code(ws)
    assert [f["result"] for f in received if control_frame(f)] == ["404"]


def test_gone_frames_can_be_switched_off(emulator: RunningEmulator, raw: RawClient) -> None:
    emulator.reset(channel_gone_frames=False)
    token = raw.bearer(emulator.client_id, emulator.client_secret)
    channel = raw.call("POST", CHANNELS, token).body
    with connect(channel["connectUri"]) as socket:
        subscribe(socket, [])
        emulator.fault(kind="expire_channels")
        received, code = wait_close_code(socket)
    assert [f for f in received if control_frame(f)] == [] and code == 1001


def test_an_evicted_channel_sends_a_404_frame(raw: RawClient, main_token: str) -> None:
    channels = [raw.call("POST", CHANNELS, main_token).body for _ in range(20)]
    with connect(channels[0]["connectUri"]) as oldest:
        subscribe(oldest, [])
        # Every channel connected, the oldest least recently used: it is the one evicted.
        with ExitStack() as others:
            for other in channels[1:]:
                others.enter_context(connect(other["connectUri"]))
            raw.call("POST", CHANNELS, main_token)
            received, code = wait_close_code(oldest)
    assert [f["result"] for f in received if control_frame(f)] == ["404"] and code == 1000


# --- idle closes -------------------------------------------------------------------------------


def test_idle_close_fault_closes_with_1001_and_keeps_the_channel(
    emulator: RunningEmulator,
    raw: RawClient,
    main_token: str,
    channel: dict[str, Any],
    ws: ClientConnection,
) -> None:
    subscribe(ws, [])
    assert emulator.fault(kind="idle_close")["faults"][0]["closed"] == 1
    received, code = wait_close_code(ws)
    assert code == 1001 and [f for f in received if control_frame(f)] == []
    assert raw.call("HEAD", f"{CHANNELS}/{channel['id']}", main_token).status == 200


def test_idle_close_option_closes_a_silent_socket(
    emulator: RunningEmulator, raw: RawClient
) -> None:
    emulator.reset(idle_close_s=0.3)
    token = raw.bearer(emulator.client_id, emulator.client_secret)
    channel = raw.call("POST", CHANNELS, token).body
    with connect(channel["connectUri"]) as socket:
        _, code = wait_close_code(socket)
    assert code == 1001
    assert raw.call("HEAD", f"{CHANNELS}/{channel['id']}", token).status == 200
