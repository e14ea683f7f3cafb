"""Workers that turn "needs a default" decisions into exactly one wrap-up write each.

Per participant: wait until ``startAcwTime + grace`` (capped at the time-boxed queue's timeout less
the margin), check the state (the latest snapshot when the socket has been continuous since it
arrived, otherwise a GET), write with only ``wrapup`` in the body, and record the outcome in the
ledger. A write that may have landed (timeout, 5xx, crash) is always re-checked by GET before any
second write, so a participant never receives two writes from wrapupd, and a participant that shows
any code is never written over.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from wrapupd import detector
from wrapupd.backoff import jittered_backoff
from wrapupd.clock import Clock
from wrapupd.code_cache import ResolvedQueue
from wrapupd.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PlatformError,
    RateLimited,
)
from wrapupd.events import (
    ConversationSnapshot,
    Decision,
    ItemState,
    NeedsDefault,
    NoLongerNeeded,
    Outcome,
    Participant,
    ResolvedReason,
    WorkItem,
)
from wrapupd.ledger import Ledger
from wrapupd.metrics import Metrics
from wrapupd.ratelimit import Priority, RateLimiter

log = structlog.get_logger("wrapupd.applier")

Key = tuple[str, str]
SYSTEM_CODE_PREFIX = "ININ-"
NEEDS_ATTENTION = frozenset({Outcome.FORBIDDEN, Outcome.INVALID_CODE, Outcome.FAILED})
RESOLVED_CAP = 50_000


class ConversationWriter(Protocol):
    async def get_conversation(self, conversation_id: str) -> ConversationSnapshot: ...

    async def patch_participant_wrapup(
        self,
        conversation_id: str,
        participant_id: str,
        *,
        code_id: str,
        code_name: str | None,
        notes: str | None,
    ) -> None: ...


class Continuity(Protocol):
    """What the subscriber tells the applier: whether the socket has had a gap since ``epoch``."""

    def is_continuous_since(self, epoch: int) -> bool: ...


@dataclass(slots=True)
class _Live:
    """In-memory companion of a ledger row while it is unfinished."""

    item: WorkItem
    queue_id: str
    fresh_epoch: int | None  # subscriber epoch when we last learned this participant's state
    needs_check: bool = False
    cancelled: bool = False
    timer: asyncio.Task[None] | None = None
    delays: Iterator[float] | None = None
    rate_limited: int = 0
    failed_checks: int = 0


@dataclass(frozen=True, slots=True)
class ApplierConfig:
    dry_run: bool = False
    workers: int = 4
    max_attempts: int = 8
    max_rate_limited: int = 50
    retry_initial_seconds: float = 1.0
    retry_max_seconds: float = 30.0


@dataclass(slots=True)
class _Check:
    """The outcome of a state check: a final outcome, or None when the participant still needs a code."""

    outcome: Outcome | None
    detail: str = ""
    code: str | None = None


def system_code(code: str | None) -> bool:
    return bool(code) and str(code).startswith(SYSTEM_CODE_PREFIX)


def classify_participant(participant: Participant | None, our_code_id: str | None) -> _Check:
    """Decide from a fresh participant state what a write would mean now."""
    if participant is None:
        return _Check(Outcome.TOO_LATE, "participant no longer in the conversation")
    code = detector.participant_code(participant)
    if code:
        if our_code_id and code == our_code_id:
            return _Check(Outcome.APPLIED, "our code is already on the participant", code)
        if system_code(code):
            return _Check(Outcome.TOO_LATE, f"the platform stamped {code}", code)
        return _Check(Outcome.ALREADY_CODED, "coded meanwhile", code)
    if detector.participant_in_acw_without_code(participant):
        return _Check(None)
    return _Check(Outcome.TOO_LATE, "after-call work ended without a code")


def find_participant(snapshot: ConversationSnapshot, participant_id: str) -> Participant | None:
    return next((p for p in snapshot.participants if p.id == participant_id), None)


def schedule_for(decision: NeedsDefault, rule: ResolvedQueue) -> tuple[datetime, datetime | None]:
    """When to write (after the grace period) and the latest useful moment on time-boxed queues."""
    due = decision.acw_started_at + timedelta(seconds=rule.grace_seconds)
    timeout_ms = rule.queue.acw_timeout_ms
    if not (rule.queue.time_boxed and timeout_ms):
        return due, None
    deadline = (
        decision.acw_started_at
        + timedelta(milliseconds=timeout_ms)
        - timedelta(seconds=rule.timeout_margin_seconds)
    )
    deadline = max(deadline, decision.acw_started_at)
    return min(due, deadline), deadline


class Applier:
    """Owns every unfinished work item; ``submit`` is called for each detector decision."""

    def __init__(
        self,
        *,
        client: ConversationWriter,
        ledger: Ledger,
        lookup: Callable[[str | None], ResolvedQueue | None],
        continuity: Continuity,
        limiter: RateLimiter,
        metrics: Metrics,
        clock: Clock,
        config: ApplierConfig = ApplierConfig(),
        backoff: Callable[[], Iterator[float]] | None = None,
    ) -> None:
        self._client = client
        self._ledger = ledger
        self._lookup = lookup
        self._continuity = continuity
        self._limiter = limiter
        self._metrics = metrics
        self._clock = clock
        self._config = config
        self._backoff = backoff or (
            lambda: jittered_backoff(
                initial=config.retry_initial_seconds, maximum=config.retry_max_seconds
            )
        )
        self._live: dict[Key, _Live] = {}
        # Participants seen coded or out of ACW before any work item existed: a late, stale
        # "in ACW" snapshot of them (events arrive out of order) must not start one.
        self._resolved: OrderedDict[Key, None] = OrderedDict()
        self._ready: asyncio.PriorityQueue[tuple[float, float, int, Key]] = asyncio.PriorityQueue()
        self._seq = itertools.count()
        self._in_flight: set[Key] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._accepting = True

    # --- intake -------------------------------------------------------------------------------

    @property
    def pending_count(self) -> int:
        return len(self._live)

    def submit(self, decisions: Sequence[Decision], *, epoch: int | None) -> None:
        if not self._accepting:
            return
        for decision in decisions:
            if isinstance(decision, NeedsDefault):
                self._on_needs_default(decision, epoch)
            else:
                self._on_no_longer_needed(decision, epoch)

    def _on_needs_default(self, decision: NeedsDefault, epoch: int | None) -> None:
        key = (decision.conversation_id, decision.participant_id)
        live = self._live.get(key)
        if live is not None:
            live.fresh_epoch = epoch
            return
        if key in self._resolved:
            return  # a stale snapshot: after-call work only moves forward
        rule = self._lookup(decision.queue_id)
        if rule is None:
            return
        due, deadline = schedule_for(decision, rule)
        item = WorkItem(
            conversation_id=decision.conversation_id,
            participant_id=decision.participant_id,
            queue_id=decision.queue_id,
            acw_started_at=decision.acw_started_at,
            due_at=due,
            deadline=deadline,
            media_type=decision.media_type,
        )
        if not self._ledger.add_pending(item, queue_name=rule.queue.name, user_id=decision.user_id):
            return  # known already: finished, or resumed from the ledger
        self._metrics.acw_without_code()
        log.info(
            "acw_without_code",
            conversation=key[0],
            participant=key[1],
            queue=decision.queue_id,
            code=rule.code.name,
            due_in_s=round((due - self._clock.now()).total_seconds(), 3),
        )
        self._track(item, decision.queue_id, epoch, needs_check=False)

    def _on_no_longer_needed(self, decision: NoLongerNeeded, epoch: int | None) -> None:
        key = (decision.conversation_id, decision.participant_id)
        live = self._live.get(key)
        if live is None:
            self._remember_resolved(key)
        if live is None or key in self._in_flight:
            if live is not None:
                live.fresh_epoch = epoch
            return
        if decision.reason is ResolvedReason.CODED and not system_code(decision.code):
            self._finish(key, Outcome.ALREADY_CODED, f"agent chose {decision.code}")
        elif decision.reason is ResolvedReason.CODED:
            self._finish(key, Outcome.TOO_LATE, f"the platform stamped {decision.code}")
        else:
            self._finish(key, Outcome.TOO_LATE, f"after-call work ended ({decision.reason.value})")

    def _remember_resolved(self, key: Key) -> None:
        self._resolved[key] = None
        self._resolved.move_to_end(key)
        if len(self._resolved) > RESOLVED_CAP:
            self._resolved.popitem(last=False)

    def resume(self) -> int:
        """Schedule what the ledger holds unfinished (after a restart): every one is re-checked by GET first."""
        count = 0
        for item in self._ledger.unfinished():
            if item.key not in self._live:
                self._track(item, item.queue_id, None, needs_check=True)
                count += 1
        if count:
            log.info("resumed_work_items", count=count)
        return count

    def _track(
        self, item: WorkItem, queue_id: str, epoch: int | None, *, needs_check: bool
    ) -> None:
        live = _Live(item=item, queue_id=queue_id, fresh_epoch=epoch, needs_check=needs_check)
        self._live[item.key] = live
        self._metrics.set_pending(len(self._live))
        self._schedule(live, item.due_at)

    def _schedule(self, live: _Live, due_at: datetime) -> None:
        delay = (due_at - self._clock.now()).total_seconds()
        live.timer = asyncio.create_task(self._release_after(live, delay))

    async def _release_after(self, live: _Live, delay: float) -> None:
        await self._clock.sleep(delay)
        if live.cancelled:
            return
        # Earliest deadline first (on the monotonic clock), then first due: when the budget is short,
        # the time-boxed participants closest to the platform's timeout go first.
        now = self._clock.monotonic()
        deadline = live.item.deadline
        by = now + (deadline - self._clock.now()).total_seconds() if deadline else math.inf
        self._ready.put_nowait((by, now, next(self._seq), live.item.key))

    # --- workers ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run the workers until cancelled."""
        async with asyncio.TaskGroup() as group:
            for _ in range(max(1, self._config.workers)):
                group.create_task(self._worker())

    async def _worker(self) -> None:
        while True:
            *_, key = await self._ready.get()
            live = self._live.get(key)
            if live is None or live.cancelled or key in self._in_flight:
                continue
            self._in_flight.add(key)
            self._idle.clear()
            try:
                await self._process(live)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not kill the worker or lose the item
                log.exception("work_item_crashed", conversation=key[0], participant=key[1])
                self._retry_later(live, "internal error")
            finally:
                self._in_flight.discard(key)
                if not self._in_flight:
                    self._idle.set()

    async def _process(self, live: _Live) -> None:
        key = live.item.key
        rule = self._lookup(live.queue_id)
        if rule is None:
            self._finish(key, Outcome.FAILED, f"queue {live.queue_id} is no longer configured")
            return
        if live.needs_check or not self._state_known(live):
            check = await self._check_state(live, rule)
            if check is None:
                return
            if check.outcome is not None:
                self._finish(key, check.outcome, check.detail, code_id=check.code)
                return
        if self._config.dry_run:
            self._finish(
                key, Outcome.DRY_RUN, f"would apply {rule.code.name}", code_id=rule.code.id
            )
            return
        await self._write(live, rule)

    def _state_known(self, live: _Live) -> bool:
        return live.fresh_epoch is not None and self._continuity.is_continuous_since(
            live.fresh_epoch
        )

    async def _check_state(self, live: _Live, rule: ResolvedQueue) -> _Check | None:
        """GET the conversation; None means the check itself failed and was rescheduled."""
        conversation_id, participant_id = live.item.key
        await self._limiter.acquire(Priority.LIVE)
        try:
            snapshot = await self._client.get_conversation(conversation_id)
        except NotFound:
            return _Check(Outcome.TOO_LATE, "conversation no longer exists")
        except Forbidden as exc:
            missing = ", ".join(exc.missing_permissions) or "conversation:communication:view"
            return _Check(
                Outcome.FORBIDDEN, f"cannot read the conversation: the role lacks {missing}: {exc}"
            )
        except (BadRequest, Conflict) as exc:
            return _Check(Outcome.FAILED, f"the platform refused to show the conversation: {exc}")
        except PlatformError as exc:
            live.failed_checks += 1
            if live.failed_checks >= self._config.max_attempts and not isinstance(exc, RateLimited):
                return _Check(
                    Outcome.FAILED,
                    f"state check: gave up after {live.failed_checks} attempts: {exc}",
                )
            self._on_retryable(live, exc, "state check")
            return None
        live.needs_check = False
        live.failed_checks = 0
        return classify_participant(find_participant(snapshot, participant_id), rule.code.id)

    async def _write(self, live: _Live, rule: ResolvedQueue) -> None:
        key = live.item.key
        attempt = live.item.attempts + 1
        await self._ledger.mark_writing(key, attempt, rule.code.id)
        live.item = _replace(
            live.item, attempts=attempt, state=ItemState.WRITING, code_id=rule.code.id
        )
        await self._limiter.acquire(Priority.LIVE)
        started = self._clock.monotonic()
        try:
            await self._client.patch_participant_wrapup(
                key[0], key[1], code_id=rule.code.id, code_name=rule.code.name, notes=rule.notes
            )
        except Forbidden as exc:
            self._finish(
                key, Outcome.FORBIDDEN, _forbidden_detail(exc), code_id=rule.code.id, level="error"
            )
        except (BadRequest, NotFound, Conflict) as exc:
            live.needs_check = True  # if the check below fails, never write again unchecked
            await self._after_refusal(live, rule, exc)
        except PlatformError as exc:
            live.needs_check = not isinstance(
                exc, RateLimited
            )  # a 429 did not land; anything else may have
            self._on_retryable(live, exc, "write")
        else:
            latency = (self._clock.now() - live.item.acw_started_at).total_seconds()
            self._metrics.apply_latency(latency)
            self._finish(
                key,
                Outcome.APPLIED,
                f"applied {rule.code.name}",
                code_id=rule.code.id,
                code_name=rule.code.name,
                latency_ms=round(latency * 1000),
                call_ms=round((self._clock.monotonic() - started) * 1000),
            )

    async def _after_refusal(self, live: _Live, rule: ResolvedQueue, exc: ApiError) -> None:
        """The platform refused the write: find out why from the live state, then decide."""
        check = await self._check_state(live, rule)
        if check is None:
            return
        if check.outcome is not None:
            self._finish(
                live.item.key,
                check.outcome,
                f"{check.detail}; write refused: {exc}",
                code_id=check.code,
            )
        else:
            self._finish(
                live.item.key,
                Outcome.INVALID_CODE,
                f"participant is in ACW without a code but the platform refused {rule.code.name!r} ({rule.code.id}): {exc}",
                code_id=rule.code.id,
                level="error",
            )

    def _on_retryable(self, live: _Live, exc: PlatformError, what: str) -> None:
        if isinstance(exc, RateLimited):
            self._limiter.pause_for(exc.retry_after)
            self._metrics.rate_limited()
            live.rate_limited += 1
            if live.rate_limited > self._config.max_rate_limited:
                self._finish(
                    live.item.key,
                    Outcome.FAILED,
                    f"{what}: rate limited {live.rate_limited} times",
                    level="error",
                )
                return
            self._reschedule(live, exc.retry_after, f"{what}: rate limited")
            return
        if live.item.attempts >= self._config.max_attempts and what == "write":
            self._finish(
                live.item.key,
                Outcome.FAILED,
                f"{what}: gave up after {live.item.attempts} attempts: {exc}",
                level="error",
            )
            return
        self._metrics.retry(type(exc).__name__)
        self._retry_later(live, f"{what}: {exc}")

    def _retry_later(self, live: _Live, reason: str) -> None:
        if live.delays is None:
            live.delays = self._backoff()
        self._reschedule(live, next(live.delays), reason)

    def _reschedule(self, live: _Live, delay: float, reason: str) -> None:
        due = self._clock.now() + timedelta(seconds=delay)
        if live.item.state is ItemState.WRITING:
            self._ledger.back_to_pending(live.item.key, due, reason)
        else:
            self._ledger.reschedule(live.item.key, due)
        live.item = _replace(live.item, state=ItemState.PENDING, due_at=due)
        key = live.item.key
        log.warning(
            "work_item_retry",
            conversation=key[0],
            participant=key[1],
            reason=reason,
            retry_in_s=round(delay, 3),
        )
        self._schedule(live, due)

    def _finish(
        self,
        key: Key,
        outcome: Outcome,
        detail: str,
        *,
        code_id: str | None = None,
        level: str | None = None,
        **extra: object,
    ) -> None:
        level = level or ("error" if outcome in NEEDS_ATTENTION else "info")
        live = self._live.pop(key, None)
        if live is not None:
            live.cancelled = True
            if live.timer is not None and live.timer is not asyncio.current_task():
                live.timer.cancel()
        self._ledger.record_outcome(
            key,
            outcome,
            detail,
            code_id,
            code_name=_text_or_none(extra.get("code_name")),
            latency_ms=_int_or_none(extra.get("latency_ms")),
        )
        self._metrics.outcome(outcome)
        self._metrics.set_pending(len(self._live))
        item = live.item if live else None
        getattr(log, level)(
            "wrapup_outcome",
            conversation=key[0],
            participant=key[1],
            queue=item.queue_id if item else None,
            code=code_id,
            outcome=outcome.value,
            attempt=item.attempts if item else None,
            detail=detail,
            **extra,
        )

    # --- shutdown -----------------------------------------------------------------------------

    def stop_intake(self) -> None:
        self._accepting = False

    async def drain(self, deadline_seconds: float) -> bool:
        """Wait for in-flight writes to finish; unfinished items stay in the ledger for the next start."""
        self.stop_intake()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=deadline_seconds)
        except TimeoutError:
            log.warning("drain_deadline_passed", in_flight=len(self._in_flight))
            return False
        return True


def _forbidden_detail(exc: Forbidden) -> str:
    if exc.user_context_required:
        return (
            "the platform refuses client-credentials tokens for this write (it requires a user context): "
            f"a deployment problem, not transient: {exc}"
        )
    missing = ", ".join(exc.missing_permissions) or "conversation:participant:wrapup"
    return f"the OAuth client's role lacks {missing}: {exc}"


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _replace(item: WorkItem, **changes: object) -> WorkItem:
    return replace(item, **changes)  # type: ignore[arg-type]


__all__ = [
    "Applier",
    "ApplierConfig",
    "Continuity",
    "ConversationWriter",
    "classify_participant",
    "schedule_for",
]
