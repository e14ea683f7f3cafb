"""Where a ledger test's ledger lives: a SQLite file, or a throwaway PostgreSQL database.

``place`` runs a test once per backend; ``sqlite_place`` and ``postgres_place`` pin one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from postgres import PostgresServer
from wrapupd.clock import ManualClock
from wrapupd.events import WorkItem
from wrapupd.ledger import Ledger, LedgerQueries, ledger_path, open_ledger, open_queries

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
KEY = ("conv-1", "agent-1")


def fast_backoff() -> Iterator[float]:
    """Retries every few milliseconds, so tests wait on facts, not on a real backoff."""
    while True:
        yield 0.005


@dataclass(frozen=True)
class Place:
    kind: str
    location: str | Path
    password: str | None = None
    server: PostgresServer | None = None

    async def open(self, clock: ManualClock | None = None, **kwargs: Any) -> Ledger:
        """The daemon's ledger here."""
        kwargs.setdefault("backoff", fast_backoff)
        return await open_ledger(
            self.location, clock=clock or ManualClock(start=T0), password=self.password, **kwargs
        )

    def tools(self, clock: ManualClock | None = None) -> LedgerQueries:
        """The operator's view of the same ledger."""
        return open_queries(self.location, password=self.password, clock=clock)


def sqlite_at(directory: Path) -> Place:
    return Place("sqlite", ledger_path(directory))


@pytest.fixture(params=["sqlite", "postgres"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Place:
    if request.param == "sqlite":
        return sqlite_at(tmp_path)
    db = request.getfixturevalue("postgres")
    return Place("postgres", db.url, db.password, db.server)


@pytest.fixture
def sqlite_place(tmp_path: Path) -> Place:
    return sqlite_at(tmp_path)


@pytest.fixture
def postgres_place(postgres: Any) -> Place:
    return Place("postgres", postgres.url, postgres.password, postgres.server)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=T0)


@pytest.fixture
async def ledgers(postgres_place: Place, clock: ManualClock) -> AsyncIterator[list[Ledger]]:
    """Two replicas' ledgers (owners ``replica-a``, ``replica-b``) on one PostgreSQL database."""
    opened = [await postgres_place.open(clock, owner=f"replica-{n}") for n in "ab"]
    yield opened
    for ledger in opened:
        await ledger.close()


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


async def eventually(predicate: Any, *, timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll an observable fact (the writer works on its own thread)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s (last value: {value!r})")
        await asyncio.sleep(0.005)
