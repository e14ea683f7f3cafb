"""Workers that turn "needs a default" decisions into exactly one wrap-up write each.

Per participant: wait until ``startAcwTime + grace`` (capped at the time-boxed queue's timeout less
the margin), check the state (the latest snapshot when the socket has been continuous since it
arrived, otherwise a GET), write with only ``wrapup`` in the body, and record the outcome in the
ledger. What a platform error means is :func:`wrapupd.retry.classify`'s decision; what a state
means is :mod:`wrapupd.rules`'. A write that may have landed (timeout, 5xx, crash) is always
re-checked by GET before any second write, so a participant never receives two writes from
wrapupd, and a participant that shows any code is never written over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from functools import partial
from typing import Protocol

import structlog

from wrapupd.backoff import jittered_backoff
from wrapupd.clock import Clock
from wrapupd.code_cache import ResolvedQueue
from wrapupd.errors import PlatformError
from wrapupd.events import (
    ConversationSnapshot,
    Decision,
    ItemState,
    NeedsDefault,
    NoLongerNeeded,
    Outcome,
    WorkItem,
)
from wrapupd.ledger import Ledger
from wrapupd.metrics import Metrics
from wrapupd.outcomes import ApplierConfig, Outcomes
from wrapupd.ratelimit import Priority, RateLimiter
from wrapupd.replicas import Admission, Replicas
from wrapupd.retry import Call, Final, Hold, Retry, classify
from wrapupd.rules import (
    StateCheck,
    after_refusal,
    check_participant,
    find_participant,
    resolved_outcome,
    schedule_for,
)
from wrapupd.worklist import Live, Worklist

log = structlog.get_logger("wrapupd.applier")


class ConversationWriter(Protocol):
    """The platform calls the applier makes: read a conversation, write a participant's wrap-up."""

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


