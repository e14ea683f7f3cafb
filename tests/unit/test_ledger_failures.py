"""Group commit and failing storage: the loop never waits on the disk, nothing is lost, no PATCH
leaves without its durable mark.

A full disk is a real one: a 2 MB tmpfs mounted for the test and filled with a file (root only;
the test says why it skips elsewhere). The database going away is the test server stopped.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from full_disk import fill, small_disk
from ledger_places import (
    KEY,
    Place,
    eventually,
    item,
    sqlite_at,
)
from wrapupd.errors import LedgerError, LedgerUnavailable
from wrapupd.events import ItemState, Outcome
from wrapupd.ledger import HistoryKind, Ledger, writer
from wrapupd.ledger.backend import Session


@pytest.fixture
async def full_disk_ledger() -> AsyncIterator[tuple[Ledger, Path]]:
    with small_disk() as disk:
        ledger = await sqlite_at(disk).open()
        ledger.add_pending(item())
        await ledger.flush()
        yield ledger, disk
        if not getattr(ledger, "closed_by_test", False):
            await ledger.close(give_up_after=1.0)


async def wait_available(ledger: Ledger) -> None:
    await eventually(lambda: ledger.available, what="the ledger available again")
    await ledger.flush()


# --- group commit -----------------------------------------------------------------------------


class HeldCommits:
    """Holds the writer inside its transaction until released, and counts commits."""

    def __init__(self, ledger: Ledger) -> None:
        self.gate = threading.Event()
        self.commits = 0
        backend = ledger._backend  # type: ignore[attr-defined]
        real = backend.transaction

        @contextmanager
        def held() -> Iterator[Session]:
            self.gate.wait()
            with real() as session:
                yield session
            self.commits += 1

        backend.transaction = held


async def test_the_event_loop_never_waits_on_a_commit_and_many_items_share_one(
    sqlite_place: Place,
) -> None:
    ledger = await sqlite_place.open()
    held = HeldCommits(ledger)
    try:
        assert all(ledger.add_pending(item(f"c{n}")) for n in range(1000))
        mark = asyncio.create_task(ledger.mark_writing(("c7", "agent-1"), 1, "code-1"))
        for _ in range(20):
            await asyncio.sleep(0)  # the loop keeps running while the writer is stuck on the disk
        assert not mark.done(), "the writing mark was acknowledged before it was on disk"
        assert ledger.queries.get(("c7", "agent-1")) is None  # not on disk, so not visible
        held.gate.set()
        assert await mark
        stored = ledger.get(("c7", "agent-1"))
        assert stored is not None and stored.state is ItemState.WRITING
        assert len(ledger.unfinished()) == 1000
        assert held.commits <= 2, f"1,001 writes took {held.commits} commits"
    finally:
        held.gate.set()
        await ledger.close()


class CountedCommits:
    """Counts the writer's commits (transactions that ended without an error)."""

    def __init__(self, ledger: Ledger) -> None:
        self.commits = 0
        backend = ledger._backend  # type: ignore[attr-defined]
        real = backend.transaction

        @contextmanager
        def counted() -> Iterator[Session]:
            with real() as session:
                yield session
            self.commits += 1

        backend.transaction = counted


