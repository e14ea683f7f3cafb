"""The subscriber's connection logic in milliseconds, with an in-memory channel API and sockets
(the websockets way): heartbeat watchdog, backoff guard, sharding, frames routed."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from websockets.exceptions import ConnectionClosedOK

from wrapupd.clock import SystemClock
from wrapupd.events import Channel, ConversationEvent, TopicResult
from wrapupd.metrics import Metrics
from wrapupd.subscriber import PING, Subscriber, SubscriberConfig, shard_topics

UNIT = 0.02
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

    async def recv(self) -> str:
        if self.closed:
            raise ConnectionClosedOK(None, None)
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


def make(
    api: FakeApi,
    sockets: list[FakeSocket],
    *,
    answers_ping: bool,
    queue_ids: Sequence[str] = ("q1",),
    **kw: object,
):  # type: ignore[no-untyped-def]
    events: list[ConversationEvent] = []
    gaps: list[str] = []

    async def connect(uri: str) -> FakeSocket:
        sock = FakeSocket(answers_ping=answers_ping)
        sockets.append(sock)
        return sock

    sub = Subscriber(
        api=api,
        queue_ids=list(queue_ids),
        on_event=lambda e, _epoch: events.append(e),
        on_gap=gaps.append,
        metrics=Metrics(),
        clock=SystemClock(),
        config=kw.get("config", CONFIG),  # type: ignore[arg-type]
        connector=connect,
    )
    return sub, events, gaps


async def run_for(sub: Subscriber, seconds: float) -> None:
    task = asyncio.create_task(sub.run())
    await asyncio.sleep(seconds)
    sub.stop()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_silent_socket_gets_a_ping_and_is_replaced_when_no_pong_comes() -> None:
    api, sockets = FakeApi(), []
    sub, _, gaps = make(api, sockets, answers_ping=False)
    await run_for(sub, 20 * UNIT)
    assert len(sockets) >= 2, "the dead socket was replaced"
    assert PING in sockets[0].sent
    assert "reconnected" in gaps and sub.epoch >= 1


async def test_a_pong_keeps_a_quiet_socket_alive() -> None:
    api, sockets = FakeApi(), []
    sub, _, gaps = make(api, sockets, answers_ping=True)
    await run_for(sub, 20 * UNIT)
    assert len(sockets) == 1 and sockets[0].sent.count(PING) >= 2
    assert gaps == [] and sub.epoch == 0


async def test_frames_are_routed_and_garbage_is_survived() -> None:
    api, sockets = FakeApi(), []
    sub, events, _ = make(api, sockets, answers_ping=True)
    task = asyncio.create_task(sub.run())
    await sub.ready.wait()
    body = {"id": "c1", "participants": [{"id": "p1", "purpose": "agent", "queueId": "q1"}]}
    for raw in (
        "{not json",
        json.dumps({"topicName": "v2.unknown", "eventBody": {}}),
        json.dumps(
            {"topicName": "v2.routing.queues.q1.conversations", "version": "2", "eventBody": body}
        ),
    ):
        sockets[0].inbox.put_nowait(raw)
    for _ in range(50):
        if events:
            break
        await asyncio.sleep(UNIT / 4)
    sub.stop()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert [e.conversation.id for e in events] == ["c1"]
    registry = sub._metrics.registry
    assert registry.get_sample_value("wrapupd_events_total", {"kind": "malformed"}) == 1
    assert registry.get_sample_value("wrapupd_events_total", {"kind": "unknown"}) == 1


def test_topics_are_sharded_at_the_platform_limit() -> None:
    shards = shard_topics([f"q{i}" for i in range(2500)], 1000)
    assert [len(s) for s in shards] == [1000, 1000, 500]
    assert len({t for s in shards for t in s}) == 2500


@pytest.mark.parametrize("queues", [2500])
async def test_each_shard_gets_its_own_channel(queues: int) -> None:
    api, sockets = FakeApi(), []
    sub, _, _ = make(api, sockets, answers_ping=True, queue_ids=[f"q{i}" for i in range(queues)])
    task = asyncio.create_task(sub.run())
    await asyncio.wait_for(sub.ready.wait(), 2)
    sub.stop()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert api.channels == 3 and sorted(len(t) for t in api.subscribed) == [500, 1000, 1000]
