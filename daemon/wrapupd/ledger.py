"""The durable record of work: which participants wrapupd owes a code, and what came of it.

One row per (conversation_id, participant_id), in ``<state_dir>/wrapupd.sqlite3``. The row is the
idempotency guard (a participant is taken on at most once, however many events repeat it) and the
restart memory (PENDING and WRITING rows are resumed; a WRITING row may have had its PATCH land, so
it is re-checked by GET before any second write).

Every transition is a single SQL statement in autocommit mode, i.e. one committed transaction: a
crash leaves each row either before or after a transition, never in between.

Durability: WAL journal with ``synchronous=FULL``. NORMAL would be faster but may lose the last
transactions on power loss; losing a WRITING mark or an outcome would make wrapupd re-process a
participant and misreport what it did. Writes are a few per ACW participant (hundreds a minute at
most), so the fsync per commit costs nothing that matters.

The methods are synchronous on purpose: each is one indexed statement on a local file, well under
a millisecond, so calling them from the event loop is cheaper than a thread hop. Use the ledger
from one thread (the event loop's); sqlite3 enforces that.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from wrapupd.clock import Clock, SystemClock
from wrapupd.errors import LedgerError
from wrapupd.events import ItemState, Outcome, WorkItem

__all__ = ["LEDGER_FILENAME", "SCHEMA_VERSION", "Ledger", "ledger_path"]

LEDGER_FILENAME = "wrapupd.sqlite3"
SCHEMA_VERSION = 1

Key = tuple[str, str]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS work_items (
    conversation_id TEXT NOT NULL,
    participant_id  TEXT NOT NULL,
    queue_id        TEXT NOT NULL,
    acw_started_at  TEXT NOT NULL,
    due_at          TEXT NOT NULL,
    deadline        TEXT,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'writing', 'done')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    outcome         TEXT,
    code_id         TEXT,
    detail          TEXT,
    media_type      TEXT,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (conversation_id, participant_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS work_items_unfinished ON work_items (due_at) WHERE state != 'done';
CREATE INDEX IF NOT EXISTS work_items_done ON work_items (updated_at) WHERE state = 'done';
"""

_COLUMNS = (
    "conversation_id, participant_id, queue_id, acw_started_at, due_at, deadline, state,"
    " attempts, outcome, code_id, detail, media_type, updated_at"
)


def ledger_path(state_dir: Path | str) -> Path:
    """Where the ledger lives inside the daemon's state directory."""
    return Path(state_dir) / LEDGER_FILENAME


def _iso(moment: datetime) -> str:
    """Fixed-width ISO UTC text, so that SQL string comparison orders by time."""
    if moment.tzinfo is None:
        raise ValueError(
            f"naive datetime {moment!r}: the ledger stores UTC, pass an aware datetime"
        )
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _iso_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else _iso(moment)


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _row_to_item(row: sqlite3.Row) -> WorkItem:
    acw_started_at, due_at = _dt(row["acw_started_at"]), _dt(row["due_at"])
    assert acw_started_at is not None and due_at is not None  # NOT NULL columns
    return WorkItem(
        conversation_id=row["conversation_id"],
        participant_id=row["participant_id"],
        queue_id=row["queue_id"],
        acw_started_at=acw_started_at,
        due_at=due_at,
        deadline=_dt(row["deadline"]),
        state=ItemState(row["state"]),
        attempts=row["attempts"],
        outcome=None if row["outcome"] is None else Outcome(row["outcome"]),
        code_id=row["code_id"],
        detail=row["detail"],
        media_type=row["media_type"],
        updated_at=_dt(row["updated_at"]),
    )


