"""Durable work items and outcomes: one interface, two backends, group commit off the event loop.

The row for a (conversation, participant) is the idempotency guard (taken on at most once, however
many events repeat it) and the restart memory (PENDING and WRITING rows are resumed; a WRITING row
may have had its PATCH land, so it is re-checked by GET before any second write).

- ``core``: :class:`Ledger`, what the daemon uses (intake, transitions, leases, replicas);
- ``writer``: the group-commit thread and :class:`Receipt`;
- ``sqlite`` (embedded default, one process per file) and ``postgres`` (shared by replicas);
- ``migrations``: versioned schema steps run at open, for both;
- ``ops`` (writes as SQL), ``rows`` (reading rows back), ``queries`` (list, show, redrive,
  export for ``wrapupd ledger``), ``render`` (table, CSV, JSONL).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from wrapupd.backoff import jittered_backoff
from wrapupd.clock import Clock, SystemClock
from wrapupd.errors import LedgerError
from wrapupd.events import Outcome
from wrapupd.ledger.backend import Backend
from wrapupd.ledger.core import Ledger, index_token
from wrapupd.ledger.migrations import SCHEMA_VERSION, migrate
from wrapupd.ledger.model import (
    EXPORT_COLUMNS,
    REDRIVABLE,
    REOPENABLE,
    Claim,
    ExportRecord,
    HistoryEntry,
    HistoryKind,
    ItemHistory,
    Key,
    Known,
    LeaseAnswer,
    LedgerHealth,
    LedgerRow,
    QueueActivity,
    Replica,
)
from wrapupd.ledger.queries import LedgerQueries, state_choices
from wrapupd.ledger.sqlite import LEDGER_FILENAME, hold_single_writer, ledger_path
from wrapupd.ledger.urls import is_postgres_url, redact_url
from wrapupd.ledger.writer import Receipt

__all__ = [
    "EXPORT_COLUMNS",
    "LEDGER_FILENAME",
    "REDRIVABLE",
    "REOPENABLE",
    "SCHEMA_VERSION",
    "Claim",
    "ExportRecord",
    "HistoryEntry",
    "HistoryKind",
    "ItemHistory",
    "Key",
    "Known",
    "LeaseAnswer",
    "Ledger",
    "LedgerHealth",
    "LedgerQueries",
    "LedgerRow",
    "QueueActivity",
    "Receipt",
    "Replica",
    "default_owner",
    "hold_single_writer",
    "is_postgres_url",
    "ledger_path",
    "open_ledger",
    "open_ledger_blocking",
    "open_queries",
    "redact_url",
    "state_choices",
]


def default_owner() -> str:
    """This replica's name in leases, heartbeats and history: host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _default_backoff() -> Iterator[float]:
    return jittered_backoff(initial=0.05, maximum=5.0)


async def open_ledger(
    location: Path | str,
    *,
    clock: Clock | None = None,
    owner: str | None = None,
    password: str | None = None,
    backoff: Callable[[], Iterator[float]] | None = None,
) -> Ledger:
    """Open the daemon's ledger: a SQLite file (held by this process alone) or a PostgreSQL URL.

    Migrates the schema and loads the index of known participants, off the event loop. Raises
    LedgerError (bad directory or file, newer schema, LedgerInUse for a second process on one
    SQLite file) or LedgerUnavailable (the storage or the server fails for now).
    """
    clock = clock or SystemClock()
    backend, index = await asyncio.to_thread(_prepare, location, password, clock.now())
    return _ledger(backend, index, clock, owner, backoff)


def open_ledger_blocking(
    location: Path | str,
    *,
    clock: Clock | None = None,
    owner: str | None = None,
    password: str | None = None,
    backoff: Callable[[], Iterator[float]] | None = None,
) -> Ledger:
    """:func:`open_ledger` on the calling thread, for building the daemon's parts before it serves
    (called from the event loop that will own the ledger; the loop is not serving yet)."""
    clock = clock or SystemClock()
    backend, index = _prepare(location, password, clock.now())
    return _ledger(backend, index, clock, owner, backoff)


def _ledger(
    backend: Backend,
    index: dict[str, Known],
    clock: Clock,
    owner: str | None,
    backoff: Callable[[], Iterator[float]] | None,
) -> Ledger:
    return Ledger(
        backend,
        clock=clock,
        owner=owner or default_owner(),
        index=index,
        loop=asyncio.get_running_loop(),
        backoff=backoff or _default_backoff,
    )


def open_queries(
    location: Path | str,
    *,
    password: str | None = None,
    clock: Clock | None = None,
    owner: str | None = None,
) -> LedgerQueries:
    """Open a ledger for the operator's tools, beside a running daemon (close it when done)."""
    if not is_postgres_url(str(location)) and not Path(location).is_file():
        raise LedgerError(f"no ledger at {location}: is daemon.state_dir (or [ledger] url) right?")
    clock = clock or SystemClock()
    backend = _backend(location, password, single_writer=False)
    try:
        _migrate(backend, clock.now())
    except BaseException:
        backend.close()
        raise
    return LedgerQueries(backend, clock=clock, owner=owner or f"operator@{default_owner()}")


def _backend(location: Path | str, password: str | None, *, single_writer: bool) -> Backend:
    if is_postgres_url(str(location)):
        from wrapupd.ledger.postgres import PostgresBackend

        return PostgresBackend(str(location), password=password)
    from wrapupd.ledger.sqlite import SqliteBackend

    return SqliteBackend(Path(location), single_writer=single_writer)


def _migrate(backend: Backend, now: datetime) -> None:
    with backend.transaction() as session, backend.errors("migrate"):
        migrate(session, backend.kind, backend.location, now)


def _prepare(
    location: Path | str, password: str | None, now: datetime
) -> tuple[Backend, dict[str, Known]]:
    backend = _backend(location, password, single_writer=True)
    try:
        _migrate(backend, now)
        return backend, _load_index(backend)
    except BaseException:
        backend.close()
        raise


def _load_index(backend: Backend) -> dict[str, Known]:
    """Every participant the ledger knows, and whether it is open, done, or reopenable."""
    index: dict[str, Known] = {}
    sql = "SELECT conversation_id, participant_id, state, outcome FROM work_items"
    with backend.reading() as session, backend.errors("load"):
        for conversation, participant, state, outcome in session.stream(sql):
            known = Known.OPEN
            if state == "done":
                known = Known.SUCCEEDED if outcome is None else Known.after(Outcome(str(outcome)))
            index[index_token((str(conversation), str(participant)))] = known
    return index
