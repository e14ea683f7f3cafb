"""The daemon's ledger: work items, outcomes, leases, on SQLite or PostgreSQL, written in batches.

Intake never touches the disk on the event loop: :meth:`Ledger.add_pending` answers "new to this
process?" from an in-memory index of every known participant and queues the insert for the writer
thread (:mod:`wrapupd.ledger.writer`), which commits many at once. The transitions queue their writes
too and return a :class:`~wrapupd.ledger.writer.Receipt` to await when it matters; the one that
always matters is :meth:`Ledger.mark_writing`, awaited before every PATCH, which returns only once
the mark (and everything queued before it) is on disk, and raises
:class:`~wrapupd.errors.LedgerUnavailable` while the storage fails, so no write leaves without its
durable mark. Reads see what is committed: :meth:`get`, :meth:`unfinished` and
:meth:`outcome_counts` first let this process's queued writes reach the disk; the operator's
queries (:attr:`queries`) do not wait.

Leases (PostgreSQL, active-active): only the holder of an item's lease may mark and write it
(``mark_writing(..., leased=True)`` checks the lease in the same statement); an expired lease is
taken over (:attr:`~wrapupd.ledger.model.Claim.TAKEN_OVER`: re-check by GET first). Lease times come
from the injected clock, so replicas' clocks must agree to well within a lease (NTP does). On SQLite
the same calls work with the one process as the only owner.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

from wrapupd.clock import Clock
from wrapupd.errors import LedgerUnavailable
from wrapupd.events import Outcome, WorkItem
from wrapupd.ledger.backend import Backend
from wrapupd.ledger.model import (
    Claim,
    HistoryKind,
    Key,
    Known,
    LeaseAnswer,
    LedgerHealth,
    Replica,
    refuse_naive,
)
from wrapupd.ledger.ops import execute
from wrapupd.ledger.queries import LedgerQueries
from wrapupd.ledger.writer import Op, Receipt, Writer


def index_token(key: Key) -> str:
    """A participant's key in the in-memory index (one string: cheaper than a tuple of two)."""
    return f"{key[0]}\x00{key[1]}"


READ_OWN_WRITES_TIMEOUT_S = 2.0


