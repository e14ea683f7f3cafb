"""A replica writes only while its lease on the item still covers the write (two replicas on one
PostgreSQL ledger, a manual clock): when its renewals fall behind, the write is held back before
another replica can take the item over, so the two never both write (found by the HA test
``test_two_replicas_share_the_work_and_write_each_participant_once`` under CPU load: the holder's
check was in flight when its lease lapsed, the survivor took over, and both wrote)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from test_applier_promises import GRACE, KEY, RESOLVED, T0, Platform, Socket

from wrapupd.applier import Applier, ApplierConfig
from wrapupd.clock import ManualClock
from wrapupd.detector import decide
from wrapupd.events import ConversationSnapshot, Outcome, WorkItem
from wrapupd.ledger import Ledger
from wrapupd.metrics import Metrics
from wrapupd.ratelimit import RateLimiter
from wrapupd.replicas import Admission, ReplicaConfig, Replicas

CONFIG = ReplicaConfig(lease_seconds=9.0, heartbeat_seconds=3.0)


@dataclass
class GatedPlatform(Platform):
    """The platform double whose GET answers only once the test opens the gate."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)

    async def get_conversation(self, conversation_id: str) -> ConversationSnapshot:
        state = await super().get_conversation(conversation_id)
        await self.gate.wait()
        return state


@dataclass
class SlowAnswerPlatform(Platform):
    """The platform double whose write lands at once but answers only once the test opens the gate."""

    answer: asyncio.Event = field(default_factory=asyncio.Event)

    async def patch_participant_wrapup(
        self, conversation_id: str, participant_id: str, **fields: str | None
    ) -> None:
        await super().patch_participant_wrapup(conversation_id, participant_id, **fields)  # type: ignore[arg-type]
        await self.answer.wait()


def replicas(ledger: Ledger, clock: ManualClock) -> Replicas:
    return Replicas(
        ledger,
        clock=clock,
        config=CONFIG,
        budget_per_minute=6000.0,
        set_budget=lambda rate: None,
        on_reconciler=lambda: None,
    )


def applier(
    platform: Platform,
    ledger: Ledger,
    clock: ManualClock,
    socket: Socket,
    metrics: Metrics | None = None,
) -> Applier:
    return Applier(
        client=platform,
        ledger=ledger,
        lookup=lambda queue_id: RESOLVED if queue_id == "q1" else None,
        continuity=socket,
        limiter=RateLimiter(6000, burst=10, clock=clock),
        metrics=metrics or Metrics(process_metrics=False),
        clock=clock,
        config=ApplierConfig(workers=1),
        replicas=replicas(ledger, clock),
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=T0)


async def until(fact: Callable[[], bool]) -> None:
    """Let the loop (and the ledger's writer) run until ``fact`` holds."""
    for _ in range(2000):
        if fact():
            return
        await asyncio.sleep(0.002)
    raise AssertionError("the fact never held")


async def sighted(replica: Applier, platform: Platform, ledger: Ledger, socket: Socket) -> None:
    """The replica saw the participant in ACW without a code, and its item is on disk."""
    replica.submit(decide(platform.snapshot(), {"q1"}), epoch=socket.epoch)
    await until(lambda: ledger.get(KEY) is not None)
    await ledger.flush()


async def fall_due(clock: ManualClock) -> None:
    """Let the running workers start waiting, then move the clock past the grace period."""
    for _ in range(5):
        await asyncio.sleep(0)
    await clock.advance(GRACE)


async def test_a_lease_lapsing_while_the_check_is_in_flight_holds_the_write_back(
    ledgers: list[Ledger], clock: ManualClock
) -> None:
    platform, socket = GatedPlatform(), Socket()
    holder = applier(platform, ledgers[0], clock, socket)
    survivor = replicas(ledgers[1], clock)
    await sighted(holder, platform, ledgers[0], socket)
    running = asyncio.create_task(holder.run())  # its lease renewals are not running: they lag
    try:
        await fall_due(clock)  # the holder claims, marks and checks by GET
        await until(lambda: platform.gets == 1)
        await clock.advance(CONFIG.lease_seconds + 1)  # the holder's lease lapses meanwhile
        assert await survivor.admit(KEY) is Admission.RECHECK  # and the survivor takes over
        platform.gate.set()  # the holder's check answers "in ACW, no code"
        assert await holder.drain(60)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert platform.writes == []  # only the survivor may write now (after its own check)


async def test_renewals_falling_behind_stop_writes_before_the_lease_can_lapse(
    ledgers: list[Ledger], clock: ManualClock
) -> None:
    holder = replicas(ledgers[0], clock)
    ledgers[0].add_pending(_item())
    await ledgers[0].flush()
    assert not holder.may_write(KEY)  # not claimed yet
    assert await holder.admit(KEY) is Admission.WRITE
    assert holder.may_write(KEY)
    await clock.advance(CONFIG.lease_seconds - CONFIG.renew_seconds)  # no renewal meanwhile
    assert not holder.may_write(KEY)  # less than a renewal period left: no write may leave
    assert await holder.admit(KEY) is Admission.WRITE  # renewed (a claim renews a held lease)
    assert holder.may_write(KEY)


