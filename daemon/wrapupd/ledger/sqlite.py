"""The embedded ledger: one SQLite file in the state directory, one writing process.

WAL journal with ``synchronous=FULL``: a commit returns once it is on disk, so nothing is
acknowledged before it would survive a power cut. The writer thread batches many work items into one
commit (see :mod:`wrapupd.ledger.writer`), so one fsync serves many. Readers (``get``, the operator's
``wrapupd ledger`` commands, another process) use their own connection: a WAL reader never waits on
the writer.

One process writes a SQLite ledger: :func:`hold_single_writer` takes an exclusive ``flock`` on a
lock file beside it for as long as the ledger is open. A second replica on the same file (two
containers on one volume, a rolling update) gets :class:`~wrapupd.errors.LedgerInUse` at start and
exits 78 instead of writing twice. The kernel drops the lock when the holder dies, however it dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from wrapupd.errors import LedgerError, LedgerInUse, LedgerUnavailable
from wrapupd.ledger.backend import Backend, DriverSession, Params, Row, Session
from wrapupd.ledger.model import iso

LEDGER_FILENAME = "wrapupd.sqlite3"
BUSY_TIMEOUT_MS = 5000
CACHE_KIB = 16_384  # the index pages of a few hundred thousand items stay in memory

# Primary result codes of a storage that fails for now: busy, locked, out of memory, read-only
# (remounted), I/O error, full, cannot open, lock protocol. Anything else is a bug or a bad file.
_TRANSIENT_CODES = frozenset({5, 6, 7, 8, 10, 13, 14, 15})


def ledger_path(state_dir: Path | str) -> Path:
    """Where the ledger lives inside the daemon's state directory."""
    return Path(state_dir) / LEDGER_FILENAME


def hold_single_writer(path: Path) -> int:
    """Lock ``path`` for this process's writes; the lock file's descriptor, to close on exit.

    Raises :class:`LedgerInUse` naming the holder's pid when another process holds it.
    """
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise LedgerInUse(
            f"two replicas on one SQLite ledger: process {holder} already writes {path}."
            " Run one wrapupd per SQLite ledger (Kubernetes: replicas 1, strategy Recreate),"
            ' or share a PostgreSQL ledger between replicas ([ledger] url = "postgresql://...")'
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def check_directory(directory: Path) -> None:
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


class SqliteSession(DriverSession[sqlite3.Connection]):
    """The ledger's SQL on a sqlite3 connection, times stored as ISO text."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        super().__init__(connection)
        self._last: tuple[datetime | None, str] = (None, "")

    def run_many(self, sql: str, rows: Sequence[Params]) -> None:
        """See :meth:`Session.run_many`."""
        self._db.executemany(sql, rows)

    def stream(self, sql: str, params: Params = ()) -> Iterator[Row]:
        """sqlite3's cursor already fetches as it is iterated."""
        yield from self._db.execute(sql, params)

    def ts(self, moment: datetime) -> object:
        """Fixed-width ISO UTC text, which sorts as time does; a batch's shared "now" is made once."""
        last, text = self._last  # many writes of one batch share their "now"
        if moment is not last:
            text = iso(moment)
            self._last = (moment, text)
        return text


class SqliteBackend(Backend):
    """A ledger file; ``single_writer`` takes the lock (the daemon), tools leave it (reads, redrive)."""

    kind = "sqlite"

    def __init__(self, path: Path, *, single_writer: bool = True) -> None:
        self.path = path
        self.location = str(path)
        check_directory(path.parent)
        self._lock_fd = hold_single_writer(path) if single_writer else None
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._closed = False

    def _connect(self) -> sqlite3.Connection:
        if self._closed:
            raise LedgerError(f"ledger {self.location} is closed")
        with self.errors("open"):
            db = sqlite3.connect(
                self.location, isolation_level=None, check_same_thread=False, timeout=5
            )
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            except BaseException:
                db.close()
                raise
        return db

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """``BEGIN IMMEDIATE`` on the one writer connection: the write lock is taken up front."""
        with self._write_lock:
            if self._writer is None:
                self._writer = self._connect()
            db = self._writer
            with self.errors("begin"):
                db.execute("BEGIN IMMEDIATE")
            try:
                yield SqliteSession(db)
                with self.errors("commit"):
                    db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A second connection, a WAL reader that never waits on the writer."""
        with self._read_lock:
            if self._reader is None:
                self._reader = self._connect()
            yield SqliteSession(self._reader)

    def classify(self, exc: Exception, doing: str) -> LedgerError | LedgerUnavailable | None:
        """Busy, locked, full or failing storage is an outage to wait out; anything else is final."""
        if not isinstance(exc, sqlite3.Error):
            return None
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in _TRANSIENT_CODES:
            return LedgerUnavailable(self.describe(exc, doing))
        return LedgerError(self.describe(exc, doing))

    def close(self) -> None:
        """Close both connections and drop the single-writer lock for the next process."""
        self._closed = True
        for db in (self._writer, self._reader):
            if db is not None:
                db.close()
        self._writer = self._reader = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
