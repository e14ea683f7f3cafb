"""Where a work item goes after an attempt: retried after a wait (the platform's or the
backoff's, within the caps), held for an operator, handed to the replica that owns it, or finished
and recorded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta

import structlog

from wrapupd.clock import Clock
from wrapupd.errors import PlatformError
from wrapupd.events import ItemState, Outcome
from wrapupd.ledger import Ledger
from wrapupd.metrics import Metrics
from wrapupd.ratelimit import RateLimiter
from wrapupd.replicas import Replicas
from wrapupd.retry import Call, Hold, Retry
from wrapupd.worklist import Key, Live, Worklist

log = structlog.get_logger("wrapupd.applier")

NEEDS_ATTENTION = frozenset({Outcome.FORBIDDEN, Outcome.INVALID_CODE, Outcome.FAILED})
_DOING = {Call.READ: "state check", Call.WRITE: "write"}


@dataclass(frozen=True, slots=True)
class ApplierConfig:
    """How the workers behave: how many, whether they write, and how long they keep retrying."""

    dry_run: bool = False
    workers: int = 4
    max_attempts: int = 8
    max_rate_limited: int = 50
    retry_initial_seconds: float = 1.0
    retry_max_seconds: float = 30.0


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
        config: ApplierConfig,
        backoff: Callable[[], Iterator[float]],
        on_hold: Callable[[Hold], None] | None,
        replicas: Replicas | None,
    ) -> None:
        self._work = work
        self._ledger = ledger
        self._limiter = limiter
        self._metrics = metrics
        self._clock = clock
        self._config = config
        self._backoff = backoff
        self._on_hold = on_hold
        self._replicas = replicas

    def retry(self, live: Live, verdict: Retry, error: PlatformError, call: Call) -> None:
        """A transient failure: the platform's wait (a 429) or the backoff, within the caps."""
        doing = _DOING[call]
        if verdict.after is not None:
            self._limiter.pause_for(verdict.after)
            self._metrics.rate_limited()
            live.rate_limited += 1
            if live.rate_limited > self._config.max_rate_limited:
                detail = f"{doing}: rate limited {live.rate_limited} times"
                self.finish(live.key, Outcome.FAILED, detail)
            else:
                self.reschedule(live, verdict.after, f"{doing}: rate limited")
            return
        if call is Call.WRITE and live.item.attempts >= self._config.max_attempts:
            detail = f"{doing}: gave up after {live.item.attempts} attempts: {error}"
            self.finish(live.key, Outcome.FAILED, detail)
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
        """Put the item back to pending, due after ``delay`` (durably), and log why."""
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
        """End the item: record the outcome durably, count it, log it once."""
        live = self._work.remove(key)
        self._ledger.record_outcome(
            key, outcome, detail, code_id, code_name=code_name, latency_ms=latency_ms
        )
        self._metrics.outcome(outcome)
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

    def not_ours(self, live: Live) -> None:
        """Another replica holds the item (or finished it): look again once its lease could lapse.
        On a private ledger the item can only have been finished: forget it."""
        if self._replicas is None or not self._replicas.shared:
            self.forget(live)
            return
        due = self._clock.now() + timedelta(seconds=self._replicas.wait_seconds)
        self._work.schedule(live, due)

    def forget(self, live: Live) -> None:
        """Drop the item from this process without an outcome (another replica owns it)."""
        self._work.remove(live.key)
        self._metrics.set_pending(len(self._work))
