"""Versioned schema migrations, run at start in one transaction (both backends).

Each backend has the same numbered steps in its own dialect; ``schema_migrations`` records which
ran. A ledger written by a newer wrapupd (a version this one does not know) is refused rather than
misread. SQLite ledgers from wrapupd 0.1 (a ``schema_version`` table at 1, no
``schema_migrations``) are upgraded in place; ``schema_version`` is kept at the newest version so
that an older wrapupd refuses the upgraded file instead of writing it without the new columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from wrapupd.errors import LedgerError
from wrapupd.ledger.backend import Session


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered schema step in one dialect, recorded in ``schema_migrations`` once applied."""

    version: int
    name: str
    statements: tuple[str, ...]


def _v2(ts: str, event_id: str) -> tuple[str, ...]:
    """Export columns, history, leases, replicas and roles (issues 11, 13, 15)."""
    return (*_v2_item_columns(ts), *_v2_item_events(ts, event_id), *_v2_replicas_and_roles(ts))


def _v2_item_columns(ts: str) -> tuple[str, ...]:
    """What exports and leases need on each work item, filled in for the items already there."""
    columns = (
        "queue_name TEXT",
        "user_id TEXT",
        "code_name TEXT",
        f"created_at {ts}",
        "created_by TEXT",
        f"finished_at {ts}",
        "latency_ms INTEGER",
        "lease_owner TEXT",
        f"lease_expires_at {ts}",
        "redriven INTEGER NOT NULL DEFAULT 0",
    )
    return (
        *(f"ALTER TABLE work_items ADD COLUMN {column}" for column in columns),
        "UPDATE work_items SET created_at = updated_at",
        "UPDATE work_items SET finished_at = updated_at WHERE state = 'done'",
        "CREATE INDEX work_items_finished ON work_items (finished_at) WHERE state = 'done'",
        "CREATE INDEX work_items_redriven ON work_items (redriven) WHERE redriven = 1",
    )


def _v2_item_events(ts: str, event_id: str) -> tuple[str, ...]:
    """Each item's history, so an operator can see why it ended as it did."""
    return (
        f"""CREATE TABLE item_events (
            id              {event_id},
            conversation_id TEXT NOT NULL,
            participant_id  TEXT NOT NULL,
            at              {ts} NOT NULL,
            kind            TEXT NOT NULL,
            detail          TEXT,
            attempt         INTEGER,
            code_id         TEXT,
            owner           TEXT
        )""",
        "CREATE INDEX item_events_key ON item_events (conversation_id, participant_id, id)",
    )


def _v2_replicas_and_roles(ts: str) -> tuple[str, ...]:
    """The replicas sharing a ledger, and which of them holds each role until it expires."""
    return (
        f"""CREATE TABLE replicas (
            owner      TEXT PRIMARY KEY,
            started_at {ts} NOT NULL,
            last_seen  {ts} NOT NULL,
            detail     TEXT
        )""",
        f"""CREATE TABLE roles (
            role       TEXT PRIMARY KEY,
            owner      TEXT NOT NULL,
            expires_at {ts} NOT NULL
        )""",
    )


def _v1(ts: str, if_not_exists: str, without_rowid: str) -> tuple[str, ...]:
    """The work items table of wrapupd 0.1."""
    return (
        f"""CREATE TABLE {if_not_exists}work_items (
            conversation_id TEXT NOT NULL,
            participant_id  TEXT NOT NULL,
            queue_id        TEXT NOT NULL,
            acw_started_at  {ts} NOT NULL,
            due_at          {ts} NOT NULL,
            deadline        {ts},
            state           TEXT NOT NULL CHECK (state IN ('pending', 'writing', 'done')),
            attempts        INTEGER NOT NULL DEFAULT 0,
            outcome         TEXT,
            code_id         TEXT,
            detail          TEXT,
            media_type      TEXT,
            updated_at      {ts} NOT NULL,
            PRIMARY KEY (conversation_id, participant_id)
        ){without_rowid}""",
        f"CREATE INDEX {if_not_exists}work_items_unfinished ON work_items (due_at)"
        " WHERE state != 'done'",
        f"CREATE INDEX {if_not_exists}work_items_done ON work_items (updated_at) WHERE state = 'done'",
    )


SQLITE = (
    Migration(1, "work items", _v1("TEXT", "IF NOT EXISTS ", " WITHOUT ROWID")),
    Migration(2, "export columns, history, leases", _v2("TEXT", "INTEGER PRIMARY KEY")),
)
POSTGRES = (
    Migration(1, "work items", _v1("timestamptz", "", "")),
    Migration(
        2,
        "export columns, history, leases",
        _v2("timestamptz", "bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
    ),
)
SCHEMA_VERSION = SQLITE[-1].version
assert POSTGRES[-1].version == SCHEMA_VERSION

# Taken for the migration's transaction, so that replicas starting together migrate one at a time.
_PG_MIGRATION_LOCK = 0x77726170  # "wrap"


def migrate(session: Session, kind: str, location: str, now: datetime) -> list[int]:
    """Bring the schema to :data:`SCHEMA_VERSION`; the versions this call applied."""
    steps = SQLITE if kind == "sqlite" else POSTGRES
    if kind == "postgres":
        session.run(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
    ts = "TEXT" if kind == "sqlite" else "timestamptz"
    session.run(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        f" version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at {ts} NOT NULL)"
    )
    applied = {int(str(row[0])) for row in session.all("SELECT version FROM schema_migrations")}
    _refuse_newer(max(applied | {_legacy_version(session, kind)}), location)
    done = []
    for step in steps:
        if step.version in applied:
            continue
        for statement in step.statements:
            session.run(statement)
        session.run(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (step.version, step.name, session.ts(now)),
        )
        done.append(step.version)
    if kind == "sqlite":
        _keep_legacy_marker(session)
    return done


def _legacy_version(session: Session, kind: str) -> int:
    """The version wrapupd 0.1 wrote in ``schema_version`` (SQLite only), 0 when absent."""
    if kind != "sqlite" or not _sqlite_table_exists(session, "schema_version"):
        return 0
    row = session.one("SELECT max(version) FROM schema_version")
    return int(str(row[0])) if row and row[0] is not None else 0


def _keep_legacy_marker(session: Session) -> None:
    session.run("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    session.run("DELETE FROM schema_version")
    session.run("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))


def _sqlite_table_exists(session: Session, name: str) -> bool:
    found = session.one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return found is not None


def _refuse_newer(version: int, location: str) -> None:
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"ledger {location} has schema version {version}, newer than this wrapupd"
            f" understands ({SCHEMA_VERSION}): upgrade wrapupd or move the ledger away"
        )
