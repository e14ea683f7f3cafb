"""The ledger on both backends: idempotent work items, transitions, reopen, history, restart, purge."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger_places import KEY, T0, Place, item, sqlite_at
from wrapupd.clock import ManualClock
from wrapupd.events import ItemState, Outcome
from wrapupd.ledger import HistoryKind, Known, Ledger
from wrapupd.ledger.model import iso


@pytest.fixture
async def ledger(place: Place, clock: ManualClock) -> AsyncIterator[Ledger]:
    opened = await place.open(clock)
    yield opened
    await opened.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=T0)


# --- adding work ------------------------------------------------------------------------------


async def test_a_new_item_is_stored_as_pending_and_read_back_equal(ledger: Ledger) -> None:
    assert ledger.add_pending(item())
    await ledger.flush()
    stored = ledger.get(KEY)
    assert stored == item()
    assert stored is not None
    assert stored.state is ItemState.PENDING
    assert stored.updated_at == T0


async def test_reads_include_this_processs_queued_writes(ledger: Ledger) -> None:
    ledger.add_pending(item())
    ledger.record_outcome(KEY, Outcome.TOO_LATE, "ended")
    stored = ledger.get(KEY)  # no flush: get waits for what this process queued
    assert stored is not None and stored.outcome is Outcome.TOO_LATE
    assert ledger.outcome_counts()[Outcome.TOO_LATE] == 1


async def test_the_same_participant_is_taken_on_only_once(ledger: Ledger) -> None:
    assert ledger.add_pending(item())
    assert not ledger.add_pending(item(queue_id="another", due_at=T0))
    await ledger.flush()
    assert ledger.get(KEY) == item()


@pytest.mark.parametrize("finish", ["writing", "done"])
async def test_a_participant_in_any_state_refuses_a_second_add(ledger: Ledger, finish: str) -> None:
    ledger.add_pending(item())
    await ledger.mark_writing(KEY, 1, "code-1")
    if finish == "done":
        await ledger.record_outcome(KEY, Outcome.APPLIED)
    assert not ledger.add_pending(item())


async def test_other_participants_of_the_same_conversation_are_separate(ledger: Ledger) -> None:
    assert ledger.add_pending(item(participant="agent-1"))
    assert ledger.add_pending(item(participant="agent-2"))
    assert ledger.add_pending(item(conversation="conv-2", participant="agent-1"))
    await ledger.flush()
    assert len(ledger.unfinished()) == 3


async def test_an_unknown_key_reads_as_none(ledger: Ledger) -> None:
    assert ledger.get(("nope", "nope")) is None
    assert ledger.known(("nope", "nope")) is None


async def test_optional_fields_round_trip_as_none(ledger: Ledger) -> None:
    ledger.add_pending(item(deadline=None, media_type=None))
    await ledger.flush()
    stored = ledger.get(KEY)
    assert stored is not None
    assert (stored.deadline, stored.media_type) == (None, None)


async def test_times_in_other_zones_are_stored_as_utc(ledger: Ledger) -> None:
    paris = timezone(timedelta(hours=1))
    ledger.add_pending(item(acw_started_at=datetime(2026, 1, 1, 10, 0, tzinfo=paris)))
    await ledger.flush()
    stored = ledger.get(KEY)
    assert stored is not None
    assert stored.acw_started_at == T0
    assert stored.acw_started_at.utcoffset() == timedelta(0)


async def test_naive_times_are_refused_and_nothing_is_taken_on(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="naive"):
        ledger.add_pending(item(due_at=datetime(2026, 1, 1)))
    assert ledger.known(KEY) is None
    assert ledger.add_pending(item())


# --- transitions ------------------------------------------------------------------------------


async def test_the_happy_path_pending_writing_done(ledger: Ledger, clock: ManualClock) -> None:
    ledger.add_pending(item())
    await clock.advance(30)
    assert await ledger.mark_writing(KEY, 1, "code-1")
    writing = ledger.get(KEY)  # no flush: the mark is on disk when mark_writing returns
    assert writing is not None
    assert (writing.state, writing.attempts, writing.code_id) == (ItemState.WRITING, 1, "code-1")
    assert writing.updated_at == T0 + timedelta(seconds=30)
    assert await ledger.record_outcome(KEY, Outcome.APPLIED, "204")
    done = ledger.get(KEY)
    assert done is not None
    assert (done.state, done.outcome, done.detail, done.code_id) == (
        ItemState.DONE,
        Outcome.APPLIED,
        "204",
        "code-1",  # kept from mark_writing
    )


async def test_a_retryable_failure_goes_back_to_pending(ledger: Ledger) -> None:
    ledger.add_pending(item())
    await ledger.mark_writing(KEY, 1, "code-1")
    later = T0 + timedelta(minutes=1)
    assert await ledger.back_to_pending(KEY, later, "503 from the platform")
    stored = ledger.get(KEY)
    assert stored is not None
    assert (stored.state, stored.due_at, stored.detail, stored.attempts) == (
        ItemState.PENDING,
        later,
        "503 from the platform",
        1,
    )
    assert await ledger.mark_writing(KEY, 2, "code-1")
    again = ledger.get(KEY)
    assert again is not None and again.attempts == 2


async def test_reschedule_moves_only_pending_items(ledger: Ledger) -> None:
    ledger.add_pending(item())
    later = T0 + timedelta(minutes=5)
    assert await ledger.reschedule(KEY, later)
    stored = ledger.get(KEY)
    assert stored is not None and stored.due_at == later
    await ledger.mark_writing(KEY, 1, "c")
    assert not await ledger.reschedule(KEY, T0)


async def test_the_first_outcome_wins(ledger: Ledger) -> None:
    ledger.add_pending(item())
    assert await ledger.record_outcome(KEY, Outcome.ALREADY_CODED, "agent chose one")
    assert not await ledger.record_outcome(KEY, Outcome.APPLIED)
    assert not await ledger.mark_writing(KEY, 1, "c")
    assert not await ledger.back_to_pending(KEY, T0, "x")
    assert not await ledger.reschedule(KEY, T0)
    stored = ledger.get(KEY)
    assert stored is not None
    assert (stored.state, stored.outcome) == (ItemState.DONE, Outcome.ALREADY_CODED)
    assert ledger.known(KEY) is Known.SUCCEEDED


async def test_an_outcome_can_carry_the_code_that_was_written(ledger: Ledger) -> None:
    ledger.add_pending(item())
    await ledger.record_outcome(KEY, Outcome.DRY_RUN, code_id="would-be-code")
    stored = ledger.get(KEY)
    assert stored is not None and stored.code_id == "would-be-code"


async def test_transitions_on_unknown_keys_change_nothing(ledger: Ledger) -> None:
    unknown = ("ghost", "ghost")
    assert not await ledger.mark_writing(unknown, 1, "c")
    assert not await ledger.back_to_pending(unknown, T0, None)
    assert not await ledger.record_outcome(unknown, Outcome.FAILED)
    assert not await ledger.reschedule(unknown, T0)
    assert ledger.get(unknown) is None


async def test_unfinished_lists_pending_and_writing_soonest_first(ledger: Ledger) -> None:
    ledger.add_pending(item("late", due_at=T0 + timedelta(seconds=90)))
    ledger.add_pending(item("soon", due_at=T0 + timedelta(seconds=10)))
    ledger.add_pending(item("writing", due_at=T0 + timedelta(seconds=50)))
    ledger.add_pending(item("done", due_at=T0))
    await ledger.mark_writing(("writing", "agent-1"), 1, "c")
    await ledger.record_outcome(("done", "agent-1"), Outcome.TOO_LATE)
    unfinished = ledger.unfinished()
    assert [i.conversation_id for i in unfinished] == ["soon", "writing", "late"]
    assert [i.state for i in unfinished] == [
        ItemState.PENDING,
        ItemState.WRITING,
        ItemState.PENDING,
    ]


# --- reopen and history -----------------------------------------------------------------------


@pytest.mark.parametrize("outcome", [Outcome.FAILED, Outcome.TOO_LATE, Outcome.FORBIDDEN])
async def test_a_finish_without_our_code_is_reopened_by_a_later_sighting(
    ledger: Ledger, clock: ManualClock, outcome: Outcome
) -> None:
    ledger.add_pending(item())
    await ledger.mark_writing(KEY, 8, "code-1")
    ledger.record_outcome(KEY, outcome, "gave up")
    assert ledger.known(KEY) is Known.REOPENABLE
    assert not ledger.add_pending(item())  # still known: the applier asks for a reopen instead
    await clock.advance(60)
    due = clock.now() + timedelta(seconds=5)
    assert ledger.reopen(KEY, due_at=due, detail="seen in ACW without a code")
    assert ledger.known(KEY) is Known.OPEN
    await ledger.flush()
    stored = ledger.get(KEY)
    assert stored is not None
    assert (stored.state, stored.outcome, stored.attempts, stored.due_at) == (
        ItemState.PENDING,
        None,
        0,  # the attempts start over; the history keeps the old ones
        due,
    )
    assert await ledger.mark_writing(KEY, 1, "code-1")


@pytest.mark.parametrize("outcome", [Outcome.APPLIED, Outcome.ALREADY_CODED, Outcome.DRY_RUN])
async def test_a_finish_for_good_is_never_reopened(ledger: Ledger, outcome: Outcome) -> None:
    ledger.add_pending(item())
    await ledger.record_outcome(KEY, outcome)
    assert not ledger.reopen(KEY, due_at=T0, detail="seen again")
    await ledger.flush()
    stored = ledger.get(KEY)
    assert stored is not None and stored.outcome is outcome


async def test_an_open_item_is_not_reopened(ledger: Ledger) -> None:
    ledger.add_pending(item())
    assert not ledger.reopen(KEY, due_at=T0, detail="seen again")


async def test_the_history_tells_the_whole_story_in_order(
    ledger: Ledger, clock: ManualClock
) -> None:
    ledger.add_pending(item(), queue_name="Support", user_id="user-7")
    await clock.advance(1)
    ledger.note(KEY, HistoryKind.CHECK, "GET: in ACW without a code")
    await ledger.mark_writing(KEY, 1, "code-1")
    ledger.back_to_pending(KEY, clock.now(), "write: 503")
    await ledger.mark_writing(KEY, 2, "code-1")
    ledger.record_outcome(KEY, Outcome.FAILED, "gave up")
    ledger.reopen(KEY, due_at=clock.now(), detail="seen in ACW without a code")
    await ledger.flush()
    (history,) = ledger.queries.show("conv-1")
    kinds = [(e.kind, e.attempt) for e in history.events]
    assert kinds == [
        (HistoryKind.SEEN, None),
        (HistoryKind.CHECK, None),
        (HistoryKind.WRITE, 1),
        (HistoryKind.RETRY, None),
        (HistoryKind.WRITE, 2),
        (HistoryKind.OUTCOME, None),
        (HistoryKind.REOPEN, None),
    ]
    assert history.events[0].at == T0 and history.events[0].owner == ledger.owner
    assert "Support" in (history.events[0].detail or "")
    assert history.events[5].detail == "failed: gave up"
    assert (history.row.queue_name, history.row.user_id) == ("Support", "user-7")


# --- restart ----------------------------------------------------------------------------------


async def test_a_restart_keeps_everything(place: Place, clock: ManualClock) -> None:
    first = await place.open(clock)
    first.add_pending(item("pending"))
    first.add_pending(item("writing"))
    await first.mark_writing(("writing", "agent-1"), 3, "code-9")
    first.add_pending(item("done"))
    first.add_pending(item("failed"))
    first.record_outcome(("done", "agent-1"), Outcome.APPLIED, "ok")
    first.record_outcome(("failed", "agent-1"), Outcome.FAILED, "gave up")
    await first.flush()
    before = {i.conversation_id: i for i in first.unfinished()}
    done_before = first.get(("done", "agent-1"))
    await first.close()

    second = await place.open(clock)
    try:
        after = {i.conversation_id: i for i in second.unfinished()}
        assert after == before
        assert after["writing"].state is ItemState.WRITING  # must be re-checked before writing
        assert after["writing"].attempts == 3
        assert second.get(("done", "agent-1")) == done_before
        assert not second.add_pending(item("done"))  # the guard survives restarts
        assert second.known(("failed", "agent-1")) is Known.REOPENABLE
        assert second.known(("pending", "agent-1")) is Known.OPEN
        assert second.outcome_counts()[Outcome.APPLIED] == 1
    finally:
        await second.close()


async def test_close_writes_what_is_queued(place: Place) -> None:
    first = await place.open()
    for n in range(50):
        first.add_pending(item(f"c{n}"))
    await first.close()  # no flush: closing is enough
    second = await place.open()
    try:
        assert len(second.unfinished()) == 50
    finally:
        await second.close()


# --- housekeeping -----------------------------------------------------------------------------


async def test_purge_removes_only_old_finished_items(ledger: Ledger, clock: ManualClock) -> None:
    ledger.add_pending(item("old-done"))
    ledger.record_outcome(("old-done", "agent-1"), Outcome.APPLIED)
    ledger.add_pending(item("old-pending"))
    await clock.advance(10 * 86400)
    ledger.add_pending(item("new-done"))
    ledger.record_outcome(("new-done", "agent-1"), Outcome.APPLIED)

    assert await ledger.purge(older_than=T0 + timedelta(days=5)) == 1
    assert ledger.get(("old-done", "agent-1")) is None
    assert ledger.queries.show("old-done") == []
    assert ledger.get(("old-pending", "agent-1")) is not None  # unfinished work is never purged
    assert ledger.get(("new-done", "agent-1")) is not None
    assert await ledger.purge(older_than=T0 + timedelta(days=5)) == 0


async def test_a_purged_participant_could_be_taken_on_again(
    ledger: Ledger, clock: ManualClock
) -> None:
    ledger.add_pending(item())
    ledger.record_outcome(KEY, Outcome.APPLIED)
    await clock.advance(86400)
    await ledger.purge(older_than=clock.now())
    assert ledger.add_pending(item())


async def test_outcome_counts_cover_every_outcome(ledger: Ledger) -> None:
    outcomes = [Outcome.APPLIED, Outcome.APPLIED, Outcome.TOO_LATE, Outcome.FORBIDDEN]
    for n, outcome in enumerate(outcomes):
        ledger.add_pending(item(f"c{n}"))
        ledger.record_outcome((f"c{n}", "agent-1"), outcome)
    ledger.add_pending(item("still-pending"))
    await ledger.flush()
    counts = ledger.outcome_counts()
    assert set(counts) == set(Outcome)
    assert (counts[Outcome.APPLIED], counts[Outcome.TOO_LATE], counts[Outcome.FORBIDDEN]) == (
        2,
        1,
        1,
    )
    assert counts[Outcome.DRY_RUN] == 0


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from("xy")), max_size=20))
def test_adds_succeed_exactly_once_per_key(keys: list[tuple[str, str]]) -> None:
    async def run(directory: str) -> None:
        opened = await sqlite_at(Path(directory)).open()
        try:
            results = [opened.add_pending(item(c, p)) for c, p in keys]
            await opened.flush()
            assert sum(results) == len(set(keys))
            assert len(opened.unfinished()) == len(set(keys))
        finally:
            await opened.close()

    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(run(directory))


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(1000, 1, 2),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7, minutes=-30))]),
    )
)
def test_stored_times_are_fixed_width_iso_utc_text(moment: datetime) -> None:
    expected = moment.astimezone(UTC).isoformat(timespec="microseconds")
    assert iso(moment) == expected and len(expected) == len("2026-01-01T00:00:00.000000+00:00")
