"""Finds ACW participants the socket did not report: at start-up, after every gap, and periodically.

Analytics gives a candidate list (conversations in the watched queues that have not ended, started
within ``lookback_days`` before today); each candidate's live state comes from
``GET /api/v2/conversations/{id}``. A sweep after a gap skips candidates the socket has reported
since; a periodic sweep skips nothing, so a frame lost while the socket stayed up is repaired.
One conversation that cannot be read never stops a sweep: it is counted, and retried later alone
(with a growing delay). ``status`` says when sweeps stall. Every call here waits behind live
writes in the rate limiter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from wrapupd.clock import Clock
from wrapupd.errors import Forbidden, PlatformError
from wrapupd.events import ConversationSnapshot, Outcome
from wrapupd.metrics import Metrics
from wrapupd.ratelimit import Priority, RateLimiter
from wrapupd.retry import Final, Retry, classify

log = structlog.get_logger("wrapupd.reconciler")


class SnapshotSink(Protocol):
    """Where the reconciler delivers live states (the intake), and how it skips what the socket saw."""

    def evidence_epoch(self) -> int | None: ...

    def on_rest_snapshot(self, snapshot: ConversationSnapshot, *, epoch: int | None) -> None: ...

    def known_since_gap(self, conversation_id: str) -> bool: ...


class ConversationFinder(Protocol):
    """The platform calls of a sweep: the analytics candidate query and a conversation's live state."""

    async def query_open_conversations(
        self, queue_ids: Sequence[str], start: datetime, end: datetime
    ) -> list[str]: ...

    async def get_conversation(self, conversation_id: str) -> ConversationSnapshot: ...


@dataclass(frozen=True, slots=True)
class ReconcilerConfig:
    """How often to sweep, how far before now a periodic sweep stops, how soon a failed one retries."""

    interval: float = 300.0
    end_lag: float = (
        60.0  # analytics results shift while the interval is live: stop this far before now
    )
    retry_delay: float = 5.0
    lookback_days: int = 3  # long email/messaging conversations stay open for days
    concurrent_reads: int = 4  # after an outage, time-boxed ACWs cannot wait for one read at a time


def query_interval(
    now: datetime, *, end_lag: float, lookback_days: int = 3
) -> tuple[datetime, datetime]:
    """From the start of the UTC day ``lookback_days`` before today (analytics only searches
    conversations that started on a day the interval touches) to ``end_lag`` seconds before now."""
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    start = day_start - timedelta(days=lookback_days)
    end = max(start + timedelta(seconds=1), now - timedelta(seconds=end_lag))
    return start, end


