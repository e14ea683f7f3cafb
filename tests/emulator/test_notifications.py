"""Channels, subscriptions and the streaming socket: limits, heartbeats, expiry, replacement."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from emulator_client import RawClient
from genesys_emulator.testing import RunningEmulator

CHANNELS = "/api/v2/notifications/channels"


def queue_id(emulator: RunningEmulator, name: str) -> str:
    queues = emulator.control("GET", "/_emulator/org")["queues"]
    return next(q["id"] for q in queues if q["name"] == name)


def topic(qid: str) -> dict[str, str]:
    return {"id": f"v2.routing.queues.{qid}.conversations"}


def open_channel(raw: RawClient, token: str) -> dict[str, Any]:
    reply = raw.call("POST", CHANNELS, token)
    assert reply.status == 200
    return dict(reply.body)


def next_frame(
    ws: ClientConnection, match: Callable[[dict[str, Any]], bool], timeout: float = 3.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if match(frame):
            return dict(frame)


def is_topic(prefix: str) -> Callable[[dict[str, Any]], bool]:
    return lambda frame: str(frame.get("topicName", "")).startswith(prefix)


def wait_closed(ws: ClientConnection, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    with pytest.raises(ConnectionClosed):
        while time.monotonic() < deadline:
            ws.recv(timeout=max(0.01, deadline - time.monotonic()))


@pytest.fixture
def channel(raw: RawClient, main_token: str) -> dict[str, Any]:
    return open_channel(raw, main_token)


@pytest.fixture
def socket(channel: dict[str, Any]) -> Iterator[ClientConnection]:
    with connect(channel["connectUri"], max_size=None) as ws:
        yield ws


def test_channel_shape(channel: dict[str, Any], emulator: RunningEmulator) -> None:
    assert set(channel) == {"connectUri", "id", "expires"}
    assert channel["connectUri"] == f"ws://{emulator.base_url[7:]}/channels/{channel['id']}"


def test_subscription_verbs(
    emulator: RunningEmulator, raw: RawClient, main_token: str, channel: dict[str, Any]
) -> None:
    subs = f"{CHANNELS}/{channel['id']}/subscriptions"
    support, sales = topic(queue_id(emulator, "Support")), topic(queue_id(emulator, "Sales"))
    assert raw.call("PUT", subs, main_token, [support]).body == {"entities": [support]}
    assert raw.call("POST", subs, main_token, [sales]).body == {"entities": [support, sales]}
    assert raw.call("GET", subs, main_token).body == {"entities": [support, sales]}
    assert raw.call("PUT", subs, main_token, [sales]).body == {"entities": [sales]}
    assert raw.call("DELETE", subs, main_token).status in (200, 204)
    assert raw.call("GET", subs, main_token).body == {"entities": []}


def test_head_channel(raw: RawClient, main_token: str, channel: dict[str, Any]) -> None:
    assert raw.call("HEAD", f"{CHANNELS}/{channel['id']}", main_token).status == 200
    assert raw.call("HEAD", f"{CHANNELS}/nope", main_token).status == 404


def test_more_than_1000_topics_is_400(
    emulator: RunningEmulator, raw: RawClient, main_token: str, channel: dict[str, Any]
) -> None:
    emulator.reset(max_topics_per_channel=2)
    token = raw.bearer(emulator.client_id, emulator.client_secret)
    chan = open_channel(raw, token)
    topics = [topic(queue_id(emulator, n)) for n in ("Support", "Sales", "Billing")]
    reply = raw.call("PUT", f"{CHANNELS}/{chan['id']}/subscriptions", token, topics)
    assert (reply.status, reply.body["code"]) == (400, "bad.request")


def test_default_topic_limit_is_1000(
    emulator: RunningEmulator, raw: RawClient, main_token: str, channel: dict[str, Any]
) -> None:
    qid = queue_id(emulator, "Support")
    many = [{"id": f"v2.routing.queues.{qid}.conversations"}] + [
        {"id": f"v2.routing.queues.{i:08d}-0000-4000-8000-000000000000.conversations"}
        for i in range(1000)
    ]
    reply = raw.call(
        "PUT", f"{CHANNELS}/{channel['id']}/subscriptions?ignoreErrors=true", main_token, many
    )
    assert reply.status == 400


def test_ignore_errors_marks_each_topic(emulator: RunningEmulator, raw: RawClient) -> None:
    token = raw.bearer("support-only", "support-only-secret")
    chan = open_channel(raw, token)
    support, sales = topic(queue_id(emulator, "Support")), topic(queue_id(emulator, "Sales"))
    body = [support, sales, {"id": "v2.users.x.presence"}]
    reply = raw.call("PUT", f"{CHANNELS}/{chan['id']}/subscriptions?ignoreErrors=true", token, body)
    assert reply.status == 200
    states = [(e["id"], e["state"]) for e in reply.body["entities"]]
    assert states == [
        (support["id"], "Permitted"),
        (sales["id"], "Rejected"),
        ("v2.users.x.presence", "Rejected"),
    ]
    assert all(e["rejectionReason"] for e in reply.body["entities"][1:])
    got = raw.call("GET", f"{CHANNELS}/{chan['id']}/subscriptions", token).body
    assert got == {"entities": [support]}


def test_missing_permission_is_listed(emulator: RunningEmulator, raw: RawClient) -> None:
    token = raw.bearer("no-queue-view", "no-queue-view-secret")
    chan = open_channel(raw, token)
    body = [topic(queue_id(emulator, "Support"))]
    reply = raw.call("PUT", f"{CHANNELS}/{chan['id']}/subscriptions?ignoreErrors=true", token, body)
    assert reply.body["entities"][0]["missingPermissions"] == ["routing:queue:view"]
    strict = raw.call("PUT", f"{CHANNELS}/{chan['id']}/subscriptions", token, body)
    assert (strict.status, strict.body["code"]) == (403, "not.authorized")


def test_invisible_queue_fails_the_whole_call(emulator: RunningEmulator, raw: RawClient) -> None:
    token = raw.bearer("support-only", "support-only-secret")
    chan = open_channel(raw, token)
    body = [topic(queue_id(emulator, "Support")), topic(queue_id(emulator, "Sales"))]
    reply = raw.call("PUT", f"{CHANNELS}/{chan['id']}/subscriptions", token, body)
    assert reply.status == 403
    assert raw.call("GET", f"{CHANNELS}/{chan['id']}/subscriptions", token).body == {"entities": []}


@pytest.mark.parametrize(
    "bad", ["v2.routing.queues.nope.conversations", "v2.users.123.presence", "garbage"]
)
def test_unknown_topic_shapes_are_400(
    raw: RawClient, main_token: str, channel: dict[str, Any], bad: str
) -> None:
    reply = raw.call("PUT", f"{CHANNELS}/{channel['id']}/subscriptions", main_token, [{"id": bad}])
    assert (reply.status, reply.body["code"]) == (400, "bad.request")


def test_malformed_subscription_body_is_400(
    raw: RawClient, main_token: str, channel: dict[str, Any]
) -> None:
    reply = raw.call("PUT", f"{CHANNELS}/{channel['id']}/subscriptions", main_token, {"id": "x"})
    assert reply.status == 400


def test_heartbeat_and_ping_pong(socket: ClientConnection) -> None:
    heartbeat = next_frame(socket, lambda f: f["eventBody"].get("message") == "WebSocket Heartbeat")
    assert heartbeat == {
        "topicName": "channel.metadata",
        "eventBody": {"message": "WebSocket Heartbeat"},
    }
    socket.send(json.dumps({"message": "ping"}))
    pong = next_frame(socket, lambda f: f["eventBody"].get("message") == "pong")
    assert pong == {"topicName": "channel.metadata", "eventBody": {"message": "pong"}}


def test_conversation_events_use_the_envelope(
    emulator: RunningEmulator,
    raw: RawClient,
    main_token: str,
    channel: dict[str, Any],
    socket: ClientConnection,
) -> None:
    qid = queue_id(emulator, "Support")
    raw.call("PUT", f"{CHANNELS}/{channel['id']}/subscriptions", main_token, [topic(qid)])
    started = emulator.start_conversation(queue="Support", talk_s=0.02, outcome="nothing")
    frame = next_frame(socket, is_topic("v2.routing.queues"))
    assert set(frame) == {"topicName", "version", "eventBody", "metadata"}
    assert frame["topicName"] == f"v2.routing.queues.{qid}.conversations"
    assert frame["version"] == "2"
    assert set(frame["metadata"]) == {"CorrelationId"}
    assert frame["eventBody"]["id"] == started["conversationId"]


def test_second_connection_drops_the_first(
    channel: dict[str, Any], socket: ClientConnection
) -> None:
    with connect(channel["connectUri"]) as second:
        wait_closed(socket)
        second.send(json.dumps({"message": "ping"}))
        next_frame(second, lambda f: f["eventBody"].get("message") == "pong")


def test_unknown_channel_upgrade_is_404(emulator: RunningEmulator) -> None:
    uri = emulator.base_url.replace("http", "ws") + "/channels/does-not-exist"
    with pytest.raises(InvalidStatus) as caught:
        connect(uri)
    assert caught.value.response.status_code == 404


def test_channel_expires(emulator: RunningEmulator, raw: RawClient, wait: Any) -> None:
    emulator.reset(channel_lifetime_s=0.3)
    token = raw.bearer(emulator.client_id, emulator.client_secret)
    chan = open_channel(raw, token)
    with connect(chan["connectUri"]) as ws:
        wait_closed(ws)
    assert raw.call("HEAD", f"{CHANNELS}/{chan['id']}", token).status == 404


def test_resubscribing_renews_expiry(emulator: RunningEmulator, raw: RawClient) -> None:
    emulator.reset(channel_lifetime_s=0.4)
    token = raw.bearer(emulator.client_id, emulator.client_secret)
    chan = open_channel(raw, token)
    subs = f"{CHANNELS}/{chan['id']}/subscriptions"
    body = [topic(queue_id(emulator, "Support"))]
    deadline = time.monotonic() + 0.8  # twice the lifetime
    while time.monotonic() < deadline:
        renewed = raw.call("PUT", subs, token, body)
        assert renewed.status == 200
        time.sleep(0.1)
    assert raw.call("HEAD", f"{CHANNELS}/{chan['id']}", token).status == 200


def test_21st_channel_evicts_least_recently_used_idle_first(
    raw: RawClient, main_token: str
) -> None:
    channels = [open_channel(raw, main_token) for _ in range(20)]
    with connect(channels[0]["connectUri"]) as oldest_connected:
        raw.call("HEAD", f"{CHANNELS}/{channels[1]['id']}", main_token)  # touch the second
        open_channel(raw, main_token)
        alive = [raw.call("HEAD", f"{CHANNELS}/{c['id']}", main_token).status for c in channels]
        assert alive[0] == 200  # connected channels are kept while idle ones exist
        assert alive[1] == 200  # recently used
        assert alive[2] == 404  # least recently used idle channel
        assert alive.count(404) == 1
        oldest_connected.send(json.dumps({"message": "ping"}))


def test_eviction_closes_the_socket_when_all_are_connected(raw: RawClient, main_token: str) -> None:
    channels = [open_channel(raw, main_token) for _ in range(20)]
    with ExitStack() as stack:
        sockets = [stack.enter_context(connect(c["connectUri"])) for c in channels]
        open_channel(raw, main_token)
        wait_closed(sockets[0])
        assert raw.call("HEAD", f"{CHANNELS}/{channels[0]['id']}", main_token).status == 404


def test_token_revoked_event_then_close(
    emulator: RunningEmulator, socket: ClientConnection, channel: dict[str, Any]
) -> None:
    emulator.fault(kind="revoke_tokens")
    frame = next_frame(socket, is_topic("v2.system.token_revoked"))
    assert frame["topicName"] == f"v2.system.token_revoked.{channel['id']}"
    assert frame["eventBody"]["channelId"] == channel["id"]
    wait_closed(socket)


def test_token_expiry_kills_its_channels(emulator: RunningEmulator, raw: RawClient) -> None:
    emulator.reset(token_lifetime_s=0.3)
    token = raw.bearer(emulator.client_id, emulator.client_secret)
    chan = open_channel(raw, token)
    with connect(chan["connectUri"]) as ws:
        wait_closed(ws)
    fresh = raw.bearer(emulator.client_id, emulator.client_secret)
    assert raw.call("HEAD", f"{CHANNELS}/{chan['id']}", fresh).status == 404


def test_socket_closing_then_maintenance_close(
    emulator: RunningEmulator,
    socket: ClientConnection,
    raw: RawClient,
    main_token: str,
    channel: dict[str, Any],
) -> None:
    result = emulator.fault(kind="socket_closing", close_after_s=0.2)
    assert result["faults"][0]["announced"] == 1
    frame = next_frame(socket, is_topic("v2.system.socket_closing"))
    assert frame["topicName"] == "v2.system.socket_closing"
    assert frame["eventBody"]["channelId"] == channel["id"]
    wait_closed(socket)
    assert (
        raw.call("HEAD", f"{CHANNELS}/{channel['id']}", main_token).status == 200
    )  # reconnectable
    with connect(channel["connectUri"]) as again:
        again.send(json.dumps({"message": "ping"}))
        next_frame(again, lambda f: f["eventBody"].get("message") == "pong")


def test_drop_sockets_keeps_the_channel(
    emulator: RunningEmulator,
    socket: ClientConnection,
    raw: RawClient,
    main_token: str,
    channel: dict[str, Any],
) -> None:
    emulator.fault(kind="drop_sockets")
    wait_closed(socket)
    assert raw.call("HEAD", f"{CHANNELS}/{channel['id']}", main_token).status == 200


def test_expire_channels_fault(
    emulator: RunningEmulator,
    socket: ClientConnection,
    raw: RawClient,
    main_token: str,
    channel: dict[str, Any],
) -> None:
    emulator.fault(kind="expire_channels")
    wait_closed(socket)
    assert raw.call("HEAD", f"{CHANNELS}/{channel['id']}", main_token).status == 404