class Ledger:
    """Work items and their outcomes in sqlite. Build one with :meth:`open`."""

    def __init__(self, connection: sqlite3.Connection, *, location: str, clock: Clock) -> None:
        self._db = connection
        self._location = location
        self._clock = clock

    # --- lifecycle -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | str, *, clock: Clock | None = None) -> Ledger:
        """Open (creating if needed) the ledger at ``path``; ``":memory:"`` for a throwaway one.

        Raises :class:`LedgerError` naming the path and the cause when the directory is missing or
        unwritable, the file is not a database, or it was written by a newer wrapupd.
        """
        location = str(path)
        if location != ":memory:":
            _check_directory(Path(path).parent)
        try:
            connection = sqlite3.connect(location, isolation_level=None)
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot open ledger {location}: {exc}") from exc
        ledger = cls(connection, location=location, clock=clock or SystemClock())
        try:
            ledger._prepare()
        except BaseException:
            connection.close()
            raise
        return ledger

    def _prepare(self) -> None:
        self._db.row_factory = sqlite3.Row
        with self._errors("prepare"):
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._migrate()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _migrate(self) -> None:
        # Not executescript(): it COMMITs first, and this must stay one transaction.
        for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
            self._db.execute(statement)
        row = self._db.execute("SELECT max(version) FROM schema_version").fetchone()
        version = row[0]
        if version is None:
            self._db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        elif version > SCHEMA_VERSION:
            raise LedgerError(
                f"ledger {self._location} has schema version {version}, newer than this wrapupd"
                f" understands ({SCHEMA_VERSION}): upgrade wrapupd or move the file away"
            )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Turn sqlite's errors into LedgerError naming the file and what we were doing."""
        try:
            yield
        except sqlite3.Error as exc:
            raise LedgerError(f"ledger {self._location}: {doing} failed: {exc}") from exc

    def _now(self) -> str:
        return _iso(self._clock.now())

    def _update(self, doing: str, sql: str, params: tuple[object, ...]) -> bool:
        with self._errors(doing):
            return self._db.execute(sql, params).rowcount == 1

    # --- work items ------------------------------------------------------------------------

    def add_pending(self, item: WorkItem) -> bool:
        """Record new work; False when this participant is already known in any state.

        This is the idempotency guard: repeated events, and the reconciler finding what the socket
        already reported, never create a second item.
        """
        params = (
            item.conversation_id,
            item.participant_id,
            item.queue_id,
            _iso(item.acw_started_at),
            _iso(item.due_at),
            _iso_or_none(item.deadline),
            ItemState.PENDING.value,
            item.attempts,
            item.code_id,
            item.detail,
            item.media_type,
            self._now(),
        )
        return self._update(
            "add_pending",
            "INSERT INTO work_items (conversation_id, participant_id, queue_id, acw_started_at,"
            " due_at, deadline, state, attempts, code_id, detail, media_type, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (conversation_id, participant_id) DO NOTHING",
            params,
        )

    def get(self, key: Key) -> WorkItem | None:
        with self._errors("get"):
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM work_items"
                " WHERE conversation_id = ? AND participant_id = ?",
                key,
            ).fetchone()
        return None if row is None else _row_to_item(row)

    def unfinished(self) -> list[WorkItem]:
        """PENDING and WRITING items, soonest due first: what a restart must resume."""
        with self._errors("unfinished"):
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM work_items WHERE state != 'done'"
                " ORDER BY due_at, conversation_id, participant_id"
            ).fetchall()
        return [_row_to_item(row) for row in rows]

    def mark_writing(self, key: Key, attempt: int, code_id: str) -> bool:
        """A PATCH is about to be sent. False unless the item exists and is not DONE.

        Written before the request leaves, so a crash mid-request is remembered as "may have
        landed".
        """
        return self._update(
            "mark_writing",
            "UPDATE work_items SET state = 'writing', attempts = ?, code_id = ?, updated_at = ?"
            " WHERE conversation_id = ? AND participant_id = ? AND state != 'done'",
            (attempt, code_id, self._now(), *key),
        )

    def back_to_pending(self, key: Key, due_at: datetime, detail: str | None) -> bool:
        """A retryable failure: wait until ``due_at`` and try again. False if DONE or unknown."""
        return self._update(
            "back_to_pending",
            "UPDATE work_items SET state = 'pending', due_at = ?, detail = ?, updated_at = ?"
            " WHERE conversation_id = ? AND participant_id = ? AND state != 'done'",
            (_iso(due_at), detail, self._now(), *key),
        )

    def record_outcome(
        self,
        key: Key,
        outcome: Outcome,
        detail: str | None = None,
        code_id: str | None = None,
    ) -> bool:
        """Finish the item. The first outcome wins: False if already DONE or unknown.

        ``code_id`` is kept from :meth:`mark_writing` when not given again.
        """
        return self._update(
            "record_outcome",
            "UPDATE work_items SET state = 'done', outcome = ?, detail = ?,"
            " code_id = coalesce(?, code_id), updated_at = ?"
            " WHERE conversation_id = ? AND participant_id = ? AND state != 'done'",
            (outcome.value, detail, code_id, self._now(), *key),
        )

    def reschedule(self, key: Key, due_at: datetime) -> bool:
        """Move a PENDING item's due time (e.g. a new grace period). False in any other state."""
        return self._update(
            "reschedule",
            "UPDATE work_items SET due_at = ?, updated_at = ?"
            " WHERE conversation_id = ? AND participant_id = ? AND state = 'pending'",
            (_iso(due_at), self._now(), *key),
        )

    # --- housekeeping ----------------------------------------------------------------------

    def purge(self, older_than: datetime) -> int:
        """Delete DONE items last touched before ``older_than``; unfinished work is never purged."""
        with self._errors("purge"):
            return self._db.execute(
                "DELETE FROM work_items WHERE state = 'done' AND updated_at < ?",
                (_iso(older_than),),
            ).rowcount

    def outcome_counts(self) -> dict[Outcome, int]:
        """How many DONE items ended each way (every outcome present, zero when none)."""
        counts = dict.fromkeys(Outcome, 0)
        with self._errors("outcome_counts"):
            rows = self._db.execute(
                "SELECT outcome, count(*) FROM work_items WHERE state = 'done' GROUP BY outcome"
            ).fetchall()
        for outcome, count in rows:
            counts[Outcome(outcome)] = count
        return counts


def _check_directory(directory: Path) -> None:
    """Fail with a clear LedgerError before sqlite's bare "unable to open database file"."""
    if not directory.is_dir():
        raise LedgerError(
            f"state directory {directory} does not exist or is not a directory:"
            " create it (systemd: StateDirectory=wrapupd) or set daemon.state_dir"
        )
    probe = directory / f".{LEDGER_FILENAME}.probe"
    try:
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise LedgerError(
            f"state directory {directory} is not writable by this user: {exc.strerror}"
        ) from exc
