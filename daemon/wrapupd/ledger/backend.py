"""What the SQLite and PostgreSQL backends provide to the rest of the ledger.

The ledger's SQL is written once, with ``?`` placeholders and portable statements (``ON CONFLICT``,
``RETURNING``, partial indexes); a :class:`Session` runs it on one backend's connection, converting
placeholders and times. Errors leave a session typed: :class:`~wrapupd.errors.LedgerUnavailable` for
storage that fails for now (retried), :class:`~wrapupd.errors.LedgerError` for anything else.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from wrapupd.errors import LedgerError, LedgerUnavailable

Row = tuple[object, ...]
Params = Sequence[object]


class Session(abc.ABC):
    """One connection, inside a transaction (writes) or not (reads), speaking the ledger's SQL."""

    for_update = ""  # row lock suffix for a SELECT that precedes an UPDATE of the same row

    @abc.abstractmethod
    def run(self, sql: str, params: Params = ()) -> int:
        """Execute one statement; the number of rows it changed."""

    @abc.abstractmethod
    def run_many(self, sql: str, rows: Sequence[Params]) -> None:
        """Execute one statement for each parameter row."""

    @abc.abstractmethod
    def one(self, sql: str, params: Params = ()) -> Row | None:
        """The first row of a query (or of a statement's ``RETURNING``), None when there is none."""

    @abc.abstractmethod
    def all(self, sql: str, params: Params = ()) -> list[Row]:
        """Every row of a query."""

    @abc.abstractmethod
    def stream(self, sql: str, params: Params = ()) -> Iterator[Row]:
        """The rows of a large query, fetched a page at a time."""

    @abc.abstractmethod
    def ts(self, moment: datetime) -> object:
        """A time as this backend stores it."""


class Cursor(Protocol):
    """What a session reads of a driver's cursor after one statement."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> Sequence[Any]: ...


class Connection(Protocol):
    """What :class:`DriverSession` needs of a driver's connection; sqlite3's and psycopg's fit."""

    def execute(self, sql: str, params: Params, /) -> Cursor: ...


C = TypeVar("C", bound=Connection)


class DriverSession(Session, Generic[C]):
    """The statements every driver runs alike, so a backend's session states only its dialect."""

    def __init__(self, connection: C) -> None:
        self._db = connection

    def _sql(self, sql: str) -> str:
        """The ledger's ``?`` placeholders in the driver's style (sqlite3 takes them as written)."""
        return sql

    def run(self, sql: str, params: Params = ()) -> int:
        """See :meth:`Session.run`."""
        return self._db.execute(self._sql(sql), params).rowcount

    def one(self, sql: str, params: Params = ()) -> Row | None:
        """See :meth:`Session.one`."""
        row: Row | None = self._db.execute(self._sql(sql), params).fetchone()
        return row

    def all(self, sql: str, params: Params = ()) -> list[Row]:
        """See :meth:`Session.all`."""
        return list(self._db.execute(self._sql(sql), params).fetchall())


class Backend(abc.ABC):
    """A place where the ledger lives: how to reach it, and how its failures read."""

    kind: str
    location: str  # for messages: a path, or a URL without any password
    keep_cause = (
        True  # False where a driver error might carry a secret: the typed error stands alone
    )

    @abc.abstractmethod
    def transaction(self) -> AbstractContextManager[Session]:
        """A session inside one transaction: committed (durably) on exit, rolled back on error."""

    @abc.abstractmethod
    def reading(self) -> AbstractContextManager[Session]:
        """A session for reads beside the writer (a WAL reader, a pooled connection)."""

    @abc.abstractmethod
    def classify(self, exc: Exception, doing: str) -> LedgerError | LedgerUnavailable | None:
        """The typed error for a driver error (None: not the driver's, let it through)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections (and the single-writer lock)."""

    @contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Turn the driver's errors into the ledger's, naming the location and what failed."""
        try:
            yield
        except (LedgerError, LedgerUnavailable):
            raise
        except Exception as exc:
            typed = self.classify(exc, doing)
            if typed is None:
                raise
            raise typed from (exc if self.keep_cause else None)

    def describe(self, exc: BaseException, doing: str) -> str:
        """``ledger <location>: <doing> failed: <cause>``."""
        return f"ledger {self.location}: {doing} failed: {exc}"