class Applier:
    """Owns every unfinished work item; ``submit`` takes each detector decision."""

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
        on_hold: Callable[[Hold], None] | None = None,
        replicas: Replicas | None = None,
    ) -> None:
        self._client = client
        self._replicas = replicas
        self._ledger = ledger
        self._lookup = lookup
        self._continuity = continuity
        self._limiter = limiter
        self._metrics = metrics
        self._clock = clock
        self._config = config
        self._work = Worklist(clock)
        self._out = Outcomes(
            work=self._work,
            ledger=ledger,
            limiter=limiter,
            metrics=metrics,
            clock=clock,
            config=config,
            backoff=backoff or _default_backoff(config),
            on_hold=on_hold,
            replicas=replicas,
        )
        self._accepting = True

    # --- intake -------------------------------------------------------------------------------

    @property
    def pending_count(self) -> int:
        """Unfinished work items held in memory."""
        return len(self._work)

    def submit(self, decisions: Sequence[Decision], *, epoch: int | None) -> None:
        """Take the detector's decisions about one snapshot, learned at subscriber ``epoch``."""
        if not self._accepting:
            return
        for decision in decisions:
            if isinstance(decision, NeedsDefault):
                self._on_needs_default(decision, epoch)
            else:
                self._on_no_longer_needed(decision, epoch)

    def _on_needs_default(self, decision: NeedsDefault, epoch: int | None) -> None:
        key = (decision.conversation_id, decision.participant_id)
        live = self._work.get(key)
        if live is not None:
            live.fresh_epoch = epoch
            return
        if self._work.seen_resolved(key):
            return  # a stale snapshot: after-call work only moves forward
        resolved = self._lookup(decision.queue_id)
        if resolved is None:
            return
        item = _new_item(decision, resolved)
        if not self._ledger.add_pending(
            item, queue_name=resolved.queue.name, user_id=decision.user_id
        ):
            return  # known already: finished, or resumed from the ledger
        self._metrics.acw_without_code()
        log.info(
            "acw_without_code",
            conversation=key[0],
            participant=key[1],
            queue=decision.queue_id,
            code=resolved.code.name,
            due_in_s=round((item.due_at - self._clock.now()).total_seconds(), 3),
        )
        self._track(item, epoch, needs_check=False)

    def _on_no_longer_needed(self, decision: NoLongerNeeded, epoch: int | None) -> None:
        key = (decision.conversation_id, decision.participant_id)
        live = self._work.get(key)
        if live is None:
            self._work.remember_resolved(key)
            return
        if self._work.in_flight(key):
            live.fresh_epoch = epoch
            live.needs_check = True  # a worker may be about to write: it must look again first
            return
        outcome, detail = resolved_outcome(decision)
        self._out.finish(key, outcome, detail)

    def resume(self, items: Iterable[WorkItem] | None = None) -> int:
        """Schedule what the ledger holds unfinished (after a restart), or ``items`` (redriven, or
        left by another replica): every one is re-checked by GET first."""
        count = 0
        for item in self._ledger.unfinished() if items is None else items:
            if self._work.get(item.key) is None:
                self._track(item, None, needs_check=True)
                count += 1
        if count:
            log.info("resumed_work_items", count=count)
        return count

    def take_redriven(self, items: Sequence[WorkItem]) -> int:
        """Take back items an operator redrove (``wrapupd ledger redrive``): each is re-checked by GET first."""
        count = 0
        for item in items:
            if self._work.get(item.key) is None:
                self._track(item, None, needs_check=True)
                count += 1
        if count:
            log.info("redriven_work_items", count=count)
        return count

    def _track(self, item: WorkItem, epoch: int | None, *, needs_check: bool) -> None:
        self._work.track(item, epoch, needs_check=needs_check)
        self._metrics.set_pending(len(self._work))

    # --- workers ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run the workers until cancelled."""
        async with asyncio.TaskGroup() as group:
            for _ in range(max(1, self._config.workers)):
                group.create_task(self._worker())

    async def _worker(self) -> None:
        while True:
            live = await self._work.take_due()
            try:
                await self._process(live)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not kill the worker or lose the item
                log.exception(
                    "work_item_crashed", conversation=live.key[0], participant=live.key[1]
                )
                self._out.retry_later(live, "internal error")
            finally:
                self._work.release(live.key)

    async def _process(self, live: Live) -> None:
        resolved = self._lookup(live.item.queue_id)
        if resolved is None:
            self._out.finish(
                live.key, Outcome.FAILED, f"queue {live.item.queue_id} is no longer configured"
            )
            return
        if not await self._admitted(live):
            return
        if live.needs_check or not self._state_known(live):
            check = await self._check_state(live, resolved)
            if check is None:
                return
            if check.outcome is not None:
                self._out.finish(live.key, check.outcome, check.detail, code_id=check.code)
                return
        if self._config.dry_run:
            code = resolved.code
            self._out.finish(live.key, Outcome.DRY_RUN, f"would apply {code.name}", code_id=code.id)
            return
        await self._write(live, resolved)

    async def _admitted(self, live: Live) -> bool:
        """Only the replica holding the item's lease checks and writes it (:mod:`wrapupd.replicas`)."""
        if self._replicas is None:
            return True
        admission = await self._replicas.admit(live.key)
        if admission is Admission.RECHECK:
            live.needs_check = True  # another replica may have written it before it died
        elif admission is Admission.WAIT:
            self._out.not_ours(live)
        elif admission is Admission.DONE:
            self._out.forget(live)
        return admission in (Admission.WRITE, Admission.RECHECK)

    def _state_known(self, live: Live) -> bool:
        return live.fresh_epoch is not None and self._continuity.is_continuous_since(
            live.fresh_epoch
        )

    async def _check_state(self, live: Live, resolved: ResolvedQueue) -> StateCheck | None:
        """GET the conversation; None means the check itself failed and was rescheduled."""
        conversation_id, participant_id = live.key
        await self._limiter.acquire(Priority.LIVE)
        try:
            snapshot = await self._client.get_conversation(conversation_id)
        except PlatformError as exc:
            verdict = classify(exc, Call.READ)
            if isinstance(verdict, Hold):
                self._out.hold(live, verdict)
                return None
            if isinstance(verdict, Final):
                return StateCheck(verdict.outcome, verdict.detail)
            return self._check_failed(live, verdict, exc)
        live.needs_check = False
        live.failed_checks = 0
        return check_participant(find_participant(snapshot, participant_id), resolved.code.id)

    def _check_failed(self, live: Live, verdict: Retry, error: PlatformError) -> StateCheck | None:
        live.failed_checks += 1
        if live.failed_checks >= self._config.max_attempts and verdict.after is None:
            detail = f"state check: gave up after {live.failed_checks} attempts: {error}"
            return StateCheck(Outcome.FAILED, detail)
        self._out.retry(live, verdict, error, Call.READ)
        return None

    async def _write(self, live: Live, resolved: ResolvedQueue) -> None:
        code = resolved.code
        attempt = live.item.attempts + 1
        leased = self._replicas is not None and self._replicas.shared
        if not await self._ledger.mark_writing(live.key, attempt, code.id, leased=leased):
            self._out.not_ours(
                live
            )  # finished meanwhile, or the lease lapsed: never write unmarked
            return
        live.item = replace(live.item, attempts=attempt, state=ItemState.WRITING, code_id=code.id)
        await self._limiter.acquire(Priority.LIVE)
        if live.needs_check:  # the socket saw it resolved while we waited: look before writing
            self._out.reschedule(live, 0.0, "resolved before the write: re-checking")
            return
        started = self._clock.monotonic()
        try:
            await self._client.patch_participant_wrapup(
                *live.key, code_id=code.id, code_name=code.name, notes=resolved.policy.notes
            )
        except PlatformError as exc:
            await self._write_failed(live, resolved, exc)
            return
        latency = (self._clock.now() - live.item.acw_started_at).total_seconds()
        self._metrics.apply_latency(latency)
        self._out.finish(
            live.key,
            Outcome.APPLIED,
            f"applied {code.name}",
            code_id=code.id,
            code_name=code.name,
            latency_ms=round(latency * 1000),
            call_ms=round((self._clock.monotonic() - started) * 1000),
        )

    async def _write_failed(
        self, live: Live, resolved: ResolvedQueue, error: PlatformError
    ) -> None:
        verdict = classify(error, Call.WRITE)
        if isinstance(verdict, Final):
            self._out.finish(live.key, verdict.outcome, verdict.detail, code_id=resolved.code.id)
        elif isinstance(verdict, Retry):
            live.needs_check = verdict.may_have_landed
            self._out.retry(live, verdict, error, Call.WRITE)
        elif isinstance(verdict, Hold):  # refused before anything was written: not an attempt
            live.item = replace(live.item, attempts=live.item.attempts - 1)
            self._out.hold(live, verdict)
        else:  # refused: find out why from the live state, then decide
            live.needs_check = True  # if the check fails, never write again unchecked
            check = await self._check_state(live, resolved)
            if check is not None:
                outcome, detail, code = after_refusal(check, resolved.code, verdict.refusal)
                self._out.finish(live.key, outcome, detail, code_id=code)

    # --- shutdown -----------------------------------------------------------------------------

    def stop_intake(self) -> None:
        """Take no new decisions (shutdown has begun)."""
        self._accepting = False

    async def drain(self, deadline_seconds: float) -> bool:
        """Wait for in-flight writes to finish; unfinished items stay in the ledger for the next start."""
        self.stop_intake()
        try:
            await self._clock.wait_for(self._work.idle(), deadline_seconds)
        except TimeoutError:
            log.warning("drain_deadline_passed", in_flight=self._work.held)
            return False
        return True


def _new_item(decision: NeedsDefault, resolved: ResolvedQueue) -> WorkItem:
    due, deadline = schedule_for(decision.acw_started_at, resolved.queue, resolved.policy)
    return WorkItem(
        conversation_id=decision.conversation_id,
        participant_id=decision.participant_id,
        queue_id=decision.queue_id,
        acw_started_at=decision.acw_started_at,
        due_at=due,
        deadline=deadline,
        media_type=decision.media_type,
    )


def _default_backoff(config: ApplierConfig) -> Callable[[], Iterator[float]]:
    return partial(
        jittered_backoff, initial=config.retry_initial_seconds, maximum=config.retry_max_seconds
    )
