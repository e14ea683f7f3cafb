"""The subscriber's connection logic on the manual clock, with an in-memory channel API and sockets
(the websockets way): heartbeat watchdog, backoff, end reasons, sharding, frames routed."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime

import pytest
from websockets.exceptions import ConnectionClosedOK, InvalidMessage
from websockets.frames import Close

from wrapupd.channels import RECONNECTABLE, End, EndReason, shard_topics
from wrapupd.clock import ManualClock
from wrapupd.errors import (
    BadRequest,
    ChannelGone,
    LedgerError,
    RequestTimeout,
    ServerError,
)
from wrapupd.events import Channel, ConversationEvent, TopicResult
from wrapupd.genesys.notifications import PING
from wrapupd.metrics import Metrics
from wrapupd.ratelimit import RateLimiter
from wrapupd.subscriber import Subscriber, SubscriberConfig

UNIT = 1.0  # manual-clock seconds
CONFIG = SubscriberConfig(
    heartbeat_timeout=3 * UNIT,
    ping_timeout=2 * UNIT,
    min_session=UNIT,
    backoff_initial=UNIT / 4,
    backoff_max=UNIT,
)


class FakeSocket:
    def __init__(self, *, answers_ping: bool) -> None:
        self.inbox: asyncio.Queue[str] = asyncio.Queue()
        self.sent: list[str] = []
        self.answers_ping = answers_ping
        self.closed = False
        self.close_frame: Close | None = None  # what the server's close said (None: abnormal)

    async def recv(self) -> str:
        if self.closed:
            raise ConnectionClosedOK(self.close_frame, None)
        return await self.inbox.get()

    async def send(self, message: str) -> None:
        self.sent.append(message)
        if message == PING and self.answers_ping:
            self.inbox.put_nowait(
                json.dumps({"topicName": "channel.metadata", "eventBody": {"message": "pong"}})
            )

    async def close(self) -> None:
        self.closed = True


class FakeApi:
    def __init__(self) -> None:
        self.channels = 0
        self.subscribed: list[list[str]] = []
        self.token_generation = 1

    async def create_channel(self) -> Channel:
        self.channels += 1
        return Channel(
            f"ch{self.channels}", f"ws://127.0.0.1:1/channels/ch{self.channels}", datetime.now(UTC)
        )

    async def subscribe(self, channel_id: str, topics: Sequence[str]) -> list[TopicResult]:
        self.subscribed.append(list(topics))
        return [TopicResult(t, True) for t in topics]

    async def channel_exists(self, channel_id: str) -> bool:
        return True


class Sink:
    """Records what the subscriber delivers."""

    def __init__(self) -> None:
        self.events: list[ConversationEvent] = []
        self.gaps: list[str] = []

    def on_event(self, event: ConversationEvent, epoch: int) -> None:
        self.events.append(event)

    def on_gap(self, reason: str) -> None:
        self.gaps.append(reason)


class Rig:
    """One subscriber on the manual clock, its sockets, and what it delivered."""

    def __init__(
        self,
        *,
        answers_ping: bool,
        queue_ids: Sequence[str] = ("q1",),
        closes_at_once: bool = False,
        config: SubscriberConfig = CONFIG,
        limiter: RateLimiter | None = None,
        clock: ManualClock | None = None,
    ) -> None:
        self.clock = clock or ManualClock()
        self.api = FakeApi()
        self.sockets: list[FakeSocket] = []
        self.connected_at: list[float] = []
        self.sink = Sink()
        self.metrics = Metrics()
        self.backoffs = 0

        async def connect(uri: str) -> FakeSocket:
            sock = FakeSocket(answers_ping=answers_ping)
            sock.closed = closes_at_once
            self.sockets.append(sock)
            self.connected_at.append(self.clock.monotonic())
            return sock

        def backoff() -> Iterator[float]:
            self.backoffs += 1
            return itertools.count(1)  # 1, 2, 3, ... seconds: easy to read off the clock

        self.subscriber = Subscriber(
            api=self.api,
            queue_ids=lambda: queue_ids,
            metrics=self.metrics,
            clock=self.clock,
            config=config,
            connector=connect,
            backoff=backoff,
            limiter=limiter,
        )

    async def advance(self, seconds: float, step: float = UNIT / 4) -> None:
        """Move the clock in small steps, letting the subscriber react in between."""
        for _ in range(max(1, round(seconds / step))):
            await self.clock.advance(min(step, seconds))
            for _ in range(50):  # no real time passes: the loop runs what is ready
                await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def running(rig: Rig) -> AsyncIterator[Rig]:
    task = asyncio.create_task(rig.subscriber.run(rig.sink))
    await asyncio.wait_for(rig.subscriber.ready.wait(), 2)
    await rig.advance(0)  # let it finish what it started at time zero
    try:
        yield rig
    finally:
        rig.subscriber.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_silent_socket_gets_a_ping_and_is_replaced_when_no_pong_comes() -> None:
    async with running(Rig(answers_ping=False)) as rig:
        await rig.advance(3 * UNIT)  # the heartbeat timeout: a ping goes out
        assert rig.sockets[0].sent == [PING] and len(rig.sockets) == 1
        await rig.advance(2 * UNIT + UNIT / 2)  # no pong within the ping timeout: a new socket
        assert len(rig.sockets) >= 2, "the dead socket was replaced"
    assert rig.sink.gaps == ["reconnected"] and rig.subscriber.epoch >= 1
    reconnects = rig.metrics.registry.get_sample_value(
        "wrapupd_reconnects_total", {"reason": "heartbeat_timeout"}
    )
    assert reconnects == 1


async def test_a_pong_keeps_a_quiet_socket_alive() -> None:
    async with running(Rig(answers_ping=True)) as rig:
        await rig.advance(20 * UNIT)
    assert len(rig.sockets) == 1 and rig.sockets[0].sent.count(PING) >= 2
    assert rig.sink.gaps == [] and rig.subscriber.epoch == 0


async def test_a_closed_socket_is_a_gap_named_by_its_close_code() -> None:
    async with running(Rig(answers_ping=True)) as rig:
        rig.sockets[0].closed = True
        rig.sockets[0].inbox.put_nowait("wake up")
        await rig.advance(2 * UNIT)
        assert len(rig.sockets) == 2 and rig.subscriber.connected
    assert rig.sink.gaps == ["reconnected"]
    closed = rig.metrics.registry.get_sample_value(
        "wrapupd_reconnects_total", {"reason": "closed_abnormal"}
    )
    assert closed == 1


async def test_frames_are_routed_and_garbage_is_survived() -> None:
    body = {"id": "c1", "participants": [{"id": "p1", "purpose": "agent", "queueId": "q1"}]}
    async with running(Rig(answers_ping=True)) as rig:
        for raw in (
            "{not json",
            json.dumps({"topicName": "v2.unknown", "eventBody": {}}),
            json.dumps(
                {
                    "topicName": "v2.routing.queues.q1.conversations",
                    "version": "2",
                    "eventBody": body,
                }
            ),
        ):
            rig.sockets[0].inbox.put_nowait(raw)
        await rig.advance(UNIT)
    assert [e.conversation.id for e in rig.sink.events] == ["c1"]
    registry = rig.metrics.registry
    assert registry.get_sample_value("wrapupd_events_total", {"kind": "malformed"}) == 1
    assert registry.get_sample_value("wrapupd_events_total", {"kind": "unknown"}) == 1
    assert registry.get_sample_value("wrapupd_events_total", {"kind": "conversation"}) == 1


async def test_a_server_that_accepts_then_closes_at_once_is_not_hammered() -> None:
    async with running(Rig(answers_ping=True, closes_at_once=True)) as rig:
        await rig.advance(10 * UNIT)
    # Each session is shorter than min_session, so the backoff keeps growing: 1, 2, 3 seconds.
    waits = [b - a for a, b in itertools.pairwise(rig.connected_at)]
    assert waits[:3] == [1.0, 2.0, 3.0]
    assert rig.backoffs == 1


async def test_a_long_enough_session_starts_the_backoff_over() -> None:
    async with running(Rig(answers_ping=True)) as rig:
        await rig.advance(2 * UNIT)  # longer than min_session
        rig.sockets[0].closed = True
        rig.sockets[0].inbox.put_nowait("wake up")
        await rig.advance(UNIT / 4)
        assert len(rig.sockets) == 2, "a healthy session reconnects at once"
        await rig.advance(2 * UNIT)
        rig.sockets[1].closed = True
        rig.sockets[1].inbox.put_nowait("wake up")
        await rig.advance(UNIT / 4)
    assert len(rig.sockets) == 3 and rig.backoffs == 2


def test_topics_are_sharded_at_the_platform_limit() -> None:
    shards = shard_topics([f"q{i}" for i in range(2500)], 1000)
    assert [len(s) for s in shards] == [1000, 1000, 500]
    assert len({t for s in shards for t in s}) == 2500


async def test_each_shard_gets_its_own_channel() -> None:
    async with running(Rig(answers_ping=True, queue_ids=[f"q{i}" for i in range(2500)])) as rig:
        pass
    assert rig.api.channels == 3 and sorted(len(t) for t in rig.api.subscribed) == [500, 1000, 1000]


def test_not_connected_before_the_first_socket() -> None:
    assert Rig(answers_ping=True).subscriber.connected is False


@pytest.mark.parametrize(
    ("error", "reconnect"),
    [
        (ServerError("down", status=503), True),
        (BadRequest("no", status=400), True),
        (RequestTimeout("slow"), True),
        (ChannelGone("gone"), True),
        (ConnectionRefusedError(), True),
        (InvalidMessage("garbled handshake"), True),
        (TimeoutError(), True),
        (LedgerError("disk"), False),
        (ValueError("a bug"), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_one_definition_of_what_a_reconnect_can_cure(error: BaseException, reconnect: bool) -> None:
    assert isinstance(error, RECONNECTABLE) is reconnect


@pytest.mark.parametrize(
    ("end", "label", "new_channel"),
    [
        (End(EndReason.CLOSED, close_code=1001), "closed_1001", False),
        (End(EndReason.CLOSED), "closed_abnormal", False),
        (End(EndReason.HEARTBEAT_TIMEOUT), "heartbeat_timeout", False),
        (End(EndReason.CHANNEL_ENDED), "channel_ended", True),
        (End(EndReason.CHANNEL_GONE), "channel_gone", True),
        (End(EndReason.SOCKET_CLOSING), "socket_closing", False),
    ],
)
def test_end_reasons_name_the_reconnect_and_say_when_the_channel_is_lost(
    end: End, label: str, new_channel: bool
) -> None:
    assert (end.label, end.reason.channel_lost) == (label, new_channel)
