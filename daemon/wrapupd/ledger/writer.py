"""Group commit: one thread writes the ledger, many queued writes share one transaction and fsync.

The event loop only appends to a queue; the writer thread takes everything queued (up to a batch),
runs it in one transaction and commits, which returns once the batch is on disk (SQLite
``synchronous=FULL``, PostgreSQL's own commit). Only then are the writes acknowledged: each queued
write has a :class:`Receipt` that resolves on the event loop after its commit, so an ``await`` on it
(``mark_writing`` always does) means "on disk".

A write is committed as soon as somebody waits for it (awaiting its receipt, a read of this
process's own writes, closing); one nobody waits for (a new work item, a history note, an outcome)
waits for company at most ``LAZY_COMMIT_S``. So a new item due at once and its ``writing`` mark,
awaited right after, reach the disk in the mark's one commit instead of two in a row, and the
writer is rarely in the middle of another fsync when a mark arrives: one fsync on a write's path.
Nothing is acknowledged before it is on disk; only writes nobody waits for are committed later.

A batch that fails for storage reasons (disk full, I/O error, database away) is kept and retried
with backoff, with everything queued after it; meanwhile the receipts of the failed attempt fail
with :class:`~wrapupd.errors.LedgerUnavailable` (the writes themselves stay queued) and
:attr:`Writer.unavailable` tells the ledger to refuse new marks. A batch that fails for any other
reason (a bug) is retried one write at a time so that one bad write cannot hold up the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog

from wrapupd.errors import LedgerConflict, LedgerError, LedgerUnavailable
from wrapupd.ledger.backend import Backend, Session

log = structlog.get_logger("wrapupd.ledger")

T = TypeVar("T")
MAX_BATCH = 20_000
LAZY_COMMIT_S = 0.025  # how long a write nobody waits for may wait for company (see above)
CONFLICT_RETRIES = 5  # a deadlock between replicas is retried at once this many times
_PENDING, _DONE, _FAILED = 0, 1, 2


class Receipt(Generic[T]):
    """A queued write: await it to know it is on disk; its value says what the write did."""

    __slots__ = ("_error", "_future", "_hurry", "_settled", "_state", "_value")

    def __init__(self, hurry: Callable[[], None] | None = None) -> None:
        self._state = _PENDING
        self._value: Any = None
        self._error: BaseException | None = None
        self._future: asyncio.Future[None] | None = None
        self._hurry = hurry  # tells the writer someone waits: commit now
        self._settled: Callable[[T | None], None] | None = None

    def when_settled(self, callback: Callable[[T | None], None]) -> None:
        """Call ``callback`` on the event loop once the write is answered: with its value, or with
        None when the attempt failed (the write itself stays queued). Without waking the writer."""
        if self._state == _PENDING:
            self._settled = callback
        else:
            callback(None if self._state == _FAILED else self._value)

    def resolve(self, value: object) -> None:
        """On disk (event loop thread only)."""
        if self._state == _PENDING:
            self._state, self._value = _DONE, value
            self._wake()

    def fail(self, error: BaseException) -> None:
        """Not acknowledged (event loop thread only); the first answer stands."""
        if self._state == _PENDING:
            self._state, self._error = _FAILED, error
            self._wake()

    def _wake(self) -> None:
        if self._future is not None and not self._future.done():
            self._future.set_result(None)
        if self._settled is not None:
            self._settled(None if self._state == _FAILED else self._value)

    def __await__(self) -> Generator[Any, None, T]:
        if self._state == _PENDING:
            if self._future is None or self._future.cancelled():
                self._future = asyncio.get_running_loop().create_future()
            if self._hurry is not None:
                self._hurry()
            yield from self._future.__await__()
        if self._error is not None:
            raise self._error
        value: T = self._value
        return value


@dataclass(slots=True)
class Op:
    """One queued write: the name of its executor, its arguments, and who waits for it."""

    kind: str
    args: tuple[Any, ...]
    receipt: Receipt[Any] | None = None


Execute = Callable[[Session, list[Op]], list[object]]


class Writer:
    """The ledger's one writing thread, fed through :meth:`put` from the event loop."""

    def __init__(
        self,
        backend: Backend,
        execute: Execute,
        *,
        loop: asyncio.AbstractEventLoop,
        backoff: Callable[[], Iterator[float]],
    ) -> None:
        self._backend = backend
        self._execute = execute
        self._loop = loop
        self._backoff = backoff
        self._delays: Iterator[float] | None = None
        self._queue: deque[Op] = deque()
        self._ready = threading.Condition()
        self._wake = threading.Event()
        self._stopping = False
        self._urgent = (
            False  # somebody waits for a queued write: commit without waiting for company
        )
        self._first_queued_at = 0.0  # when the oldest write in the queue was queued (monotonic)
        self._give_up_at = float("inf")
        self._in_batch = 0
        self._queued_total = 0  # writes ever queued…
        self._settled_total = 0  # …and ever committed (or refused for good), in queue order
        self.unavailable: LedgerUnavailable | None = None
        self.unavailable_since: float | None = None
        self._thread = threading.Thread(target=self._run, name="wrapupd-ledger", daemon=True)

    def start(self) -> None:
        """Start the thread (once)."""
        self._thread.start()

    @property
    def queued(self) -> int:
        """Writes not yet on disk: queued, or in the batch being committed."""
        return len(self._queue) + self._in_batch

    def put(self, op: Op) -> None:
        """Queue a write (any thread; the daemon's is the event loop); it is committed within
        ``LAZY_COMMIT_S`` or so, or at once when somebody waits for it (:meth:`hurry`)."""
        with self._ready:
            if self._stopping:
                raise LedgerError(f"ledger {self._backend.location} is closed")
            self._queue.append(op)
            self._queued_total += 1
            if len(self._queue) == 1:
                # The first write of a batch wakes the writer, which then waits for company; the
                # others do not (a thread woken per write takes the GIL from the event loop).
                self._first_queued_at = time.monotonic()
                self._ready.notify_all()

    def hurry(self) -> None:
        """Somebody waits for what is queued: commit it now."""
        with self._ready:
            self._urgent = True
            self._ready.notify_all()

    def wait_written(self, timeout: float) -> bool:
        """Block until everything queued so far is committed; False on timeout or while unavailable."""
        self.hurry()
        with self._ready:
            target = self._queued_total
            return self._ready.wait_for(
                lambda: self._settled_total >= target or self.unavailable is not None, timeout
            ) and (self._settled_total >= target)

    def stop(self, give_up_after: float) -> None:
        """Write what is queued, retrying for at most ``give_up_after`` seconds, then end."""
        with self._ready:
            self._stopping = True
            self._give_up_at = time.monotonic() + give_up_after
            self._ready.notify_all()
        self._wake.set()

    def join(self) -> None:
        """Wait for the thread to end (after :meth:`stop`)."""
        self._thread.join()

    # --- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            leftover = self._commit(batch)
            if leftover:
                self._requeue(leftover)
                if not self._pause():
                    self._abandon()
                    return

    def _take(self) -> list[Op] | None:
        with self._ready:
            while (patience := self._patience()) != 0:
                self._ready.wait(patience)
            if not self._queue:
                return None
            if len(self._queue) <= MAX_BATCH:
                batch, self._queue = list(self._queue), deque()
            else:
                batch = [self._queue.popleft() for _ in range(MAX_BATCH)]
                self._first_queued_at = time.monotonic()
            self._urgent = False
            self._in_batch = len(batch)
            return batch

    def _patience(self) -> float | None:
        """How long to wait before committing what is queued (0: now; None: until woken, nothing
        is queued); lock held."""
        if self._stopping or (self._queue and (self._urgent or len(self._queue) >= MAX_BATCH)):
            return 0.0
        if not self._queue:
            return None
        return max(0.0, self._first_queued_at + LAZY_COMMIT_S - time.monotonic())

    def _requeue(self, ops: list[Op]) -> None:
        with self._ready:
            self._queue.extendleft(reversed(ops))
            self._in_batch = 0
            self._urgent = True  # the retry goes out after the pause, without more waiting

    def _commit(self, batch: list[Op]) -> list[Op]:
        """Commit ``batch``; what is left uncommitted because the storage failed."""
        try:
            results = self._attempt(batch)
        except LedgerUnavailable as exc:
            self._went_unavailable(exc, batch)
            return batch
        except LedgerError:
            return self._commit_one_by_one(batch)
        self._came_back()
        self._settle(batch, results)
        return []

    def _commit_one_by_one(self, batch: list[Op]) -> list[Op]:
        for n, op in enumerate(batch):
            try:
                result = self._attempt([op])[0]
            except LedgerUnavailable as exc:
                self._went_unavailable(exc, batch[n:])
                return batch[n:]
            except LedgerError as exc:
                log.error("ledger_write_refused", write=op.kind, error=str(exc))
                result = exc
            self._settle([op], [result])
        self._came_back()
        return []

    def _attempt(self, batch: list[Op]) -> list[object]:
        for _ in range(CONFLICT_RETRIES):
            try:
                return self._attempt_once(batch)
            except LedgerConflict:
                continue  # another replica's batch crossed ours: the server undid ours, go again
        return self._attempt_once(batch)

    def _attempt_once(self, batch: list[Op]) -> list[object]:
        with self._backend.transaction() as session, self._backend.errors("write"):
            return self._execute(session, batch)

    def _pause(self) -> bool:
        """Wait before the next attempt; False when closing and out of time."""
        if self._delays is None:
            self._delays = self._backoff()
        delay = next(self._delays)
        if self._stopping:
            remaining = self._give_up_at - time.monotonic()
            if remaining <= 0:
                return False
            delay = min(delay, remaining)
        self._wake.wait(delay)
        self._wake.clear()
        return True

    def _abandon(self) -> None:
        with self._ready:
            lost, self._queue = len(self._queue), deque()
            self._in_batch = 0
        log.error(
            "ledger_writes_lost_at_exit",
            count=lost,
            reason=str(self.unavailable),
            note="unfinished work is found again by the reconciler's sweep at the next start",
        )

    # --- back on the event loop ----------------------------------------------------------

    def _went_unavailable(self, exc: LedgerUnavailable, ops: list[Op]) -> None:
        if self.unavailable is None:
            self.unavailable_since = time.monotonic()
            log.error("ledger_unavailable", error=str(exc), queued=self.queued)
        with self._ready:
            self.unavailable = exc
            self._ready.notify_all()
        self._call_on_loop(_fail_all, ops, exc)

    def _came_back(self) -> None:
        self._in_batch = 0
        self._delays = None
        if self.unavailable is not None:
            log.warning("ledger_available_again", queued=self.queued)
            self.unavailable = None
            self.unavailable_since = None

    def _settle(self, ops: list[Op], results: list[object]) -> None:
        with self._ready:
            self._settled_total += len(ops)
            self._ready.notify_all()
        if any(op.receipt is not None for op in ops):
            self._call_on_loop(_deliver, ops, results)

    def _call_on_loop(self, callback: Callable[..., None], *args: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
            self._loop.call_soon_threadsafe(callback, *args)


def _deliver(ops: list[Op], results: list[object]) -> None:
    for op, result in zip(ops, results, strict=True):
        if op.receipt is None:
            continue
        if isinstance(result, BaseException):
            op.receipt.fail(result)
        else:
            op.receipt.resolve(result)


def _fail_all(ops: list[Op], error: LedgerUnavailable) -> None:
    for op in ops:
        if op.receipt is not None:
            op.receipt.fail(LedgerUnavailable(f"{error} (queued, retried when it is back)"))
