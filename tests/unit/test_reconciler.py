"""Sweeps that cannot be poisoned or starved (issue 11 findings 5 and 6), on a manual clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from wrapupd.clock import ManualClock
from wrapupd.errors import NotFound, ServerError
from wrapupd.events import ConversationSnapshot
from wrapupd.metrics import Metrics
from wrapupd.ratelimit import RateLimiter
from wrapupd.reconciler import Reconciler, ReconcilerConfig, query_interval

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
INTERVAL = 300.0


@dataclass
class Finder:
    candidates: list[str]
    poison: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)
    fetched: list[str] = field(default_factory=list)
    windows: list[tuple[datetime, datetime]] = field(default_factory=list)

    async def query_open_conversations(
        self, queue_ids: Sequence[str], start: datetime, end: datetime
    ) -> list[str]:
        self.windows.append((start, end))
        return list(self.candidates)

    async def get_conversation(self, conversation_id: str) -> ConversationSnapshot:
        self.fetched.append(conversation_id)
        if conversation_id in self.poison:
            raise ServerError("cannot read this one", status=500)
        if conversation_id in self.gone:
            raise NotFound("gone", status=404)
        return ConversationSnapshot(conversation_id, ())


@dataclass
class Sink:
    known: set[str] = field(default_factory=set)
    delivered: list[str] = field(default_factory=list)

    epoch: int = 0
    epochs: list[int | None] = field(default_factory=list)

    def evidence_epoch(self) -> int | None:
        return self.epoch

    def on_rest_snapshot(self, snapshot: ConversationSnapshot, *, epoch: int | None) -> None:
        self.delivered.append(snapshot.id)
        self.epochs.append(epoch)

    def known_since_gap(self, conversation_id: str) -> bool:
        return conversation_id in self.known


@dataclass
class Rig:
    finder: Finder
    sink: Sink
    reconciler: Reconciler
    clock: ManualClock
    metrics: Metrics

    async def settle(self) -> None:
        for _ in range(50):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        await self.settle()
        await self.clock.advance(seconds)
        await self.settle()

    def sample(self, name: str) -> float:
        return self.metrics.registry.get_sample_value(name) or 0.0


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    clock = ManualClock(T0)
    metrics = Metrics(process_metrics=False)
    finder = Finder(["c1", "poison", "c3", "gone", "c5"], poison={"poison"}, gone={"gone"})
    reconciler = Reconciler(
        finder=finder,
        queue_ids=lambda: ["q1"],
        limiter=RateLimiter(60_000, clock=clock),
        metrics=metrics,
        clock=clock,
        config=ReconcilerConfig(interval=INTERVAL, end_lag=0.0, retry_delay=5.0),
    )
    sink = Sink()
    task = asyncio.create_task(reconciler.run(sink))
    yield Rig(finder, sink, reconciler, clock, metrics)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_one_poison_conversation_never_stops_a_sweep(rig: Rig) -> None:
    """A conversation whose GET always fails is skipped and counted; every other one is read."""
    rig.reconciler.request("startup")
    await rig.settle()
    assert rig.sink.delivered == ["c1", "c3", "c5"]
    assert rig.sample("wrapupd_reconcile_fetch_failures_total") == 1
    assert rig.sample("wrapupd_reconcile_last_complete_timestamp_seconds") == T0.timestamp()


async def test_a_failed_conversation_is_retried_later_alone(rig: Rig) -> None:
    rig.reconciler.request("startup")
    await rig.settle()
    rig.finder.poison.clear()
    rig.finder.fetched.clear()
    await rig.advance(5.0)
    assert "poison" in rig.finder.fetched
    assert rig.sink.delivered[-1] == "poison"


async def test_a_stalled_sweep_is_visible(rig: Rig) -> None:
    """No sweep completes (the analytics query fails): the stall shows in the reconciler's status."""
    rig.reconciler.request("startup")
    await rig.settle()
    ok, _ = rig.reconciler.status(rig.clock.monotonic())
    assert ok
    rig.finder.candidates = []

    async def failing(*_: object) -> list[str]:
        raise ServerError("analytics down", status=503)

    rig.finder.query_open_conversations = failing  # type: ignore[method-assign]
    for _ in range(int(4 * INTERVAL / 5.0)):
        await rig.advance(5.0)
    ok, detail = rig.reconciler.status(rig.clock.monotonic())
    assert not ok and "no sweep completed" in detail


async def test_a_periodic_sweep_covers_conversations_the_socket_reported(rig: Rig) -> None:
    """A frame lost while the socket stays up is repaired: periodic sweeps skip nothing."""
    rig.finder.poison.clear()
    rig.sink.known = {"c1", "c3", "c5"}
    await rig.advance(INTERVAL)
    assert set(rig.sink.delivered) >= {"c1", "c3", "c5"}


def test_the_lookback_reaches_back_days_not_hours() -> None:
    """A conversation older than two days is still a candidate with the default lookback."""
    start, end = query_interval(T0, end_lag=60.0, lookback_days=ReconcilerConfig().lookback_days)
    assert T0 - start > timedelta(days=2)
    assert end == T0 - timedelta(seconds=60)


async def test_a_read_is_stamped_with_the_epoch_from_before_its_request(rig: Rig) -> None:
    """Issue 11 finding 2: the socket drops and returns while the GET is in flight."""
    real_get = rig.finder.get_conversation

    async def gap_during_the_get(conversation_id: str) -> ConversationSnapshot:
        rig.sink.epoch += 1
        return await real_get(conversation_id)

    rig.finder.get_conversation = gap_during_the_get  # type: ignore[method-assign]
    rig.reconciler.request("startup")
    await rig.settle()
    # c1 asked at 0, poison at 1 (failed), c3 at 2, gone at 3 (404), c5 at 4
    assert rig.sink.epochs == [0, 2, 4]


async def test_a_sweep_reads_several_conversations_at_once() -> None:
    """After an outage every candidate must be read before a time-boxed ACW runs out: reads
    overlap (up to ``concurrent_reads``), they are not one round trip after another."""
    clock = ManualClock(T0)
    release = asyncio.Event()
    reading: list[str] = []

    class SlowFinder(Finder):
        async def get_conversation(self, conversation_id: str) -> ConversationSnapshot:
            reading.append(conversation_id)
            await release.wait()
            return ConversationSnapshot(conversation_id, ())

    finder = SlowFinder([f"c{i}" for i in range(10)])
    reconciler = Reconciler(
        finder=finder,
        queue_ids=lambda: ["q1"],
        limiter=RateLimiter(60_000, clock=clock),
        metrics=Metrics(process_metrics=False),
        clock=clock,
        config=ReconcilerConfig(interval=INTERVAL, end_lag=0.0, concurrent_reads=4),
    )
    sink = Sink()
    task = asyncio.create_task(reconciler.run(sink))
    reconciler.request("startup")
    for _ in range(50):
        await asyncio.sleep(0)
    assert len(reading) == 4, "four reads in flight, the rest wait for a free slot"
    release.set()
    for _ in range(100):
        await asyncio.sleep(0)
    assert sorted(sink.delivered) == sorted(finder.candidates)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
