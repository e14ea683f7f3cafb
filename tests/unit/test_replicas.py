"""Replica coordination on a shared PostgreSQL ledger: only the lease holder is admitted to write,
a dead holder's item is taken over with a re-check, the budget is shared among live replicas, one
replica at a time holds the reconciler role; a private SQLite ledger admits everything."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from test_ledger_failures import CountedCommits

from ledger_places import KEY, T0, Place, item
from wrapupd.clock import ManualClock
from wrapupd.errors import LedgerError
from wrapupd.events import Outcome
from wrapupd.ledger import Ledger, open_ledger_blocking
from wrapupd.replicas import Admission, ReplicaConfig, Replicas, wait_for_shared_ledger

CONFIG = ReplicaConfig(lease_seconds=9.0, heartbeat_seconds=3.0)
BUDGET = 270.0


class Budget:
    """What the replica set its rate limiter to, and how often it took the reconciler role."""

    def __init__(self) -> None:
        self.rate: float | None = None
        self.role_taken = 0

    def set(self, rate: float) -> None:
        self.rate = rate

    def took_role(self) -> None:
        self.role_taken += 1


def replica(ledger: Ledger, clock: ManualClock, budget: Budget) -> Replicas:
    return Replicas(
        ledger,
        clock=clock,
        config=CONFIG,
        budget_per_minute=BUDGET,
        set_budget=budget.set,
        on_reconciler=budget.took_role,
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=T0)


async def seen_by_both(a: Ledger, b: Ledger) -> None:
    for ledger in (a, b):
        ledger.add_pending(item())
        await ledger.flush()


async def test_only_the_lease_holder_is_admitted_and_a_dead_holders_item_is_rechecked(
    ledgers: list[Ledger], clock: ManualClock
) -> None:
    a, b = (replica(ledger, clock, Budget()) for ledger in ledgers)
    await seen_by_both(*ledgers)
    assert await a.admit(KEY) is Admission.WRITE
    assert await b.admit(KEY) is Admission.WAIT
    await clock.advance(CONFIG.lease_seconds + 1)  # replica a died: its lease lapses
    assert await b.admit(KEY) is Admission.RECHECK
    assert not await ledgers[0].mark_writing(KEY, 1, "code-1", leased=True)


async def test_a_waiting_replica_looks_again_just_after_the_holders_lease_ends(
    ledgers: list[Ledger], clock: ManualClock
) -> None:
    """A dead holder's item is taken over when its lease ends, not up to a renewal period later
    (the failover time of issue 13)."""
    a, b = (replica(ledger, clock, Budget()) for ledger in ledgers)
    await seen_by_both(*ledgers)
    assert await a.admit(KEY) is Admission.WRITE
    await clock.advance(2.0)
    assert await b.admit(KEY) is Admission.WAIT
    again = b.look_again_at(KEY)
    assert 0 < (again - T0).total_seconds() - CONFIG.lease_seconds <= 0.2
    await clock.advance((again - clock.now()).total_seconds())
    assert await b.admit(KEY) is Admission.RECHECK


async def test_a_takeover_shares_the_budget_anew_at_once(
    ledgers: list[Ledger], clock: ManualClock
) -> None:
    """A lease that lapsed says its holder is likely gone: the survivor recounts the live replicas
    then, not at its next heartbeat up to three seconds later (issue 13's failover time)."""
    a_ledger, b_ledger = ledgers
    budget = Budget()
    a, b = replica(a_ledger, clock, Budget()), replica(b_ledger, clock, budget)
    await seen_by_both(*ledgers)
    await a_ledger.heartbeat()
    task = asyncio.create_task(b.run(lambda items: 0))

    async def step(seconds: float) -> None:
        await clock.advance(seconds)
        for _ in range(5):
            await asyncio.sleep(0.01)

    try:
        await step(4.0)
        await a_ledger.heartbeat()  # a's last sign of life, at t=4; its lease runs to t=13
        assert await a.admit(KEY) is Admission.WRITE
        for _ in range(19):  # to t=13.5: b beat at 12 and saw a (8 s old)
            await step(0.5)
        assert budget.rate == BUDGET / 2
        assert await b.admit(KEY) is Admission.RECHECK
        await step(0.0)
        assert budget.rate == BUDGET, "a's beat is 9.5 s old now: b alone, at once"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_lease_is_renewed_while_held_so_a_slow_write_keeps_it(
    ledgers: list[Ledger], clock: ManualClock
) -> None:
    budget = Budget()
    a, b = (replica(ledger, clock, budget) for ledger in ledgers)
    await seen_by_both(*ledgers)
    assert await a.admit(KEY) is Admission.WRITE
    running = asyncio.create_task(a.run(lambda items: 0))
    try:
        for _ in range(4):  # well past one lease, in renewal steps
            await clock.advance(CONFIG.renew_seconds)
            await ledgers[0].flush()
        assert await b.admit(KEY) is Admission.WAIT
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_a_replica_renews_every_lease_it_holds_in_one_round_trip(
    ledgers: list[Ledger], clock: ManualClock
) -> None:
    """One commit for all its leases, not one per item: with a backlog of thousands on a slow
    database, renewing item by item would take longer than the lease it renews."""
    budget = Budget()
    a, b = (replica(ledger, clock, budget) for ledger in ledgers)
    keys = [(f"c{n}", "agent-1") for n in range(50)]
    for key in keys:
        ledgers[0].add_pending(item(key[0]))
    await ledgers[0].flush()
    for key in keys:
        assert await a.admit(key) is Admission.WRITE
    counted = CountedCommits(ledgers[0])
    running = asyncio.create_task(a.run(lambda items: 0))
    try:
        for _ in range(3):  # past the lease taken at the claims
            await clock.advance(CONFIG.renew_seconds)
            await ledgers[0].flush()
        assert all([await b.admit(key) is Admission.WAIT for key in keys])
        assert counted.commits <= 3 * 3, f"three renewal rounds took {counted.commits} commits"
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_an_item_finished_by_another_replica_is_done(
    ledgers: list[Ledger], clock: ManualClock
) -> None:
    a, b = (replica(ledger, clock, Budget()) for ledger in ledgers)
    await seen_by_both(*ledgers)
    assert await a.admit(KEY) is Admission.WRITE
    await ledgers[0].record_outcome(KEY, Outcome.APPLIED, "applied", "code-1")
    assert await b.admit(KEY) is Admission.DONE


async def test_retiring_hands_held_items_to_another_replica_at_once(
    ledgers: list[Ledger], clock: ManualClock
) -> None:
    a, b = (replica(ledger, clock, Budget()) for ledger in ledgers)
    await seen_by_both(*ledgers)
    assert await a.admit(KEY) is Admission.WRITE
    a.retire()
    await ledgers[0].flush()
    assert await b.admit(KEY) in (Admission.WRITE, Admission.RECHECK)


async def running_all(
    replicas: list[Replicas], clock: ManualClock, until: Callable[[], bool]
) -> None:
    """Run every replica's jobs on the manual clock until ``until()`` holds (or fail)."""
    tasks = [asyncio.create_task(r.run(lambda items: 0)) for r in replicas]
    try:
        for _ in range(50):
            if until():
                return
            await clock.advance(CONFIG.heartbeat_seconds / 3)
            await asyncio.sleep(0.01)
        raise AssertionError("the replicas never got there")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_live_replicas_share_the_budget_and_one_holds_the_reconciler_role(
    ledgers: list[Ledger], clock: ManualClock
) -> None:
    budgets = [Budget(), Budget()]
    replicas = [
        replica(ledger, clock, budget) for ledger, budget in zip(ledgers, budgets, strict=True)
    ]

    def shared_with_one_sweeper() -> bool:
        """Both see each other (the budget halves) and one of them has taken the sweeper role;
        the role is claimed on its own beat, so the two need not happen on the same tick."""
        one = [r.is_reconciler for r in replicas].count(True) == 1
        return one and all(b.rate == BUDGET / 2 for b in budgets)

    await running_all(replicas, clock, shared_with_one_sweeper)
    assert [r.is_reconciler for r in replicas].count(True) == 1
    assert sum(b.role_taken for b in budgets) == 1


async def test_a_private_sqlite_ledger_admits_every_item_without_a_lease(
    sqlite_place: Place, clock: ManualClock
) -> None:
    ledger = await sqlite_place.open(clock, owner="only")
    try:
        solo = replica(ledger, clock, Budget())
        assert not solo.shared
        assert solo.is_reconciler
        assert await solo.admit(KEY) is Admission.WRITE
    finally:
        await ledger.close()


# --- a database away at start-up -------------------------------------------------------------


def test_a_database_away_at_start_is_waited_out_not_exited(postgres_place: Place) -> None:
    """The server is down when the daemon starts; it comes back during the second wait."""
    server = postgres_place.server
    assert server is not None
    server.stop()
    waits: list[float] = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            server.start()

    async def scenario() -> None:
        ledger = wait_for_shared_ledger(
            lambda: open_ledger_blocking(
                str(postgres_place.location), password=postgres_place.password
            ),
            delays=iter([0.01] * 10),
            sleep=wait,
        )
        try:
            assert ledger.available
        finally:
            await ledger.close()

    try:
        asyncio.run(scenario())
    finally:
        if server._process is None:
            server.start()
    assert waits == [0.01, 0.01]


def test_a_refusal_for_good_is_raised_at_once(postgres_place: Place) -> None:
    async def scenario() -> None:
        wait_for_shared_ledger(
            lambda: open_ledger_blocking(str(postgres_place.location), password="wrong"),
            delays=iter([0.01]),
            sleep=lambda seconds: pytest.fail("a wrong password must not be waited out"),
        )

    with pytest.raises(LedgerError):
        asyncio.run(scenario())
