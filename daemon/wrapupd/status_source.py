"""The status page's report, built from the daemon's parts: what ``/``, ``/status.json`` and
``wrapupd status`` show.

Read only, and never a platform call: readiness, the channels and the rate budget are read from
the parts' own state; the per-queue counts and the recent outcomes come from the ledger on a
worker thread (its own read connection), so a page load never blocks the event loop or waits on
the ledger's writer. Channels are named by their tag, never by id.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from wrapupd import __version__
from wrapupd.channels import Shard
from wrapupd.clock import Clock
from wrapupd.code_cache import CodeCache
from wrapupd.deployment import DeploymentProblems
from wrapupd.events import TopicResult
from wrapupd.ledger import Ledger, LedgerRow, QueueActivity
from wrapupd.ratelimit import RateLimiter
from wrapupd.readiness import Checks, SweepHealth
from wrapupd.redaction import channel_tag
from wrapupd.retry import LOGIN_REQUIRED, USER_CONTEXT_REQUIRED
from wrapupd.status_report import (
    ChannelStatus,
    Problem,
    ProblemKind,
    QueueStatus,
    RateBudget,
    RecentOutcome,
    StatusReport,
    checks_from_readiness,
)
from wrapupd.subscriber import Subscriber

RECENT_OUTCOMES = 15
_QUEUE_NAMED = re.compile(r"queue '([^']+)'")


@dataclass(frozen=True, slots=True)
class _LedgerFacts:
    activity: dict[str, QueueActivity]
    recent: list[LedgerRow]


class DaemonStatus:
    """A :class:`~wrapupd.status_report.StatusSource` over one daemon's parts."""

    def __init__(
        self,
        *,
        readiness: Callable[[], Checks],
        subscriber: Subscriber,
        codes: CodeCache,
        limiter: RateLimiter,
        ledger: Ledger,
        clock: Clock,
        budget_per_minute: Callable[[], float],
        dry_run: Callable[[], bool],
        deployment: DeploymentProblems,
        sweeps: SweepHealth,
    ) -> None:
        self._readiness = readiness
        self._deployment = deployment
        self._sweeps = sweeps
        self._subscriber = subscriber
        self._codes = codes
        self._limiter = limiter
        self._ledger = ledger
        self._clock = clock
        self._budget_per_minute = budget_per_minute
        self._dry_run = dry_run
        self.started_at = clock.now()

    async def status_report(self) -> StatusReport:
        """A fresh report; the ledger is read off the event loop."""
        now = self._clock.now()
        facts = await asyncio.to_thread(self._ledger_facts, _start_of_day(now))
        return StatusReport(
            generated_at=now,
            version=__version__,
            started_at=self.started_at,
            dry_run=self._dry_run(),
            checks=checks_from_readiness(self._readiness()),
            channels=tuple(self._channel(shard, now) for shard in self._subscriber.shards),
            budget=self._budget(),
            queues=self._queues(facts.activity),
            recent=tuple(_recent(row) for row in facts.recent),
            problems=self._problems(),
        )

    def _ledger_facts(self, today: datetime) -> _LedgerFacts:
        queries = self._ledger.queries
        return _LedgerFacts(
            activity=queries.queue_activity(today),
            recent=queries.list_items(state="done", limit=RECENT_OUTCOMES),
        )

    def _channel(self, shard: Shard, now: datetime) -> ChannelStatus:
        channel = shard.channel
        age = self._subscriber.heartbeat_age()
        return ChannelStatus(
            tag=channel_tag(channel.id) if channel is not None else "(none yet)",
            shard=shard.index,
            topics=len(shard.topics) - len(shard.rejected),
            rejected_topics=len(shard.rejected),
            connected=shard.connected,
            state="connected" if shard.connected else "disconnected",
            last_frame_at=None if age is None else now - timedelta(seconds=age),
            expires_at=channel.expires if channel is not None else None,
        )

    def _budget(self) -> RateBudget:
        limiter = self._limiter
        return RateBudget(
            per_minute=self._budget_per_minute(),
            used_last_minute=limiter.used_last_minute(),
            waiting=limiter.waiting(),
            paused_for_s=limiter.paused_remaining(),
        )

    def _queues(self, activity: dict[str, QueueActivity]) -> tuple[QueueStatus, ...]:
        rows = []
        for entry in sorted(self._codes.entries(), key=lambda e: e.queue.name.lower()):
            seen = activity.get(entry.queue_id, QueueActivity(0, 0, None))
            rows.append(
                QueueStatus(
                    name=entry.queue.name,
                    default_code=entry.code.name,
                    grace_seconds=entry.policy.grace_seconds,
                    pending=seen.pending,
                    applied_today=seen.applied_since,
                    last_applied_at=seen.last_applied_at,
                )
            )
        return tuple(rows)

    def _problems(self) -> tuple[Problem, ...]:
        problems = [self._rejected(r) for r in self._subscriber.rejected_topics]
        problems += [
            Problem(ProblemKind.CODE_NOT_ASSIGNED, _queue_named_in(text), text)
            for text in self._codes.problems
        ]
        health = self._ledger.health()
        if not health.available:
            problems.append(Problem(ProblemKind.LEDGER_UNAVAILABLE, "ledger", health.detail))
        swept, detail = self._sweeps.status(self._clock.monotonic())
        if not swept:
            problems.append(Problem(ProblemKind.SWEEP_STALLED, "reconciliation", detail))
        return (*problems, *self._deployment_problems())

    def _deployment_problems(self) -> list[Problem]:
        """Work held for the operator: the org wants a user grant, or the user must log in again."""
        found = []
        if self._deployment.active(USER_CONTEXT_REQUIRED):
            found.append(Problem(ProblemKind.USER_CONTEXT_REQUIRED, "wrap-up writes"))
        if self._deployment.active(LOGIN_REQUIRED):
            found.append(Problem(ProblemKind.REFRESH_TOKEN_EXPIRED, "the integration user"))
        return found

    def _rejected(self, result: TopicResult) -> Problem:
        names = _queue_names(self._codes)
        subject = next((n for qid, n in names if qid in result.topic), result.topic)
        missing = ", ".join(result.missing_permissions) or "not named by the platform"
        reason = result.rejection_reason or "rejected"
        return Problem(
            ProblemKind.MISSING_PERMISSIONS,
            subject,
            f"its conversation events are refused ({reason}); missing: {missing}",
        )


def _queue_names(codes: CodeCache) -> Sequence[tuple[str, str]]:
    return [(e.queue_id, e.queue.name) for e in codes.entries()]


def _queue_named_in(problem: str) -> str:
    """The queue a code-assignment problem names (``... not assigned to queue 'Support' ...``)."""
    found = _QUEUE_NAMED.search(problem)
    return found.group(1) if found else "a configured queue"


def _recent(row: LedgerRow) -> RecentOutcome:
    item = row.item
    return RecentOutcome(
        at=row.finished_at or item.updated_at or item.acw_started_at,
        queue=row.queue_name or item.queue_id,
        conversation_id=item.conversation_id,
        outcome=item.outcome.value if item.outcome is not None else item.state.value,
        detail=item.detail or "",
    )


def _start_of_day(now: datetime) -> datetime:
    """00:00 UTC today: "applied today" counts from there."""
    return now.replace(hour=0, minute=0, second=0, microsecond=0)
