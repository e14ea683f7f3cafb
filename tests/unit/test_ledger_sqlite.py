"""The SQLite ledger's file: durability settings, migrations, one writer per file, clear errors."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ledger_places import KEY, T0, Place, item
from wrapupd.errors import LedgerError, LedgerInUse
from wrapupd.events import Outcome
from wrapupd.ledger import LEDGER_FILENAME, SCHEMA_VERSION, ledger_path

# The schema wrapupd 0.1 wrote (before schema_migrations): a file from the field to upgrade.
SCHEMA_0_1 = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version VALUES (1);
CREATE TABLE work_items (
    conversation_id TEXT NOT NULL, participant_id TEXT NOT NULL, queue_id TEXT NOT NULL,
    acw_started_at TEXT NOT NULL, due_at TEXT NOT NULL, deadline TEXT,
    state TEXT NOT NULL CHECK (state IN ('pending', 'writing', 'done')),
    attempts INTEGER NOT NULL DEFAULT 0, outcome TEXT, code_id TEXT, detail TEXT, media_type TEXT,
    updated_at TEXT NOT NULL, PRIMARY KEY (conversation_id, participant_id)) WITHOUT ROWID;
CREATE INDEX work_items_unfinished ON work_items (due_at) WHERE state != 'done';
CREATE INDEX work_items_done ON work_items (updated_at) WHERE state = 'done';
INSERT INTO work_items VALUES ('old-conv', 'old-agent', 'q', '2025-12-31T09:00:00.000000+00:00',
    '2025-12-31T09:00:30.000000+00:00', NULL, 'done', 1, 'applied', 'code-1', 'ok', 'call',
    '2025-12-31T09:00:31.000000+00:00');
INSERT INTO work_items VALUES ('open-conv', 'open-agent', 'q', '2025-12-31T09:00:00.000000+00:00',
    '2025-12-31T09:00:30.000000+00:00', NULL, 'writing', 2, NULL, 'code-1', NULL, 'call',
    '2025-12-31T09:00:31.000000+00:00');
"""


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path)


async def test_the_file_uses_wal_and_full_sync_and_records_its_migrations(
    sqlite_place: Place,
) -> None:
    ledger = await sqlite_place.open()
    try:
        with ledger._backend.transaction() as session:  # type: ignore[attr-defined]
            assert session.one("PRAGMA synchronous") == (2,)  # FULL: a commit is on disk
    finally:
        await ledger.close()
    db = raw(Path(sqlite_place.location))
    try:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        versions = db.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
        assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    finally:
        db.close()


async def test_reopening_runs_no_migration_twice(sqlite_place: Place) -> None:
    for _ in range(3):
        await (await sqlite_place.open()).close()
    db = raw(Path(sqlite_place.location))
    try:
        assert db.execute("SELECT count(*) FROM schema_migrations").fetchone() == (SCHEMA_VERSION,)
    finally:
        db.close()


async def test_a_ledger_from_wrapupd_0_1_is_upgraded_in_place(tmp_path: Path) -> None:
    path = ledger_path(tmp_path)
    db = raw(path)
    db.executescript(SCHEMA_0_1)
    db.close()
    ledger = await Place("sqlite", path).open()
    try:
        assert not ledger.add_pending(item("old-conv", "old-agent"))
        resumed = ledger.unfinished()
        assert [(i.conversation_id, i.attempts) for i in resumed] == [("open-conv", 2)]
        await ledger.record_outcome(("open-conv", "open-agent"), Outcome.APPLIED, code_name="Done")
        exported = list(ledger.queries.export())
        assert [(r.conversation_id, r.code_name) for r in exported] == [
            ("old-conv", None),  # finished before the upgrade: applied_at from its last change
            ("open-conv", "Done"),
        ]
        assert exported[0].applied_at is not None
    finally:
        await ledger.close()


async def test_a_ledger_from_a_newer_wrapupd_is_refused(sqlite_place: Place) -> None:
    await (await sqlite_place.open()).close()
    db = raw(Path(sqlite_place.location))
    db.execute("INSERT INTO schema_migrations VALUES (?, 'future', 'x')", (SCHEMA_VERSION + 1,))
    db.commit()
    db.close()
    with pytest.raises(LedgerError, match="newer than this wrapupd"):
        await sqlite_place.open()


async def test_a_second_writer_on_one_file_is_refused_until_the_first_closes(
    sqlite_place: Place,
) -> None:
    first = await sqlite_place.open()
    with pytest.raises(LedgerInUse, match="two replicas on one SQLite ledger"):
        await sqlite_place.open()
    tools = sqlite_place.tools()  # the operator's tools are not a second writer
    tools.close()
    await first.close()
    await (await sqlite_place.open()).close()


async def test_another_process_on_the_same_file_is_told_who_holds_it(
    sqlite_place: Place,
) -> None:
    ledger = await sqlite_place.open()
    try:
        probe = (
            "import sys; from pathlib import Path; from wrapupd.ledger import hold_single_writer\n"
            "from wrapupd.errors import LedgerInUse\n"
            "try: hold_single_writer(Path(sys.argv[1]))\n"
            "except LedgerInUse as exc: print(exc); sys.exit(78)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", probe, str(sqlite_place.location)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 78, done.stderr
        import os

        assert f"process {os.getpid()} already writes" in done.stdout
    finally:
        await ledger.close()


async def test_a_missing_state_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match=r"state directory .*nope does not exist"):
        await Place("sqlite", tmp_path / "nope" / LEDGER_FILENAME).open()


async def test_a_file_where_the_directory_should_be_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("not a directory")
    with pytest.raises(LedgerError, match="not a directory"):
        await Place("sqlite", tmp_path / "state" / LEDGER_FILENAME).open()


async def test_an_unwritable_directory_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulate the permission error root never gets, to check the message."""

    def refuse(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "touch", refuse)
    with pytest.raises(LedgerError, match="not writable by this user: Permission denied"):
        await Place("sqlite", tmp_path / LEDGER_FILENAME).open()


async def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / LEDGER_FILENAME
    path.write_bytes(b"this is certainly not sqlite " * 200)
    with pytest.raises(LedgerError, match=str(path)):
        await Place("sqlite", path).open()


async def test_using_a_closed_ledger_raises_ledger_error(sqlite_place: Place) -> None:
    closed = await sqlite_place.open()
    await closed.close()
    with pytest.raises(LedgerError, match="closed"):
        closed.add_pending(item())
    with pytest.raises(LedgerError, match="closed"):
        closed.get(KEY)


async def test_the_tools_refuse_a_ledger_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no ledger at"):
        Place("sqlite", ledger_path(tmp_path)).tools()
    assert not ledger_path(tmp_path).exists()


async def test_times_are_fixed_width_utc_text(sqlite_place: Place) -> None:
    ledger = await sqlite_place.open()
    ledger.add_pending(item())
    await ledger.close()
    db = raw(Path(sqlite_place.location))
    try:
        assert db.execute("SELECT acw_started_at FROM work_items").fetchone() == (
            T0.isoformat(timespec="microseconds"),
        )
    finally:
        db.close()