def applied_count(metrics: Metrics) -> float:
    return (
        metrics.registry.get_sample_value("wrapupd_outcomes_total", {"outcome": "applied"}) or 0.0
    )


async def write_answered_late(
    ledgers: list[Ledger], clock: ManualClock, *, taken_over: bool
) -> Metrics:
    """The holder writes; the answer comes late; meanwhile (``taken_over``) its lease lapses and
    the survivor, reading our code on the participant, records the item applied. The holder's
    metrics are returned once it has finished."""
    platform, socket, metrics = SlowAnswerPlatform(), Socket(), Metrics(process_metrics=False)
    holder = applier(platform, ledgers[0], clock, socket, metrics)
    await sighted(holder, platform, ledgers[0], socket)
    running = asyncio.create_task(holder.run())  # its lease renewals are not running: they lag
    try:
        await fall_due(clock)  # the holder claims, checks, marks and writes
        await until(lambda: platform.writes != [])
        if taken_over:
            await clock.advance(CONFIG.lease_seconds + 1)  # the answer is slow: the lease lapses
            assert await replicas(ledgers[1], clock).admit(KEY) is Admission.RECHECK
            ledgers[1].record_outcome(
                KEY, Outcome.APPLIED, "our code is already on the participant"
            )
            await ledgers[1].flush()
        platform.answer.set()
        assert await holder.drain(60)
        await ledgers[0].flush()
        for _ in range(5):
            await asyncio.sleep(0)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert platform.writes == [RESOLVED.code.id]
    return metrics


async def test_a_write_the_replica_records_itself_counts_as_applied(
    ledgers: list[Ledger], clock: ManualClock
) -> None:
    assert applied_count(await write_answered_late(ledgers, clock, taken_over=False)) == 1


async def test_a_write_another_replica_recorded_first_is_counted_applied_once_across_the_fleet(
    ledgers: list[Ledger], clock: ManualClock
) -> None:
    """The survivor counted it when it recorded it; the holder's own outcome comes second, is
    refused by the ledger (the first outcome wins), and must not count it again: summed over the
    replicas, ``wrapupd_outcomes_total{outcome="applied"}`` is the number of codes applied."""
    assert applied_count(await write_answered_late(ledgers, clock, taken_over=True)) == 0


@pytest.mark.parametrize("claimed", [True, False], ids=["after-its-claim", "before-its-claim"])
async def test_a_replica_that_does_not_hold_the_lease_leaves_the_outcome_to_the_holder(
    ledgers: list[Ledger], clock: ManualClock, claimed: bool
) -> None:
    """The other replica sees our code arrive by event while the holder's write is answered: to
    it that is a code on the participant, which it would record as the agent's (already_coded),
    first, in the shared ledger (found by the HA sharing row once outcomes counted only when
    kept). The holder knows it wrote. The other replica, refused the lease already, stops tracking
    the item; not having claimed it yet, it claims before ending it, and finds it finished."""
    platform, socket = SlowAnswerPlatform(), Socket()
    holder = applier(platform, ledgers[0], clock, socket)
    other = applier(platform, ledgers[1], clock, socket)
    await sighted(holder, platform, ledgers[0], socket)
    await sighted(other, platform, ledgers[1], socket)
    tasks = [asyncio.create_task(holder.run())]
    try:
        await fall_due(clock)  # the holder claims, checks, marks and writes
        await until(lambda: platform.writes != [])
        if claimed:
            tasks.append(asyncio.create_task(other.run()))  # its claim finds the holder's lease
            await until(lambda: _held_elsewhere(other))
        other.submit(decide(platform.snapshot(), {"q1"}), epoch=socket.epoch)  # our code, seen
        await ledgers[1].flush()  # whatever it wrote is in before the holder's answer
        platform.answer.set()
        assert await holder.drain(60)
        await ledgers[0].flush()
        if not claimed:
            tasks.append(asyncio.create_task(other.run()))  # claims now: finished, by the holder
        await until(lambda: other.pending_count == 0)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    stored = ledgers[0].get(KEY)
    assert stored is not None and stored.outcome is Outcome.APPLIED
    assert platform.writes == [RESOLVED.code.id]


def _held_elsewhere(replica: Applier) -> bool:
    live = replica._work.get(KEY)  # the moment its claim was refused
    return live is not None and live.held_elsewhere


def _item() -> WorkItem:
    return WorkItem(
        conversation_id=KEY[0],
        participant_id=KEY[1],
        queue_id="q1",
        acw_started_at=T0,
        due_at=T0 + timedelta(seconds=GRACE),
        deadline=None,
        media_type="call",
    )
