"""In-socket control frames (no ``topicName``), idle closes, subscription renewals that fail, and
channel ids kept out of the logs: the subscriber on the manual clock with in-memory sockets."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

import pytest
from structlog.testing import capture_logs
from test_subscriber import CONFIG, UNIT, Rig, running
from websockets.frames import Close

from wrapupd.clock import ManualClock
from wrapupd.errors import ServerError
from wrapupd.events import Channel, ControlFrame, TopicResult, UnknownFrame
from wrapupd.genesys.notifications import parse_frame
from wrapupd.ratelimit import RateLimiter
from wrapupd.redaction import channel_tag

RENEW_OFTEN = replace(CONFIG, renew_interval=2 * UNIT)
GONE = json.dumps({"result": "404", "message": "The channel no longer exists: expired."})
ACK = json.dumps({"result": "200", "status": "subscribed", "correlationId": "c-1"})
FAILED = json.dumps({"result": "400", "status": "failure", "message": "Topic not allowed."})


def events(rig: Rig, kind: str) -> float:
    return rig.metrics.registry.get_sample_value("wrapupd_events_total", {"kind": kind}) or 0.0


# --- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "result", "gone", "ack"),
    [(GONE, 404, True, False), (ACK, 200, False, True), (FAILED, 400, False, False)],
)
def test_frames_without_a_topic_but_with_a_result_are_control_frames(
    raw: str, result: int, gone: bool, ack: bool
) -> None:
    frame = parse_frame(raw)
    assert isinstance(frame, ControlFrame)
    assert (frame.result, frame.channel_gone, frame.acknowledged) == (result, gone, ack)


def test_a_control_frame_keeps_the_platforms_words() -> None:
    frame = parse_frame(FAILED)
    assert isinstance(frame, ControlFrame)
    assert frame.status == "failure" and frame.message == "Topic not allowed."


def test_a_frame_with_neither_topic_nor_result_is_still_a_bad_envelope() -> None:
    frame = parse_frame(json.dumps({"message": "hello"}))
    assert isinstance(frame, UnknownFrame) and frame.problem == "bad_envelope"


def test_a_result_that_is_not_a_status_is_a_bad_envelope() -> None:
    frame = parse_frame(json.dumps({"result": "sure"}))
    assert isinstance(frame, UnknownFrame) and frame.problem == "bad_envelope"


# --- the subscriber -------------------------------------------------------------------------------


async def test_a_channel_gone_frame_replaces_the_channel_at_once_and_counts_as_a_gap() -> None:
    async with running(Rig(answers_ping=True)) as rig:
        await rig.advance(2 * UNIT)  # a healthy session (a short one would back off first)
        rig.sockets[0].inbox.put_nowait(GONE)
        await rig.advance(UNIT / 4)  # well within the heartbeat timeout: no watchdog involved
        assert rig.api.channels == 2 and len(rig.sockets) == 2
    assert rig.sink.gaps == ["reconnected"]
    assert events(rig, "channel_gone") == 1
    gone = rig.metrics.registry.get_sample_value(
        "wrapupd_reconnects_total", {"reason": "channel_gone"}
    )
    assert gone == 1


async def test_subscribe_acks_are_counted_quietly_and_failures_loudly() -> None:
    with capture_logs() as logs:
        async with running(Rig(answers_ping=True)) as rig:
            rig.sockets[0].inbox.put_nowait(ACK)
            rig.sockets[0].inbox.put_nowait(FAILED)
            await rig.advance(UNIT / 4)
    assert (events(rig, "subscribe_ack"), events(rig, "subscribe_failed")) == (1, 1)
    assert rig.sink.gaps == [] and len(rig.sockets) == 1, "neither ends the connection"
    levels = {e["event"]: e["log_level"] for e in logs}
    assert levels["subscribe_acknowledged"] == "debug"
    assert levels["subscribe_failed"] == "error"
    assert not any(e["event"] == "frame_ignored" for e in logs)


async def test_an_idle_close_1001_is_a_normal_reconnect_on_the_same_channel() -> None:
    with capture_logs() as logs:
        async with running(Rig(answers_ping=True)) as rig:
            await rig.advance(2 * UNIT)  # a healthy session
            socket = rig.sockets[0]
            socket.close_frame = Close(1001, "idle")
            socket.closed = True
            socket.inbox.put_nowait("wake up")
            await rig.advance(UNIT / 4)
            assert len(rig.sockets) == 2 and rig.subscriber.connected
    assert rig.api.channels == 1, "the channel is kept"
    assert rig.sink.gaps == ["reconnected"], "events may have been missed meanwhile"
    closed = [e for e in logs if e["event"] == "socket_disconnected"]
    assert closed and closed[0]["log_level"] == "info" and closed[0]["reason"] == "closed_1001"


class FailingRenewals:
    """Renewals (every subscribe after the first) answer 503."""

    def __init__(self, rig: Rig) -> None:
        self.calls = 0
        self._first = rig.api.subscribe

    async def __call__(self, channel_id: str, topics: Sequence[str]) -> list[TopicResult]:
        self.calls += 1
        if self.calls == 1:
            return await self._first(channel_id, topics)
        raise ServerError("unavailable", status=503)


async def test_a_failing_subscription_renewal_backs_off_instead_of_retrying_on_every_frame() -> (
    None
):
    rig = Rig(answers_ping=True, config=RENEW_OFTEN)
    failing = FailingRenewals(rig)
    rig.api.subscribe = failing  # type: ignore[method-assign]
    async with running(rig):
        for _ in range(40):  # a busy socket: a frame every quarter unit for 10 units
            rig.sockets[0].inbox.put_nowait(json.dumps({"topicName": "channel.metadata"}))
            await rig.advance(UNIT / 4)
    renewals = failing.calls - 1
    # Due from 2 units on; the backoff waits 1, 2, 3 units between tries: 3 or 4 tries in 8 units.
    assert 2 <= renewals <= 5, renewals


async def test_a_subscription_renewal_waits_for_the_rate_limiters_pause() -> None:
    clock = ManualClock()
    limiter = RateLimiter(6000, clock=clock)
    rig = Rig(answers_ping=True, config=RENEW_OFTEN, limiter=limiter, clock=clock)
    async with running(rig):
        limiter.pause_for(6 * UNIT)
        for _ in range(20):
            rig.sockets[0].inbox.put_nowait(json.dumps({"topicName": "channel.metadata"}))
            await rig.advance(UNIT / 4)
        assert len(rig.api.subscribed) == 1, "no renewal during the platform's pause"
        assert events(rig, "heartbeat") >= 19, "frames kept flowing meanwhile"
        await rig.advance(4 * UNIT)
        assert len(rig.api.subscribed) >= 2, "renewed once the pause was over"


async def test_channel_ids_never_reach_the_logs() -> None:
    with capture_logs() as logs:
        async with running(Rig(answers_ping=True)) as rig:
            rig.sockets[0].inbox.put_nowait(GONE)
            await rig.advance(UNIT / 4)
    text = json.dumps(logs, default=str)
    assert "ch1" not in text and "ch2" not in text and "ws://" not in text
    connected = [e for e in logs if e["event"] == "socket_connected"]
    assert connected[0]["channel"] == channel_tag("ch1")


def test_a_channels_repr_shows_neither_its_id_nor_its_uri() -> None:
    channel = Channel("secret-channel-id", "wss://streaming.example/channels/secret-uri", None)
    assert "secret" not in repr(channel)
