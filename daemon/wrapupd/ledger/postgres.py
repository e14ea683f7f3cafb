"""The shared ledger: PostgreSQL through psycopg 3 and its connection pool.

``[ledger] url = "postgresql://user@host:5432/db"``; the password comes separately (environment, a
file, a systemd credential) and never appears in a message: :attr:`PostgresBackend.location` is the
URL without it, and every driver error is scrubbed of it before it becomes a
:class:`~wrapupd.errors.LedgerUnavailable` or :class:`~wrapupd.errors.LedgerError`.

The pool checks a connection before lending it, so after the server restarts the next batch gets a
fresh connection; while the server is away every batch fails as unavailable and the writer retries
with backoff, holding what is queued in memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg_pool import ConnectionPool

from wrapupd.errors import LedgerError, LedgerUnavailable
from wrapupd.ledger.backend import Backend, Params, Row, Session
from wrapupd.ledger.model import iso

SCHEMES = ("postgresql", "postgres")
_SECRET_PARAMS = frozenset({"password", "passfile"})


def is_postgres_url(location: str) -> bool:
    """True when ``location`` names a PostgreSQL server rather than a SQLite file."""
    return urlsplit(location).scheme in SCHEMES


def redact_url(url: str) -> str:
    """The URL as it may be printed: no password in the authority or the query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k not in _SECRET_PARAMS])
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _placeholders(sql: str) -> str:
    """The ledger's ``?`` placeholders in psycopg's style (its SQL has no other ``?`` or ``%``)."""
    return sql.replace("?", "%s")


class PostgresSession(Session):
    for_update = " FOR UPDATE"

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._db = connection

    def run(self, sql: str, params: Params = ()) -> int:
        return self._db.execute(_placeholders(sql), params).rowcount

    def run_many(self, sql: str, rows: Sequence[Params]) -> None:
        with self._db.cursor() as cursor:
            cursor.executemany(_placeholders(sql), rows)

    def one(self, sql: str, params: Params = ()) -> Row | None:
        row: Row | None = self._db.execute(_placeholders(sql), params).fetchone()
        return row

    def all(self, sql: str, params: Params = ()) -> list[Row]:
        return list(self._db.execute(_placeholders(sql), params).fetchall())

    def stream(self, sql: str, params: Params = ()) -> Iterator[Row]:
        with self._db.transaction(), self._db.cursor(name="wrapupd_stream") as cursor:
            cursor.execute(_placeholders(sql), params)
            yield from cursor

    def ts(self, moment: datetime) -> object:
        iso(moment)  # refuses naive times, as SQLite does
        return moment


class PostgresBackend(Backend):
    """A pool of connections to one database; the writer borrows one per batch."""

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
        parts = urlsplit(url)
        self._secrets = tuple(s for s in (password, parts.password) if s)
        self._timeout = connect_timeout
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": max(1, round(connect_timeout)),
            "application_name": "wrapupd",
            "options": "-c TimeZone=UTC",
        }
        if password:
            kwargs["password"] = password
        self._pool = ConnectionPool(
            url,
            kwargs=kwargs,
            min_size=1,
            max_size=max(2, pool_size),
            open=True,
            check=ConnectionPool.check_connection,
            name="wrapupd-ledger",
            timeout=connect_timeout,
        )

    @contextmanager
    def _borrowed(self, doing: str) -> Iterator[psycopg.Connection[Any]]:
        with self.errors(doing), self._pool.connection(timeout=self._timeout) as db:
            yield db

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self._borrowed("write") as db, db.transaction():
            yield PostgresSession(db)

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self._borrowed("read") as db:
            yield PostgresSession(db)

    def classify(self, exc: Exception, doing: str) -> LedgerError | LedgerUnavailable | None:
        if not isinstance(exc, psycopg.Error):
            return None
        message = self.describe(exc, doing)
        for secret in self._secrets:
            message = message.replace(secret, "***")
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            return LedgerUnavailable(message)
        return LedgerError(message)

    def close(self) -> None:
        self._pool.close()