class Ledger:
    """Work items and their outcomes; build one with :func:`wrapupd.ledger.open_ledger`."""

    def __init__(
        self,
        backend: Backend,
        *,
        clock: Clock,
        owner: str,
        index: dict[str, Known],
        loop: asyncio.AbstractEventLoop,
        backoff: Callable[[], Iterator[float]],
    ) -> None:
        self._backend = backend
        self._clock = clock
        self.owner = owner
        self._index = index
        self._writer = Writer(backend, execute, loop=loop, backoff=backoff)
        self._writer.start()
        self.queries = LedgerQueries(backend, clock=clock, owner=owner)

    @property
    def location(self) -> str:
        """Where the ledger lives (a path, or a URL without its password)."""
        return self._backend.location

    @property
    def kind(self) -> str:
        """``sqlite`` or ``postgres``."""
        return self._backend.kind

    # --- health and lifecycle ------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """False while the storage fails (disk full, I/O error, database away)."""
        return self._writer.unavailable is None

    def health(self) -> LedgerHealth:
        """What the readiness check shows: available or why not, and how much waits in memory."""
        problem = self._writer.unavailable
        since = self._writer.unavailable_since
        return LedgerHealth(
            available=problem is None,
            detail="writing" if problem is None else str(problem),
            queued=self._writer.queued,
            unavailable_for_s=None if since is None else max(0.0, time.monotonic() - since),
        )

    async def flush(self) -> None:
        """Return once everything queued so far is on disk; LedgerUnavailable while it cannot be."""
        await self._ask("flush", ())

    async def close(self, *, give_up_after: float = 10.0) -> None:
        """Write what is queued (retrying for at most ``give_up_after`` s), then release everything."""
        self._writer.stop(give_up_after)
        await asyncio.to_thread(self._writer.join)
        self._backend.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- queueing ------------------------------------------------------------------------------

    def _queue(self, kind: str, args: tuple[Any, ...]) -> Receipt[Any]:
        receipt: Receipt[Any] = Receipt(self._writer.hurry)
        self._writer.put(Op(kind, args, receipt))
        return receipt

    def _ask(self, kind: str, args: tuple[Any, ...]) -> Receipt[Any]:
        """Queue a write whose caller must not go on without it: refused while unavailable."""
        problem = self._writer.unavailable
        if problem is not None:
            raise LedgerUnavailable(str(problem))
        return self._queue(kind, args)

    # --- intake --------------------------------------------------------------------------------

    def add_pending(
        self, item: WorkItem, *, queue_name: str | None = None, user_id: str | None = None
    ) -> bool:
        """Take on new work; False when this process already knows the participant, in any state.

        The idempotency guard: repeated events and the reconciler finding what the socket already
        reported never create a second item. The insert is queued (``await flush()`` to wait for it).
        """
        token = index_token(item.key)
        if token in self._index:
            return False
        for moment in (item.acw_started_at, item.due_at, item.deadline):
            if moment is not None:  # a naive time is a bug at the caller: refused here, not later
                refuse_naive(moment)
        self._index[token] = Known.OPEN
        self._writer.put(Op("add", (item, queue_name, user_id, self._clock.now(), self.owner)))
        return True

    def known(self, key: Key) -> Known | None:
        """What this process knows of the participant (None: never seen, or purged)."""
        return self._index.get(index_token(key))

    def reopen(self, key: Key, *, due_at: datetime, detail: str) -> bool:
        """Seen again in ACW without a code: put a finished item that left no code back to pending.

        False when this process knows the item as open or finished for good (applied, coded, dry
        run). True when the reopen is queued; the SQL guard still refuses a finished-for-good row
        this process did not know (another replica's), which a later :meth:`claim` then answers
        FINISHED. The caller re-checks the participant by GET before any write.
        """
        token = index_token(key)
        if self._index.get(token, Known.REOPENABLE) is not Known.REOPENABLE:
            return False
        self._index[token] = Known.OPEN
        self._queue("reopen", (key, due_at, detail, self._clock.now(), self.owner))
        return True

    def note(self, key: Key, kind: HistoryKind, detail: str | None = None, **extra: Any) -> None:
        """Add a line to the item's history (e.g. a state check and what it found)."""
        fields = {"detail": detail, "owner": self.owner, **extra}
        self._writer.put(Op("note", (key, self._clock.now(), kind, fields)))

    # --- transitions ---------------------------------------------------------------------------

    async def mark_writing(
        self, key: Key, attempt: int, code_id: str, *, leased: bool = False
    ) -> bool:
        """A PATCH is about to be sent: True once that is on disk, False if the item is finished.

        With ``leased``, False also when this replica does not hold a live lease on the item.
        Raises LedgerUnavailable while the storage fails: then the PATCH must not be sent.
        """
        now = self._clock.now()
        result: bool = await self._ask(
            "mark_writing", (key, attempt, code_id, now, self.owner, leased)
        )
        return result

    def back_to_pending(self, key: Key, due_at: datetime, detail: str | None) -> Receipt[bool]:
        """A retryable failure: wait until ``due_at`` and try again. Resolves False if finished."""
        return self._queue("back_to_pending", (key, due_at, detail, self._clock.now(), self.owner))

    def reschedule(self, key: Key, due_at: datetime, detail: str | None = None) -> Receipt[bool]:
        """Move a PENDING item's due time; with ``detail`` the reason goes into its history."""
        return self._queue("reschedule", (key, due_at, detail, self._clock.now(), self.owner))

    def record_outcome(
        self,
        key: Key,
        outcome: Outcome,
        detail: str | None = None,
        code_id: str | None = None,
        *,
        code_name: str | None = None,
        latency_ms: int | None = None,
    ) -> Receipt[bool]:
        """Finish the item (and release its lease). The first outcome wins: False if finished.

        ``code_id`` is kept from :meth:`mark_writing` when not given again; ``code_name`` and
        ``latency_ms`` (ACW start to applied) go into the audit export.
        """
        token = index_token(key)
        if self._index.get(token) is Known.OPEN:
            self._index[token] = Known.after(outcome)
        extra = {"code_name": code_name, "latency_ms": latency_ms}
        now = self._clock.now()
        return self._queue(
            "record_outcome", (key, outcome, detail, code_id, extra, now, self.owner)
        )

    async def purge(self, older_than: datetime) -> int:
        """Delete finished items last touched before ``older_than``; never unfinished work."""
        keys: list[Key] = await self._queue("purge", (older_than,))
        for key in keys:
            self._index.pop(index_token(key), None)
        return len(keys)

    async def take_redriven(self) -> list[WorkItem]:
        """Items an operator redrove (``wrapupd ledger redrive``), each handed to one replica once."""
        items: list[WorkItem] = await self._ask("take_redriven", ())
        for item in items:
            self._index[index_token(item.key)] = Known.OPEN
        return items

    # --- leases and replicas -------------------------------------------------------------------

    async def claim(self, key: Key, lease_seconds: float) -> LeaseAnswer:
        """Take (or renew) the item's lease for this replica; see :class:`Claim`.

        FINISHED also tells this process's index how the item ended, so that a sighting of a
        participant another replica gave up on can reopen it here.
        """
        now = self._clock.now()
        until = now + timedelta(seconds=lease_seconds)
        answer: tuple[Claim, Outcome | None, datetime | None] = await self._ask(
            "claim", (key, self.owner, until, now)
        )
        claim, outcome, held_until = answer
        if claim is Claim.FINISHED:  # perhaps by another replica: a later sighting may reopen it
            self._index[index_token(key)] = (
                Known.SUCCEEDED if outcome is None else Known.after(outcome)
            )
        return LeaseAnswer(claim, held_until)

    async def renew(self, keys: Sequence[Key], lease_seconds: float) -> list[bool]:
        """Extend leases this replica holds, all in one commit; for each key, False when it no
        longer holds it (stop, do not write)."""
        until = self._clock.now() + timedelta(seconds=lease_seconds)
        receipts: list[Receipt[bool]] = [self._ask("renew", (k, self.owner, until)) for k in keys]
        return [await receipt for receipt in receipts]

    def release(self, key: Key) -> Receipt[bool]:
        """Give the lease back without finishing (shutdown); a finish releases it by itself."""
        return self._queue("release", (key, self.owner))

    async def heartbeat(self, detail: str | None = None) -> None:
        """Say this replica is alive (its row in ``replicas``)."""
        await self._ask("heartbeat", (self.owner, self._clock.now(), detail))

    async def live_replicas(self, within_seconds: float) -> list[Replica]:
        """Replicas whose heartbeat is at most ``within_seconds`` old: they share the rate budget."""
        since = self._clock.now() - timedelta(seconds=within_seconds)
        replicas: list[Replica] = await self._ask("live_replicas", (since,))
        return replicas

    async def claim_role(self, role: str, seconds: float) -> bool:
        """Hold a deployment-wide role (e.g. ``reconciler``) for ``seconds``; call again to renew."""
        now = self._clock.now()
        held: bool = await self._ask(
            "claim_role", (role, self.owner, now + timedelta(seconds=seconds), now)
        )
        return held

    def retire(self) -> Receipt[None]:
        """Leave the replicas table and every role (clean shutdown): the others re-share at once."""
        return self._queue("retire", (self.owner,))

    # --- reads (this process's writes included) -----------------------------------------------

    def _read_own_writes(self) -> None:
        """Let the writer commit what this process queued (a commit's time; not while unavailable).

        The reads below block for that long: for tests, the demo and tools, not for a hot path.
        """
        self._writer.wait_written(READ_OWN_WRITES_TIMEOUT_S)

    def get(self, key: Key) -> WorkItem | None:
        """The item as on disk, including this process's queued writes (unless unavailable)."""
        self._read_own_writes()
        return self.queries.get(key)

    def unfinished(self) -> list[WorkItem]:
        """PENDING and WRITING items, soonest due first: what a restart resumes."""
        self._read_own_writes()
        return self.queries.unfinished()

    def outcome_counts(self) -> dict[Outcome, int]:
        """How many finished items ended each way (every outcome present, zero when none)."""
        self._read_own_writes()
        return self.queries.outcome_counts()
