"""Replicas sharing one ledger: who writes an item, who sweeps, and each one's share of the budget.

Every replica holds its own channel(s) and records what it sees; only the replica holding an
item's lease writes it. The applier asks :meth:`Replicas.admit` before its state check and write:
WRITE (the lease is ours), RECHECK (taken over from a replica that died: GET before writing), WAIT
(another replica holds it: look again just after its lease ends) or DONE (finished,
perhaps by another replica: forget it). Leases are renewed while held and lapse when a replica
dies. The reconciler role goes to one replica at a time; the rate budget is the deployment's, so
each live replica (heartbeat rows) takes its share. On the embedded SQLite ledger there is one
process, so every item is admitted and only redriven items are polled.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from wrapupd.backoff import jittered_backoff
from wrapupd.clock import Clock
from wrapupd.errors import LedgerUnavailable
from wrapupd.events import WorkItem
from wrapupd.ledger import Claim, Key, Ledger

log = structlog.get_logger("wrapupd.replicas")
# Claim a held item again this soon after its lease ends (clocks of replicas differ a little).
_AFTER_LEASE_END = timedelta(seconds=0.1)

RECONCILER_ROLE = "reconciler"
START_BACKOFF_MAX_SECONDS = 30.0


def wait_for_shared_ledger(
    open_it: Callable[[], Ledger],
    *,
    delays: Iterator[float] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Ledger:
    """Open the shared ledger, waiting out a database that is not there yet (a start during an
    outage, or before the database in a fresh deployment) instead of exiting into a restart loop.

    A refusal for good (wrong password, no such database) is a LedgerError and raised at once."""
    delays = delays or jittered_backoff(initial=0.5, maximum=START_BACKOFF_MAX_SECONDS)
    while True:
        try:
            return open_it()
        except LedgerUnavailable as exc:
            delay = next(delays)
            log.warning("ledger_unreachable_at_start", error=str(exc), retry_in_s=round(delay, 3))
            sleep(delay)


@dataclass(frozen=True, slots=True)
class ReplicaConfig:
    """How long a lease lasts (and so how soon a dead replica's items are taken over), and how
    often a replica says it is alive."""

    lease_seconds: float = 9.0
    heartbeat_seconds: float = 3.0
    name: str | None = None  # default: host:pid (in-process replicas in tests need their own)

    @property
    def renew_seconds(self) -> float:
        """Renew held leases this often: three chances before one lapses."""
        return self.lease_seconds / 3


class Admission(enum.Enum):
    """What the applier may do with an item it is about to check and write."""

    WRITE = "write"
    RECHECK = "recheck"
    WAIT = "wait"
    DONE = "done"


_ADMISSIONS = {
    Claim.MINE: Admission.WRITE,
    Claim.TAKEN_OVER: Admission.RECHECK,
    Claim.HELD: Admission.WAIT,
    Claim.UNKNOWN: Admission.WAIT,
    Claim.FINISHED: Admission.DONE,
}


class Replicas:
    """This replica's part in a deployment sharing one ledger (or the whole of it on SQLite)."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        clock: Clock,
        config: ReplicaConfig,
        budget_per_minute: float,
        set_budget: Callable[[float], None],
        on_reconciler: Callable[[], None],
    ) -> None:
        self._ledger = ledger
        self._clock = clock
        self._config = config
        self._budget = budget_per_minute
        self._set_budget = set_budget
        self._on_reconciler = on_reconciler
        self.shared = ledger.kind == "postgres"
        self._held: dict[Key, datetime] = {}  # items whose lease is ours: when it ends at the least
        self._lease = timedelta(seconds=config.lease_seconds)
        self._held_until: dict[Key, datetime] = {}  # items another replica holds: its lease end
        self._recount = asyncio.Event()  # a lease lapsed: its holder may be gone, beat now
        self._reconciler = not self.shared
        self._live = 1
        self._unavailable = False

    # --- what the applier asks -------------------------------------------------------------------

    def look_again_at(self, key: Key) -> datetime:
        """When to claim an item another replica holds again: just after the lease its last claim
        reported ends (a dead holder's item is taken over at once; a live one has renewed by
        then), else after one renewal period."""
        now = self._clock.now()
        held_until = self._held_until.pop(key, None)
        if held_until is None:
            return now + timedelta(seconds=self._config.renew_seconds)
        latest = now + timedelta(seconds=self._config.lease_seconds)
        return max(now, min(held_until + _AFTER_LEASE_END, latest))

    async def admit(self, key: Key) -> Admission:
        """Claim the item's lease before its check and write (always WRITE on a private ledger)."""
        if not self.shared:
            return Admission.WRITE
        asked = self._clock.now()  # the lease runs at least until asked + lease_seconds
        try:
            answer = await self._ledger.claim(key, self._config.lease_seconds)
        except LedgerUnavailable:
            return Admission.WAIT  # no write without the durable mark: try again later
        if answer.held_until is not None:
            self._held_until[key] = answer.held_until
        if answer.claim is Claim.TAKEN_OVER:
            self._recount.set()  # share the budget anew now, not at the next heartbeat
        admission = _ADMISSIONS[answer.claim]
        if admission in (Admission.WRITE, Admission.RECHECK):
            self._held[key] = asked + self._lease
        else:
            self._held.pop(key, None)
        return admission

    def may_write(self, key: Key) -> bool:
        """The item's lease is ours for at least one more renewal period, so a write sent now lands
        inside it: renewals falling behind (a stalled process, a slow database) hold writes back
        before another replica can take the item over and write it too."""
        if not self.shared:
            return True
        ends = self._held.get(key)
        margin = timedelta(seconds=self._config.renew_seconds)
        return ends is not None and self._clock.now() + margin < ends

    # --- what the service asks -------------------------------------------------------------------

    @property
    def is_reconciler(self) -> bool:
        """This replica runs the reconciliation sweeps now."""
        return self._reconciler

    async def run(self, adopt: Callable[[Iterable[WorkItem]], int]) -> None:
        """Heartbeats, budget share, the reconciler role, lease renewal, and items to adopt:
        redriven ones, and (shared) unfinished ones whose holder may have died."""
        if self.shared:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._keep_alive())
                group.create_task(self._renew_forever())
                group.create_task(self._adopt_forever(adopt))
        else:
            await self._adopt_forever(adopt)

    async def _keep_alive(self) -> None:
        while True:
            try:
                await self._beat()
                self._available_again()
            except LedgerUnavailable as exc:
                self._went_away(exc)
            with contextlib.suppress(TimeoutError):
                await self._clock.wait_for(self._recount.wait(), self._config.heartbeat_seconds)
            self._recount.clear()

    async def _beat(self) -> None:
        ledger, config = self._ledger, self._config
        await ledger.heartbeat()
        live = max(1, len(await ledger.live_replicas(3 * config.heartbeat_seconds)))
        if live != self._live:
            log.info("replicas_sharing_budget", live=live, budget_per_minute=self._budget / live)
        self._live = live
        self._set_budget(self._budget / live)
        held = await ledger.claim_role(RECONCILER_ROLE, config.lease_seconds)
        if held and not self._reconciler:
            log.info("reconciler_role_taken")
            self._reconciler = True
            self._on_reconciler()
        self._reconciler = held

    def _went_away(self, error: LedgerUnavailable) -> None:
        self._reconciler = False  # another replica may take the role meanwhile
        if not self._unavailable:
            log.warning("ledger_unavailable", error=str(error))
        self._unavailable = True

    def _available_again(self) -> None:
        if self._unavailable:
            log.info("ledger_available")
        self._unavailable = False

    async def _renew_forever(self) -> None:
        while True:
            await self._clock.sleep(self._config.renew_seconds)
            keys, asked = list(self._held), self._clock.now()
            try:
                answers = await self._ledger.renew(keys, self._config.lease_seconds)
            except LedgerUnavailable:
                continue
            for key, renewed in zip(keys, answers, strict=True):
                if not renewed:
                    self._held.pop(key, None)  # finished (which releases it), or lost
                elif key in self._held:
                    self._held[key] = max(self._held[key], asked + self._lease)

    async def _adopt_forever(self, adopt: Callable[[Iterable[WorkItem]], int]) -> None:
        while True:
            await self._clock.sleep(self._config.lease_seconds)
            try:
                items = await self._ledger.take_redriven()
                if self.shared:
                    items += await asyncio.to_thread(self._ledger.unfinished)
            except LedgerUnavailable:
                continue
            adopt(items)

    def retire(self) -> None:
        """Clean shutdown: give back held leases and roles, leave the replicas table."""
        if not self.shared:
            return
        for key in self._held:
            self._ledger.release(key)
        self._held.clear()
        self._ledger.retire()
