"""Leases, roles and heartbeats: only the lease holder writes; expired leases are taken over.

Replicas sharing a PostgreSQL ledger are two :class:`Ledger` objects with their own owner names on
one database and one manual clock; the single-owner SQLite ledger answers the same calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ledger_places import KEY, T0, Place, item
from wrapupd.clock import ManualClock
from wrapupd.events import Outcome
from wrapupd.ledger import Claim, HistoryKind, Ledger

LEASE = 30.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=T0)


@pytest.fixture
async def pair(
    postgres_place: Place,
    clock: ManualClock,
) -> AsyncIterator[tuple[Ledger, Ledger]]:
    a = await postgres_place.open(clock, owner="replica-a")
    b = await postgres_place.open(clock, owner="replica-b")
    yield a, b
    await a.close()
    await b.close()


async def both_know(a: Ledger, b: Ledger) -> None:
    a.add_pending(item())
    await a.flush()
    b.add_pending(item())  # each replica saw the event; the database has one row
    await b.flush()


# --- one owner (both backends) ----------------------------------------------------------------


async def test_a_single_owner_claims_renews_and_releases(place: Place, clock: ManualClock) -> None:
    ledger = await place.open(clock, owner="only")
    try:
        assert (await ledger.claim(KEY, LEASE)).claim is Claim.UNKNOWN
        ledger.add_pending(item())
        assert (await ledger.claim(KEY, LEASE)).claim is Claim.MINE
        assert (await ledger.claim(KEY, LEASE)).claim is Claim.MINE  # claiming again renews
        assert await ledger.renew([KEY], LEASE) == [True]
        assert await ledger.mark_writing(KEY, 1, "code-1", leased=True)
        assert await ledger.release(KEY)
        assert await ledger.renew([KEY], LEASE) == [False]
        assert not await ledger.mark_writing(KEY, 2, "code-1", leased=True)  # no lease, no write
        assert (await ledger.claim(KEY, LEASE)).claim is Claim.MINE
        await ledger.record_outcome(KEY, Outcome.APPLIED)
        assert (await ledger.claim(KEY, LEASE)).claim is Claim.FINISHED
        assert await ledger.renew([KEY], LEASE) == [False]
    finally:
        await ledger.close()


async def test_renewing_answers_for_each_lease(place: Place, clock: ManualClock) -> None:
    ledger = await place.open(clock, owner="only")
    other = ("conv-2", "agent-1")
    try:
        ledger.add_pending(item())
        ledger.add_pending(item(other[0]))
        assert (await ledger.claim(KEY, LEASE)).claim is Claim.MINE
        assert (await ledger.claim(other, LEASE)).claim is Claim.MINE
        assert await ledger.release(other)
        assert await ledger.renew([KEY, other], LEASE) == [True, False]
        assert await ledger.renew([], LEASE) == []
    finally:
        await ledger.close()


async def test_a_lapsed_lease_of_ones_own_is_no_ground_for_a_write(
    place: Place,
    clock: ManualClock,
) -> None:
    ledger = await place.open(clock)
    try:
        ledger.add_pending(item())
        assert (await ledger.claim(KEY, LEASE)).claim is Claim.MINE
        await clock.advance(LEASE + 1)
        assert not await ledger.mark_writing(KEY, 1, "code-1", leased=True)
        assert (await ledger.claim(KEY, LEASE)).claim is Claim.MINE
        assert await ledger.mark_writing(KEY, 1, "code-1", leased=True)
    finally:
        await ledger.close()


async def test_roles_and_heartbeats_work_with_one_owner(place: Place, clock: ManualClock) -> None:
    ledger = await place.open(clock, owner="only")
    try:
        assert await ledger.claim_role("reconciler", 60)
        assert await ledger.claim_role("reconciler", 60)
        await ledger.heartbeat("budget 270/min")
        (me,) = await ledger.live_replicas(within_seconds=15)
        assert (me.owner, me.detail, me.last_seen) == ("only", "budget 270/min", T0)
        await clock.advance(20)
        assert await ledger.live_replicas(within_seconds=15) == []
    finally:
        await ledger.close()


# --- replicas sharing PostgreSQL ---------------------------------------------------------------


async def test_only_one_replica_holds_an_items_lease(pair: tuple[Ledger, Ledger]) -> None:
    a, b = pair
    await both_know(a, b)
    assert (await a.claim(KEY, LEASE)).claim is Claim.MINE
    assert (await b.claim(KEY, LEASE)).claim is Claim.HELD
    assert not await b.mark_writing(KEY, 1, "code-1", leased=True)
    assert await b.renew([KEY], LEASE) == [False]
    assert await a.mark_writing(KEY, 1, "code-1", leased=True)


async def test_a_held_lease_says_when_it_ends(
    pair: tuple[Ledger, Ledger], clock: ManualClock
) -> None:
    """So that a replica waiting on it claims again just after that, not a renewal period late."""
    a, b = pair
    await both_know(a, b)
    granted = clock.now()
    await a.claim(KEY, LEASE)
    await clock.advance(5)
    answer = await b.claim(KEY, LEASE)
    assert answer.claim is Claim.HELD
    assert answer.held_until is not None
    assert abs((answer.held_until - granted).total_seconds() - LEASE) < 0.01


async def test_an_expired_lease_is_taken_over_and_said_so(
    pair: tuple[Ledger, Ledger], clock: ManualClock
) -> None:
    a, b = pair
    await both_know(a, b)
    assert (await a.claim(KEY, LEASE)).claim is Claim.MINE
    await a.mark_writing(KEY, 1, "code-1", leased=True)  # then replica a dies mid-write
    await clock.advance(LEASE - 1)
    assert (await b.claim(KEY, LEASE)).claim is Claim.HELD
    await clock.advance(2)
    assert (await b.claim(KEY, LEASE)).claim is Claim.TAKEN_OVER  # b must re-check by GET first
    assert await a.renew([KEY], LEASE) == [False]  # a, if it comes back, has lost it
    assert not await a.mark_writing(KEY, 2, "code-1", leased=True)
    assert await b.mark_writing(KEY, 2, "code-1", leased=True)
    (history,) = b.queries.show(*KEY)
    leases = [(e.owner, e.detail) for e in history.events if e.kind is HistoryKind.LEASE]
    assert leases == [
        ("replica-a", "taken"),
        ("replica-b", "taken over from replica-a (lease expired)"),
    ]


async def test_a_finish_releases_the_lease_and_ends_the_item_for_everyone(
    pair: tuple[Ledger, Ledger],
) -> None:
    a, b = pair
    await both_know(a, b)
    await a.claim(KEY, LEASE)
    await a.record_outcome(KEY, Outcome.APPLIED)
    assert (await b.claim(KEY, LEASE)).claim is Claim.FINISHED
    assert not await b.record_outcome(KEY, Outcome.TOO_LATE)  # the first outcome wins


async def test_an_item_another_replica_gave_up_on_can_be_reopened_here(
    pair: tuple[Ledger, Ledger],
) -> None:
    a, b = pair
    await both_know(a, b)
    await a.record_outcome(KEY, Outcome.FAILED, "gave up")
    assert not b.reopen(KEY, due_at=T0, detail="seen again")  # b knows it only as open…
    assert (await b.claim(KEY, LEASE)).claim is Claim.FINISHED  # …until its claim learns the finish
    assert b.reopen(KEY, due_at=T0, detail="seen again in ACW without a code")
    assert (await b.claim(KEY, LEASE)).claim is Claim.MINE
    stored = b.get(KEY)
    assert stored is not None and stored.outcome is None


async def test_the_database_refuses_a_reopen_of_an_item_applied_meanwhile(
    pair: tuple[Ledger, Ledger],
) -> None:
    a, b = pair
    await both_know(a, b)
    await a.record_outcome(KEY, Outcome.FAILED, "gave up")
    assert (await b.claim(KEY, LEASE)).claim is Claim.FINISHED
    assert a.reopen(KEY, due_at=T0, detail="seen again")  # a reopens and applies first
    await a.record_outcome(KEY, Outcome.APPLIED)
    assert b.reopen(KEY, due_at=T0, detail="seen again")  # b's index still says "gave up"…
    await b.flush()
    stored = b.get(KEY)
    assert stored is not None and stored.outcome is Outcome.APPLIED  # …the SQL guard refused
    assert (await b.claim(KEY, LEASE)).claim is Claim.FINISHED


async def test_one_replica_at_a_time_holds_the_reconciler_role(
    pair: tuple[Ledger, Ledger], clock: ManualClock
) -> None:
    a, b = pair
    assert await a.claim_role("reconciler", 60)
    assert not await b.claim_role("reconciler", 60)
    await clock.advance(59)
    assert await a.claim_role("reconciler", 60)  # renewed in time
    await clock.advance(59)
    assert not await b.claim_role("reconciler", 60)
    await a.retire()
    assert await b.claim_role("reconciler", 60)  # a retired replica holds no role
    await clock.advance(61)
    assert await a.claim_role("reconciler", 60)  # b stopped renewing


async def test_live_replicas_share_the_budget_and_a_retired_one_leaves_at_once(
    pair: tuple[Ledger, Ledger], clock: ManualClock
) -> None:
    a, b = pair
    await a.heartbeat()
    await b.heartbeat()
    assert [r.owner for r in await a.live_replicas(15)] == ["replica-a", "replica-b"]
    await clock.advance(10)
    await a.heartbeat()
    await clock.advance(10)
    assert [r.owner for r in await b.live_replicas(15)] == ["replica-a"]  # b's heartbeat is old
    await a.claim_role("reconciler", 600)
    await a.retire()
    assert await b.live_replicas(15) == []
    assert await b.claim_role("reconciler", 60)
