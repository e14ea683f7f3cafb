"""The ledger: idempotent work items, transitions, restart recovery, housekeeping, clear errors."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wrapupd.clock import ManualClock
from wrapupd.errors import LedgerError
from wrapupd.events import ItemState, Outcome, WorkItem
from wrapupd.ledger import LEDGER_FILENAME, SCHEMA_VERSION, Ledger, ledger_path

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def item(conversation: str = "conv-1", participant: str = "agent-1", **changes: object) -> WorkItem:
    base = WorkItem(
        conversation_id=conversation,
        participant_id=participant,
        queue_id="queue-1",
        acw_started_at=T0,
        due_at=T0 + timedelta(seconds=30),
        deadline=T0 + timedelta(seconds=115),
        media_type="call",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def move_to(clock: ManualClock, seconds: float) -> None:
    """Set the manual clock (and so its wall time) to `seconds` after its start, from sync code."""
    asyncio.run(clock.advance(seconds - clock.monotonic()))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=T0)


@pytest.fixture
def ledger(clock: ManualClock) -> Iterator[Ledger]:
    with Ledger.open(":memory:", clock=clock) as opened:
        yield opened


# --- adding work ------------------------------------------------------------------------------


def test_a_new_item_is_stored_as_pending_and_read_back_equal(ledger: Ledger) -> None:
    assert ledger.add_pending(item())
    stored = ledger.get(("conv-1", "agent-1"))
    assert stored == item()
    assert stored is not None
    assert stored.state is ItemState.PENDING
    assert stored.updated_at == T0


def test_the_same_participant_is_taken_on_only_once(ledger: Ledger) -> None:
    assert ledger.add_pending(item())
    assert not ledger.add_pending(item(queue_id="another", due_at=T0))
    assert ledger.get(("conv-1", "agent-1")) == item()


@pytest.mark.parametrize("finish", ["writing", "done"])
def test_a_participant_in_any_state_refuses_a_second_add(ledger: Ledger, finish: str) -> None:
    ledger.add_pending(item())
    ledger.mark_writing(("conv-1", "agent-1"), 1, "code-1")
    if finish == "done":
        ledger.record_outcome(("conv-1", "agent-1"), Outcome.APPLIED)
    assert not ledger.add_pending(item())


def test_other_participants_of_the_same_conversation_are_separate(ledger: Ledger) -> None:
    assert ledger.add_pending(item(participant="agent-1"))
    assert ledger.add_pending(item(participant="agent-2"))
    assert ledger.add_pending(item(conversation="conv-2", participant="agent-1"))
    assert len(ledger.unfinished()) == 3


def test_an_unknown_key_reads_as_none(ledger: Ledger) -> None:
    assert ledger.get(("nope", "nope")) is None


def test_optional_fields_round_trip_as_none(ledger: Ledger) -> None:
    ledger.add_pending(item(deadline=None, media_type=None))
    stored = ledger.get(("conv-1", "agent-1"))
    assert stored is not None
    assert stored.deadline is None
    assert stored.media_type is None


def test_times_in_other_zones_are_stored_as_utc(ledger: Ledger) -> None:
    paris = timezone(timedelta(hours=1))
    ledger.add_pending(item(acw_started_at=datetime(2026, 1, 1, 10, 0, tzinfo=paris)))
    stored = ledger.get(("conv-1", "agent-1"))
    assert stored is not None
    assert stored.acw_started_at == T0
    assert stored.acw_started_at.utcoffset() == timedelta(0)


def test_naive_times_are_refused(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="naive"):
        ledger.add_pending(item(due_at=datetime(2026, 1, 1)))


# --- transitions ------------------------------------------------------------------------------

KEY = ("conv-1", "agent-1")


def test_the_happy_path_pending_writing_done(ledger: Ledger, clock: ManualClock) -> None:
    ledger.add_pending(item())
    move_to(clock, 30.0)  # the manual clock's wall time follows its monotonic time
    assert ledger.mark_writing(KEY, 1, "code-1")
    writing = ledger.get(KEY)
    assert writing is not None
    assert (writing.state, writing.attempts, writing.code_id) == (ItemState.WRITING, 1, "code-1")
    assert writing.updated_at == T0 + timedelta(seconds=30)
    assert ledger.record_outcome(KEY, Outcome.APPLIED, "204")
    done = ledger.get(KEY)
    assert done is not None
    assert (done.state, done.outcome, done.detail, done.code_id) == (
        ItemState.DONE,
        Outcome.APPLIED,
        "204",
        "code-1",  # kept from mark_writing
    )


def test_a_retryable_failure_goes_back_to_pending(ledger: Ledger) -> None:
    ledger.add_pending(item())
    ledger.mark_writing(KEY, 1, "code-1")
    later = T0 + timedelta(minutes=1)
    assert ledger.back_to_pending(KEY, later, "503 from the platform")
    stored = ledger.get(KEY)
    assert stored is not None
    assert (stored.state, stored.due_at, stored.detail, stored.attempts) == (
        ItemState.PENDING,
        later,
        "503 from the platform",
        1,
    )
    assert ledger.mark_writing(KEY, 2, "code-1")
    again = ledger.get(KEY)
    assert again is not None
    assert again.attempts == 2


def test_reschedule_moves_only_pending_items(ledger: Ledger) -> None:
    ledger.add_pending(item())
    later = T0 + timedelta(minutes=5)
    assert ledger.reschedule(KEY, later)
    stored = ledger.get(KEY)
    assert stored is not None
    assert stored.due_at == later
    ledger.mark_writing(KEY, 1, "c")
    assert not ledger.reschedule(KEY, T0)


def test_the_first_outcome_wins(ledger: Ledger) -> None:
    ledger.add_pending(item())
    assert ledger.record_outcome(KEY, Outcome.ALREADY_CODED, "agent chose one")
    assert not ledger.record_outcome(KEY, Outcome.APPLIED)
    assert not ledger.mark_writing(KEY, 1, "c")
    assert not ledger.back_to_pending(KEY, T0, "x")
    assert not ledger.reschedule(KEY, T0)
    stored = ledger.get(KEY)
    assert stored is not None
    assert (stored.state, stored.outcome) == (ItemState.DONE, Outcome.ALREADY_CODED)


def test_an_outcome_can_carry_the_code_that_was_written(ledger: Ledger) -> None:
    ledger.add_pending(item())
    ledger.record_outcome(KEY, Outcome.DRY_RUN, code_id="would-be-code")
    stored = ledger.get(KEY)
    assert stored is not None
    assert stored.code_id == "would-be-code"


def test_transitions_on_unknown_keys_change_nothing(ledger: Ledger) -> None:
    unknown = ("ghost", "ghost")
    assert not ledger.mark_writing(unknown, 1, "c")
    assert not ledger.back_to_pending(unknown, T0, None)
    assert not ledger.record_outcome(unknown, Outcome.FAILED)
    assert not ledger.reschedule(unknown, T0)
    assert ledger.get(unknown) is None


def test_unfinished_lists_pending_and_writing_soonest_first(ledger: Ledger) -> None:
    ledger.add_pending(item("late", due_at=T0 + timedelta(seconds=90)))
    ledger.add_pending(item("soon", due_at=T0 + timedelta(seconds=10)))
    ledger.add_pending(item("writing", due_at=T0 + timedelta(seconds=50)))
    ledger.add_pending(item("done", due_at=T0))
    ledger.mark_writing(("writing", "agent-1"), 1, "c")
    ledger.record_outcome(("done", "agent-1"), Outcome.TOO_LATE)
    unfinished = ledger.unfinished()
    assert [i.conversation_id for i in unfinished] == ["soon", "writing", "late"]
    assert [i.state for i in unfinished] == [
        ItemState.PENDING,
        ItemState.WRITING,
        ItemState.PENDING,
    ]


# --- restart ----------------------------------------------------------------------------------


def test_a_restart_keeps_everything(tmp_path: Path, clock: ManualClock) -> None:
    path = ledger_path(tmp_path)
    with Ledger.open(path, clock=clock) as first:
        first.add_pending(item("pending"))
        first.add_pending(item("writing"))
        first.mark_writing(("writing", "agent-1"), 3, "code-9")
        first.add_pending(item("done"))
        first.record_outcome(("done", "agent-1"), Outcome.APPLIED, "ok")
        before = {i.conversation_id: i for i in first.unfinished()}
        done_before = first.get(("done", "agent-1"))

    with Ledger.open(path, clock=clock) as second:
        after = {i.conversation_id: i for i in second.unfinished()}
        assert after == before
        assert after["writing"].state is ItemState.WRITING  # must be re-checked before writing
        assert after["writing"].attempts == 3
        assert second.get(("done", "agent-1")) == done_before
        assert not second.add_pending(item("done"))  # the guard survives restarts
        assert second.outcome_counts()[Outcome.APPLIED] == 1


def test_the_file_uses_wal_and_records_its_schema_version(tmp_path: Path) -> None:
    with Ledger.open(ledger_path(tmp_path)) as opened:
        opened.add_pending(item())
        assert opened._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    raw = sqlite3.connect(ledger_path(tmp_path))
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    finally:
        raw.close()


def test_each_transition_is_committed_at_once(tmp_path: Path) -> None:
    """Another connection sees every change without the ledger being closed: nothing is pending."""
    path = ledger_path(tmp_path)
    with Ledger.open(path) as opened:
        opened.add_pending(item())
        opened.mark_writing(KEY, 1, "c")
        raw = sqlite3.connect(path)
        try:
            row = raw.execute("SELECT state, attempts FROM work_items").fetchone()
        finally:
            raw.close()
        assert row == ("writing", 1)


def test_reopening_does_not_add_a_second_schema_version(tmp_path: Path) -> None:
    for _ in range(3):
        Ledger.open(ledger_path(tmp_path)).close()
    raw = sqlite3.connect(ledger_path(tmp_path))
    try:
        assert raw.execute("SELECT count(*) FROM schema_version").fetchone() == (1,)
    finally:
        raw.close()


# --- housekeeping -----------------------------------------------------------------------------


def test_purge_removes_only_old_finished_items(ledger: Ledger, clock: ManualClock) -> None:
    ledger.add_pending(item("old-done"))
    ledger.record_outcome(("old-done", "agent-1"), Outcome.APPLIED)
    ledger.add_pending(item("old-pending"))
    move_to(clock, 10 * 86400.0)
    ledger.add_pending(item("new-done"))
    ledger.record_outcome(("new-done", "agent-1"), Outcome.APPLIED)

    removed = ledger.purge(older_than=T0 + timedelta(days=5))
    assert removed == 1
    assert ledger.get(("old-done", "agent-1")) is None
    assert ledger.get(("old-pending", "agent-1")) is not None  # unfinished work is never purged
    assert ledger.get(("new-done", "agent-1")) is not None
    assert ledger.purge(older_than=T0 + timedelta(days=5)) == 0


def test_a_purged_participant_could_be_taken_on_again(ledger: Ledger, clock: ManualClock) -> None:
    ledger.add_pending(item())
    ledger.record_outcome(KEY, Outcome.APPLIED)
    move_to(clock, 86400.0)
    ledger.purge(older_than=clock.now())
    assert ledger.add_pending(item())


def test_outcome_counts_cover_every_outcome(ledger: Ledger) -> None:
    outcomes = [Outcome.APPLIED, Outcome.APPLIED, Outcome.TOO_LATE, Outcome.FORBIDDEN]
    for n, outcome in enumerate(outcomes):
        ledger.add_pending(item(f"c{n}"))
        ledger.record_outcome((f"c{n}", "agent-1"), outcome)
    ledger.add_pending(item("still-pending"))
    counts = ledger.outcome_counts()
    assert set(counts) == set(Outcome)
    assert counts[Outcome.APPLIED] == 2
    assert counts[Outcome.TOO_LATE] == 1
    assert counts[Outcome.FORBIDDEN] == 1
    assert counts[Outcome.DRY_RUN] == 0


@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from("xy")), max_size=20))
def test_adds_succeed_exactly_once_per_key(keys: list[tuple[str, str]]) -> None:
    with Ledger.open(":memory:", clock=ManualClock(start=T0)) as opened:
        results = [opened.add_pending(item(c, p)) for c, p in keys]
        assert sum(results) == len(set(keys))
        assert len(opened.unfinished()) == len(set(keys))


# --- errors -----------------------------------------------------------------------------------


def test_a_missing_state_directory_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / LEDGER_FILENAME
    with pytest.raises(LedgerError, match=r"state directory .*nope does not exist"):
        Ledger.open(missing)


def test_a_file_where_the_directory_should_be_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("not a directory")
    with pytest.raises(LedgerError, match="not a directory"):
        Ledger.open(tmp_path / "state" / LEDGER_FILENAME)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only directories")
def test_an_unwritable_directory_is_a_clear_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(LedgerError, match="not writable"):
            Ledger.open(locked / LEDGER_FILENAME)
    finally:
        locked.chmod(0o700)


def test_an_unwritable_directory_is_reported_even_as_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulate the permission error root never gets, to check the message."""

    def refuse(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "touch", refuse)
    with pytest.raises(LedgerError, match="not writable by this user: Permission denied"):
        Ledger.open(tmp_path / LEDGER_FILENAME)


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / LEDGER_FILENAME
    path.write_bytes(b"this is certainly not sqlite " * 200)
    with pytest.raises(LedgerError, match=str(path)):
        Ledger.open(path)


def test_a_ledger_from_a_newer_wrapupd_is_refused(tmp_path: Path) -> None:
    path = ledger_path(tmp_path)
    Ledger.open(path).close()
    raw = sqlite3.connect(path)
    raw.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    raw.commit()
    raw.close()
    with pytest.raises(LedgerError, match="newer than this wrapupd"):
        Ledger.open(path)


def test_using_a_closed_ledger_raises_ledger_error(clock: ManualClock) -> None:
    closed = Ledger.open(":memory:", clock=clock)
    closed.close()
    with pytest.raises(LedgerError, match="add_pending"):
        closed.add_pending(item())
