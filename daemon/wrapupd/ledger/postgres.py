"""The shared ledger: PostgreSQL through psycopg 3 and its connection pool.

``[ledger] url = "postgresql://user@host:5432/db"``; the password comes separately (environment, a
file, a systemd credential) and never appears in a message: :attr:`PostgresBackend.location` is the
URL without it, and every driver error is scrubbed of it before it becomes a
:class:`~wrapupd.errors.LedgerUnavailable` or :class:`~wrapupd.errors.LedgerError`.

The writer thread has its own connection, dropped after any failure and made again for the next
batch; while the server is away every batch fails as unavailable and the writer retries with
backoff, holding what is queued in memory. Reads (the operator's tools) borrow from a pool that
checks a connection before lending it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg_pool import ConnectionPool

from wrapupd.errors import LedgerConflict, LedgerError, LedgerUnavailable
from wrapupd.ledger.backend import Backend, DriverSession, Params, Row, Session
from wrapupd.ledger.model import iso
from wrapupd.ledger.urls import is_postgres_url, redact_url

# What the server says when it refuses us for good: wrong password, no such database or role, or
# not allowed from here. At start that is a setup error (exit 78), not an outage to wait out.
_REFUSALS = (
    "password authentication failed",
    "no password supplied",
    "does not exist",
    "no pg_hba.conf entry",
)


class PostgresSession(DriverSession[psycopg.Connection[Any]]):
    """The ledger's SQL on a psycopg connection: placeholders converted, rows locked for update."""

    for_update = " FOR UPDATE"

    def _sql(self, sql: str) -> str:
        """psycopg's ``%s`` for the ledger's ``?`` (its SQL has no other ``?`` or ``%``)."""
        return sql.replace("?", "%s")

    def run_many(self, sql: str, rows: Sequence[Params]) -> None:
        """One statement for many rows; psycopg keeps executemany on a cursor, closed after the batch."""
        with self._db.cursor() as cursor:
            cursor.executemany(self._sql(sql), rows)

    def stream(self, sql: str, params: Params = ()) -> Iterator[Row]:
        """A server-side cursor, so a large export never sits in memory whole."""
        with self._db.transaction(), self._db.cursor(name="wrapupd_stream") as cursor:
            cursor.execute(self._sql(sql), params)
            yield from cursor

    def ts(self, moment: datetime) -> object:
        """The aware datetime itself (timestamptz); a naive one is refused, as SQLite refuses it."""
        iso(moment)  # refuses naive times, as SQLite does
        return moment


class PostgresBackend(Backend):
    """The writer thread's own connection (reconnected after a failure) and a pool for reads."""

    kind = "postgres"
    keep_cause = False

    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        pool_size: int = 4,
        connect_timeout: float = 5.0,
    ) -> None:
        if not is_postgres_url(url):
            raise LedgerError(f"not a PostgreSQL URL: {redact_url(url)}")
        self.location = redact_url(url)
        self._url = url
        self._secrets = tuple(s for s in (password, urlsplit(url).password) if s)
        self._timeout = connect_timeout
        self._pool_size = max(1, pool_size)
        self._kwargs: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": max(1, round(connect_timeout)),
            "application_name": "wrapupd",
            "options": "-c TimeZone=UTC",
        }
        if password:
            self._kwargs["password"] = password
        self._writer: psycopg.Connection[Any] | None = None
        self._pool: ConnectionPool | None = None
        self._ever_connected = False
        self._closed = False

    def _connect(self) -> psycopg.Connection[Any]:
        """A new connection; at first, a refusal (password, database, role) is a setup error."""
        if self._closed:
            raise LedgerError(f"ledger {self.location} is closed")
        try:
            db = psycopg.connect(self._url, **self._kwargs)
        except psycopg.OperationalError as exc:
            refused = any(marker in str(exc) for marker in _REFUSALS)
            if refused and not self._ever_connected:
                raise LedgerError(self._scrub(self.describe(exc, "connect"))) from None
            raise LedgerUnavailable(self._scrub(self.describe(exc, "connect"))) from None
        self._ever_connected = True
        return db

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """The writer's connection, made again after a failure rather than reused broken."""
        if self._writer is None or self._writer.closed:
            self._writer = self._connect()
        db = self._writer
        try:
            with self.errors("write"), db.transaction():
                yield PostgresSession(db)
        except LedgerUnavailable:
            self._drop_writer()  # a broken connection is not reused: the next batch reconnects
            raise

    def _drop_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A pooled connection, checked before it is lent, so reads survive a server restart."""
        if self._pool is None:
            self._connect().close()  # a clear error now rather than a pool timeout
            self._pool = ConnectionPool(
                self._url,
                kwargs=self._kwargs,
                min_size=1,
                max_size=self._pool_size,
                check=ConnectionPool.check_connection,
                name="wrapupd-ledger",
                timeout=self._timeout,
                open=True,
            )
        with self.errors("read"), self._pool.connection(timeout=self._timeout) as db:
            yield PostgresSession(db)

    def _scrub(self, message: str) -> str:
        for secret in self._secrets:
            message = message.replace(secret, "***")
        return message

    def classify(self, exc: Exception, doing: str) -> LedgerError | LedgerUnavailable | None:
        """A lost or refused connection is an outage to wait out; any other error is final."""
        if not isinstance(exc, psycopg.Error):
            return None
        message = self._scrub(self.describe(exc, doing))
        if isinstance(exc, psycopg.errors.DeadlockDetected | psycopg.errors.SerializationFailure):
            return LedgerConflict(message)
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            return LedgerUnavailable(message)
        return LedgerError(message)

    def close(self) -> None:
        """Release the writer's connection and the pool; later use fails as closed."""
        self._closed = True
        self._drop_writer()
        if self._pool is not None:
            self._pool.close()
            self._pool = None