async def test_a_new_item_and_its_writing_mark_reach_the_disk_in_one_commit(
    sqlite_place: Place, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An item due at once is marked right after it is taken on: one fsync on the write's path.

    The writer's patience is made long so that the result cannot depend on the machine's speed;
    the pause between intake and mark gives a writer that commits at once every chance to."""
    monkeypatch.setattr(writer, "LAZY_COMMIT_S", 60.0)
    ledger = await sqlite_place.open()
    counted = CountedCommits(ledger)
    try:
        assert ledger.add_pending(item("c1"))
        await asyncio.sleep(0.02)
        assert counted.commits == 0, "a write nobody waited for was committed on its own at once"
        assert await ledger.mark_writing(("c1", "agent-1"), 1, "code-1")
        assert counted.commits == 1, f"the item and its mark took {counted.commits} commits"
        stored = ledger.queries.get(("c1", "agent-1"))  # on disk, without waiting for the writer
        assert stored is not None and stored.state is ItemState.WRITING
    finally:
        await ledger.close()


async def test_a_write_nobody_waits_for_still_reaches_the_disk_on_its_own(
    sqlite_place: Place,
) -> None:
    ledger = await sqlite_place.open()
    try:
        assert ledger.add_pending(item("c1"))
        ledger.note(("c1", "agent-1"), HistoryKind.CHECK, "in ACW without a code")
        await eventually(
            lambda: ledger.queries.get(("c1", "agent-1")) is not None,
            what="the new item on disk with nobody waiting for it",
        )
        assert ledger.health().queued == 0
    finally:
        await ledger.close()


# --- a full disk ------------------------------------------------------------------------------


async def test_a_full_disk_stops_writes_visibly_keeps_everything_and_resumes(
    full_disk_ledger: tuple[Ledger, Path],
) -> None:
    ledger, disk = full_disk_ledger
    filler = fill(disk)
    for n in range(2000):
        assert ledger.add_pending(item(f"c{n}"))  # intake goes on, in memory
    outcome = ledger.record_outcome(KEY, Outcome.TOO_LATE, "ended")
    answers: list[bool | None] = []
    outcome.when_settled(answers.append)
    with pytest.raises(LedgerUnavailable, match="disk is full"):
        await ledger.flush()
    health = ledger.health()
    assert not health.available and "disk is full" in health.detail
    assert health.queued >= 2001
    with pytest.raises(LedgerUnavailable):
        await outcome  # not acknowledged; the write itself waits in the queue
    assert answers == [None]  # its callback is told so (no value: not refused, not yet written)
    with pytest.raises(LedgerUnavailable, match="disk is full"):
        await ledger.mark_writing(KEY, 1, "code-1")  # no durable mark: the PATCH must not go

    filler.unlink()
    await wait_available(ledger)
    assert ledger.health().queued == 0
    assert len(ledger.unfinished()) == 2000
    stored = ledger.get(KEY)
    assert stored is not None
    assert (stored.state, stored.outcome, stored.attempts) == (ItemState.DONE, Outcome.TOO_LATE, 0)


async def test_closing_on_a_full_disk_gives_up_after_its_deadline_and_says_what_was_lost(
    full_disk_ledger: tuple[Ledger, Path],
) -> None:
    ledger, disk = full_disk_ledger
    fill(disk)
    for n in range(500):
        ledger.add_pending(item(f"c{n}"))
    with capture_logs() as logs:
        await ledger.close(give_up_after=0.05)
    ledger.closed_by_test = True  # type: ignore[attr-defined]
    lost = [entry for entry in logs if entry["event"] == "ledger_writes_lost_at_exit"]
    assert lost and lost[0]["count"] == 500


# --- writes the database refuses for good ---------------------------------------------------


async def test_a_write_refused_for_good_fails_alone_and_the_rest_is_written(
    sqlite_place: Place,
) -> None:
    ledger = await sqlite_place.open()
    try:
        ledger.add_pending(item())
        await ledger.flush()
        raw = sqlite3.connect(sqlite_place.location)
        raw.execute("DROP TABLE item_events")  # every history line now fails: a stand-in bug
        raw.commit()
        raw.close()
        ledger.add_pending(item("other"))
        with pytest.raises(LedgerError, match="no such table"):
            await ledger.mark_writing(KEY, 1, "code-1")
        assert ledger.available
        await ledger.flush()
        assert ledger.get(("other", "agent-1")) is not None
    finally:
        await ledger.close()


# --- the database going away ------------------------------------------------------------------


async def test_a_database_that_goes_away_loses_nothing_and_is_rejoined(
    postgres_place: Place,
) -> None:
    server = postgres_place.server
    assert server is not None
    ledger = await postgres_place.open()
    try:
        ledger.add_pending(item())
        await ledger.flush()
        server.stop()
        for n in range(200):
            assert ledger.add_pending(item(f"c{n}"))
        with pytest.raises(LedgerUnavailable):
            await ledger.flush()
        assert not ledger.available
        with pytest.raises(LedgerUnavailable):
            await ledger.mark_writing(KEY, 1, "code-1")
        with pytest.raises(LedgerUnavailable):
            await ledger.claim(KEY, 30)
        server.start()
        await wait_available(ledger)
        assert len(ledger.unfinished()) == 201
        assert await ledger.mark_writing(KEY, 1, "code-1")
    finally:
        await ledger.close()


async def test_no_password_reaches_an_error_message(postgres_place: Place) -> None:
    wrong = "not-the-password-0123456789"
    with pytest.raises(LedgerError) as refused:
        await Place("postgres", postgres_place.location, wrong).open()
    assert "password authentication failed" in str(refused.value)
    assert wrong not in str(refused.value) and refused.value.__cause__ is None
    in_url = str(postgres_place.location).replace("wrapupd@", f"wrapupd:{wrong}@")
    with pytest.raises(LedgerError) as refused_again:
        await Place("postgres", in_url).open()
    assert wrong not in str(refused_again.value)
    assert "wrapupd@127.0.0.1" in str(refused_again.value)
