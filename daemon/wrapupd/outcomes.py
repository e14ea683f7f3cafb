"""Where a work item goes after an attempt: retried after a wait (the platform's or the
backoff's), held for an operator, handed to the replica that owns it, or finished and recorded.

Every wait ends the item's proof of state: what was seen before the wait proves nothing after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta

import structlog

from wrapupd.clock import Clock
from wrapupd.errors import PlatformError
from wrapupd.events import ItemState, NoLongerNeeded, Outcome
from wrapupd.ledger import Ledger
from wrapupd.metrics import Metrics
from wrapupd.ratelimit import RateLimiter
from wrapupd.replicas import Admission, Replicas
from wrapupd.retry import Call, Hold, Retry
from wrapupd.rules import StateCheck, races_timeout_stamp, resolved_outcome
from wrapupd.worklist import Key, Live, Worklist

log = structlog.get_logger("wrapupd.applier")

NEEDS_ATTENTION = frozenset({Outcome.FORBIDDEN, Outcome.INVALID_CODE, Outcome.FAILED})
# Outcomes after which a stale "in ACW" snapshot must not start the item again.
SETTLED = frozenset({Outcome.APPLIED, Outcome.ALREADY_CODED, Outcome.TOO_LATE, Outcome.DRY_RUN})
_DOING = {Call.READ: "state check", Call.WRITE: "write"}


class Outcomes:
    """The applier's bookkeeping after each attempt, on the worklist, the ledger and the metrics."""

    def __init__(
        self,
        *,
        work: Worklist,
        ledger: Ledger,
        limiter: RateLimiter,
        metrics: Metrics,
        clock: Clock,
        backoff: Callable[[], Iterator[float]],
        on_hold: Callable[[Hold], None] | None,
        replicas: Replicas | None,
    ) -> None:
        self._work = work
        self._ledger = ledger
        self._limiter = limiter
        self._metrics = metrics
        self._clock = clock
        self._backoff = backoff
        self._on_hold = on_hold
        self._replicas = replicas

    def retry(self, live: Live, verdict: Retry, error: PlatformError, call: Call) -> None:
        """A transient failure never ends the item: the platform's wait, else the capped backoff."""
        doing = _DOING[call]
        if call is Call.WRITE:
            live.unanswered = live.item.code_id
        if verdict.after is not None:
            self._limiter.pause_for(verdict.after)
            self._metrics.rate_limited()
            self.reschedule(live, verdict.after, f"{doing}: rate limited")
            return
        self._metrics.retry(type(error).__name__)
        self.retry_later(live, f"{doing}: {error}")

    def hold(self, live: Live, verdict: Hold) -> None:
        """A deployment problem: report it, keep the item pending, try again later."""
        if self._on_hold is not None:
            self._on_hold(verdict)
        self._metrics.retry(verdict.problem)
        self.retry_later(live, f"held: {verdict.problem}")

    def retry_later(self, live: Live, reason: str) -> None:
        """Try again after the item's next backoff delay (capped, jittered)."""
        if live.delays is None:
            live.delays = self._backoff()
        self.reschedule(live, next(live.delays), reason)

    def reschedule(self, live: Live, delay: float, reason: str) -> None:
        """Wait, then start over from a fresh proof: what was proven before the wait proves nothing."""
        live.proof_epoch = None
        due = self._clock.now() + timedelta(seconds=delay)
        if live.item.state is ItemState.WRITING:
            self._ledger.back_to_pending(live.key, due, reason)
        else:
            self._ledger.reschedule(live.key, due)
        live.item = replace(live.item, state=ItemState.PENDING, due_at=due)
        log.warning(
            "work_item_retry",
            conversation=live.key[0],
            participant=live.key[1],
            reason=reason,
            retry_in_s=round(delay, 3),
        )
        self._work.schedule(live, due)

    def finish(
        self,
        key: Key,
        outcome: Outcome,
        detail: str,
        *,
        code_id: str | None = None,
        code_name: str | None = None,
        latency_ms: int | None = None,
        **extra: object,
    ) -> None:
        """End the item: record the outcome durably, count it once recorded, log it once."""
        live = self._work.remove(key)
        if outcome in SETTLED:
            self._work.remember_resolved(key)
        recorded = self._ledger.record_outcome(
            key, outcome, detail, code_id, code_name=code_name, latency_ms=latency_ms
        )
        recorded.when_settled(lambda first: self._count(outcome, first))
        self._metrics.set_pending(len(self._work))
        item = live.item if live else None
        log_at = log.error if outcome in NEEDS_ATTENTION else log.info
        log_at(
            "wrapup_outcome",
            conversation=key[0],
            participant=key[1],
            queue=item.queue_id if item else None,
            code=code_id,
            outcome=outcome.value,
            attempt=item.attempts if item else None,
            detail=detail,
            latency_ms=latency_ms,
            **extra,
        )

    def ended_by_event(self, live: Live, decision: NoLongerNeeded) -> None:
        """An event shows the item needs no default any more. On a shared ledger only the lease
        holder records how it ended: the code the event shows may be its write, which from here
        looks like an agent's. Held by another replica: stop tracking it here (should the holder
        die first, the item is adopted and checked like any other it left). Due, with no lease
        known: the worker claims it first and then ends it, or finds another holder."""
        if live.held_elsewhere:
            self.forget(live)
            self._work.remember_resolved(live.key)
            log.info("work_item_left_to_holder", conversation=live.key[0], participant=live.key[1])
        elif self._shared and live.item.due_at <= self._clock.now():
            live.resolution = decision
        else:
            self.finish(live.key, *resolved_outcome(decision, live.unanswered))

    @property
    def _shared(self) -> bool:
        return self._replicas is not None and self._replicas.shared

    def _count(self, outcome: Outcome, first: bool | None) -> None:
        """Count an outcome unless the ledger already held another replica's (``first`` False):
        summed over the replicas, each item is counted once. An attempt that failed (None) is
        still queued and counted, as it will be written."""
        if first is not False:
            self._metrics.outcome(outcome)

    def not_ours(self, live: Live) -> None:
        """Another replica holds the item (or finished it): look again once its lease could lapse.
        On a private ledger the item can only have been finished: forget it."""
        if self._replicas is None or not self._replicas.shared:
            self.forget(live)
            return
        due = self._replicas.look_again_at(live.key)
        self._work.schedule(live, due)

    def clear_to_send(self, live: Live, margin_seconds: float) -> bool:
        """Right before a write: the item's lease still covers it, and it does not race a
        time-boxed queue's timeout stamp; else it is held back and the item looked at again."""
        return self._lease_covers_write(live) and self._outside_timeout_margin(live, margin_seconds)

    def _lease_covers_write(self, live: Live) -> bool:
        """Held back when the lease ends soon: looked at again (renewed by then, or another's)."""
        if self._replicas is None or self._replicas.may_write(live.key):
            return True
        log.info("write_held_back_lease_ending", conversation=live.key[0], participant=live.key[1])
        self.not_ours(live)
        return False

    def _outside_timeout_margin(self, live: Live, margin_seconds: float) -> bool:
        """Held back when sent this late it would race the platform's ININ-WRAP-UP-TIMEOUT stamp
        (:func:`~wrapupd.rules.races_timeout_stamp`): looked at again after the timeout."""
        wait = races_timeout_stamp(live.item.deadline, margin_seconds, self._clock.now())
        if wait is None:
            return True
        self.reschedule(live, wait, "past the deadline, the write would race the timeout stamp")
        return False

    def forget(self, live: Live) -> None:
        """Drop the item from this process without an outcome (another replica owns it)."""
        self._work.remove(live.key)
        self._metrics.set_pending(len(self._work))

    async def admitted(self, live: Live) -> bool:
        """Only the replica holding the item's lease checks and writes it (:mod:`wrapupd.replicas`)."""
        if self._replicas is None:
            return True
        admission = await self._replicas.admit(live.key)
        live.held_elsewhere = admission is Admission.WAIT
        if admission is Admission.RECHECK:
            live.proof_epoch = None  # another replica may have written it before it died
        elif admission is Admission.WAIT:
            self.not_ours(live)
        elif admission is Admission.DONE:
            self.forget(live)
        return admission in (Admission.WRITE, Admission.RECHECK)

    def ended_by(self, check: StateCheck, live: Live) -> bool:
        """Act on a state check that forbids the write now: end the item, or look again later."""
        if check.outcome is not None:
            self.finish(live.key, check.outcome, check.detail, code_id=check.code)
            return True
        if check.uncertain:
            self.retry_later(live, f"state check: {check.detail}")
            return True
        return self.cancelled(live)

    def cancelled(self, live: Live) -> bool:
        """Newer evidence (a code, ACW's end) arrived while the worker held the item: no write."""
        if live.resolution is None:
            return False
        outcome, detail = resolved_outcome(live.resolution, live.unanswered)
        if outcome is not Outcome.APPLIED:
            detail = f"{detail} (before our write was sent)"
        self.finish(live.key, outcome, detail)
        return True