class Reconciler:
    """Sweeps on request (start-up, gaps, retries) and every ``interval`` seconds, one at a time."""

    def __init__(
        self,
        *,
        finder: ConversationFinder,
        queue_ids: Callable[[], Iterable[str]],
        limiter: RateLimiter,
        metrics: Metrics,
        clock: Clock,
        config: ReconcilerConfig = ReconcilerConfig(),
    ) -> None:
        self._finder = finder
        self._queue_ids = queue_ids
        self._limiter = limiter
        self._metrics = metrics
        self._clock = clock
        self._config = config
        self._wanted = asyncio.Event()
        self._reasons: list[str] = []
        self._follow_up: asyncio.Task[None] | None = None
        self._failed: list[str] = []  # conversations the last pass could not read
        self._failed_passes = 0
        self._retry_task: asyncio.Task[None] | None = None
        self._last_complete = clock.monotonic()  # start-up counts as the first "complete"

    def request(self, reason: str) -> None:
        """Ask for a sweep soon; requests made while one is queued are merged into it."""
        self._reasons.append(reason)
        self._wanted.set()

    async def run(self, sink: SnapshotSink) -> None:
        """Sweep whenever asked, and periodically, until cancelled."""
        try:
            while True:
                await self._wait_for_reason()
                reasons, self._reasons = self._reasons or ["periodic"], []
                self._wanted.clear()
                await self._sweep(sink, sorted(set(reasons)))
        finally:
            for task in (self._follow_up, self._retry_task):
                if task is not None:
                    task.cancel()

    def status(self, now: float) -> tuple[bool, str]:
        """Stalled when no sweep completed for three intervals (what ``/readyz`` shows)."""
        age = now - self._last_complete
        unread = f"; {len(self._failed)} conversations unread, retried" if self._failed else ""
        if age > 3 * self._config.interval:
            return False, f"no sweep completed for {age:.0f}s{unread}"
        return True, f"last sweep {age:.0f}s ago{unread}"

    async def _sweep(self, sink: SnapshotSink, reasons: list[str]) -> None:
        """A periodic sweep stops ``end_lag`` before now; any other (start-up, after a gap, a retry)
        reaches now, since what the gap hid is recent, and is repeated once ``end_lag`` later for
        conversations the analytics index did not hold yet."""
        periodic = reasons == ["periodic"]
        if reasons == ["unread"]:
            await self._fetch_pass(sink, list(self._failed), "unread", candidates=0)
            return
        try:
            await self._sweep_once(sink, ",".join(reasons), up_to_now=not periodic)
        except Forbidden as exc:
            missing = ", ".join(exc.missing_permissions) or "analytics:conversationDetail:view"
            log.error(
                "reconcile_forbidden",
                error=str(exc),
                missing_permissions=missing,
                hint="events missed during socket gaps cannot be recovered until the role has it",
            )
            return  # retrying will not help; the next periodic sweep or gap tries again
        except PlatformError as exc:
            await self._retry_soon(exc)
            return
        if not periodic and "follow_up" not in reasons and self._config.end_lag > 0:
            self._schedule_follow_up()

    async def _retry_soon(self, error: PlatformError) -> None:
        """A sweep failed for a reason that may pass: wait (the platform's own wait first), then retry."""
        log.warning("reconcile_failed", error=str(error), retry_in_s=self._config.retry_delay)
        verdict = classify(error)
        if isinstance(verdict, Retry) and verdict.after is not None:
            self._limiter.pause_for(verdict.after)
        await self._clock.sleep(self._config.retry_delay)
        self.request("retry")

    def _schedule_follow_up(self) -> None:
        if self._follow_up is not None:
            self._follow_up.cancel()

        async def later() -> None:
            await self._clock.sleep(self._config.end_lag)
            self.request("follow_up")

        self._follow_up = asyncio.create_task(later(), name="reconcile-follow-up")

    async def _wait_for_reason(self) -> None:
        if self._wanted.is_set():
            return
        waiter = asyncio.ensure_future(self._wanted.wait())
        sleeper = asyncio.ensure_future(self._clock.sleep(self._config.interval))
        try:
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            sleeper.cancel()

    async def _sweep_once(self, sink: SnapshotSink, reason: str, *, up_to_now: bool) -> None:
        """One sweep: the candidates, then the live state of each (a periodic sweep skips none)."""
        queue_ids = list(self._queue_ids())
        if not queue_ids:
            self._last_complete = self._clock.monotonic()
            return
        lag = 0.0 if up_to_now else self._config.end_lag
        start, end = query_interval(
            self._clock.now(), end_lag=lag, lookback_days=self._config.lookback_days
        )
        await self._limiter.acquire(Priority.BACKGROUND)
        candidates = await self._finder.query_open_conversations(queue_ids, start, end)
        wanted = (
            candidates if not up_to_now else [c for c in candidates if not sink.known_since_gap(c)]
        )
        wanted += [c for c in self._failed if c not in set(wanted)]
        await self._fetch_pass(sink, wanted, reason, candidates=len(candidates))
        self._last_complete = self._clock.monotonic()
        self._metrics.reconcile_complete(self._clock.now().timestamp())

    async def _fetch_pass(
        self, sink: SnapshotSink, conversation_ids: list[str], reason: str, *, candidates: int
    ) -> None:
        """Read each conversation, a few at once; one that fails is kept for a later pass, the rest
        go on."""
        failed: list[str] = []
        todo = iter(conversation_ids)

        async def reader() -> None:
            for conversation_id in todo:
                if not await self._read(sink, conversation_id):
                    failed.append(conversation_id)

        async with asyncio.TaskGroup() as group:
            for _ in range(max(1, min(self._config.concurrent_reads, len(conversation_ids)))):
                group.create_task(reader())
        self._metrics.reconcile_run(len(conversation_ids))
        self._finish_pass(failed)
        log.info(
            "reconciled",
            reason=reason,
            candidates=candidates,
            fetched=len(conversation_ids) - len(failed),
            failed=len(failed),
        )

    async def _read(self, sink: SnapshotSink, conversation_id: str) -> bool:
        """One conversation's live state to the sink; False when it could not be read."""
        await self._limiter.acquire(Priority.BACKGROUND)
        epoch = sink.evidence_epoch()  # stamped at the request, never at the answer
        try:
            snapshot = await self._finder.get_conversation(conversation_id)
        except PlatformError as exc:
            if _gone(exc):
                return True
            log.warning("reconcile_read_failed", conversation=conversation_id, error=str(exc))
            return False
        sink.on_rest_snapshot(snapshot, epoch=epoch)
        return True

    def _finish_pass(self, failed: list[str]) -> None:
        self._failed = failed
        self._metrics.reconcile_failed(len(failed))
        self._failed_passes = self._failed_passes + 1 if failed else 0
        if failed:
            self._schedule_unread_retry()

    def _schedule_unread_retry(self) -> None:
        """Retry what could not be read, alone, after a delay that doubles up to the interval."""
        delay = min(
            self._config.interval, self._config.retry_delay * 2 ** (self._failed_passes - 1)
        )
        if self._retry_task is not None:
            self._retry_task.cancel()

        async def later() -> None:
            await self._clock.sleep(delay)
            self.request("unread")

        self._retry_task = asyncio.create_task(later(), name="reconcile-unread")


def _gone(error: PlatformError) -> bool:
    """The candidate conversation no longer exists: nothing to reconcile there."""
    verdict = classify(error)
    return isinstance(verdict, Final) and verdict.outcome is Outcome.TOO_LATE
