"""Workers that turn "needs a default" decisions into exactly one wrap-up write each.

Per participant: wait until ``startAcwTime + grace`` (capped at the time-boxed queue's timeout less
the margin), prove the state, write with only ``wrapup`` in the body, record the outcome.

The rule that keeps an agent's code safe: **a write goes out only on a proof of state taken after
the last time the item waited** (a grace period, a backoff, a Retry-After), and newer evidence of a
code or of ACW's end cancels an item not yet sent. A proof is a GET's answer, or an event on a queue
without grace (:func:`wrapupd.rules.sighting_proves`), stamped with the socket epoch at which it was
*requested*; it holds while the socket stays continuous, and one older than ``PROOF_FRESH_SECONDS``
is checked again by GET. Without a socket, a GET proves the state only when the write follows it at
once. Transient failures never end an item (capped backoff while the participant can need a code);
:func:`wrapupd.retry.classify` decides what an error means, :mod:`wrapupd.rules` what a state means.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Protocol

import structlog

from wrapupd.backoff import jittered_backoff
from wrapupd.clock import Clock
from wrapupd.code_cache import ResolvedQueue
from wrapupd.errors import LedgerUnavailable, PlatformError
from wrapupd.events import (
    ConversationSnapshot,
    Decision,
    ItemState,
    NeedsDefault,
    NoLongerNeeded,
    Outcome,
    WorkItem,
    WrapupCode,
)
from wrapupd.ledger import HistoryKind, Known, Ledger
from wrapupd.metrics import Metrics
from wrapupd.outcomes import Outcomes
from wrapupd.ratelimit import Priority, RateLimiter
from wrapupd.replicas import Replicas
from wrapupd.retry import Call, Final, Hold, Retry, classify
from wrapupd.rules import (
    StateCheck,
    after_refusal,
    check_participant,
    check_summary,
    find_participant,
    new_work_item,
    sighting_proves,
)
from wrapupd.worklist import Live, Worklist

log = structlog.get_logger("wrapupd.applier")
PROOF_FRESH_SECONDS = 0.5  # a sighting stands in for a GET this long (longer than event delivery)


class Continuity(Protocol):
    """The subscriber, as the applier asks it: the socket epoch, and whether a gap followed one."""

    @property
    def epoch(self) -> int: ...
    @property
    def connected(self) -> bool: ...
    def is_continuous_since(self, epoch: int) -> bool: ...


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


@dataclass(frozen=True, slots=True)
class ApplierConfig:
    """How the workers behave: how many, whether they write, and how their retries back off."""

    dry_run: bool = False
    workers: int = 4
    retry_initial_seconds: float = 1.0
    retry_max_seconds: float = 30.0

    def backoff(self) -> Callable[[], Iterator[float]]:
        """The delays between a work item's retries."""
        initial, maximum = self.retry_initial_seconds, self.retry_max_seconds
        return partial(jittered_backoff, initial=initial, maximum=maximum)


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
        self.dry_run = config.dry_run  # a reload may switch it: read right before each write
        self._work = Worklist(clock)
        self._out = Outcomes(
            work=self._work,
            ledger=ledger,
            limiter=limiter,
            metrics=metrics,
            clock=clock,
            backoff=backoff or config.backoff(),
            on_hold=on_hold,
            replicas=replicas,
        )
        self._accepting = True

    # --- intake -------------------------------------------------------------------------------
    @property
    def pending_count(self) -> int:
        """Unfinished work items held in memory."""
        return len(self._work)

    def submit(
        self, decisions: Sequence[Decision], *, epoch: int | None, fetched: bool = False
    ) -> None:
        """Take the decisions about one snapshot: requested at socket ``epoch`` (None: the socket was
        down, so it proves nothing of later changes), ``fetched`` by GET just now or else an event."""
        for decision in decisions:
            if isinstance(decision, NeedsDefault):
                self._on_needs_default(decision, epoch, fetched)
            else:
                self._on_no_longer_needed(decision)

    def _on_needs_default(self, decision: NeedsDefault, epoch: int | None, fetched: bool) -> None:
        key = (decision.conversation_id, decision.participant_id)
        live = self._work.get(key)
        if live is not None and epoch is not None and sighting_proves(decision, live.item, fetched):
            live.prove(epoch, self._clock.monotonic())  # news newer than the item's last wait
        if not self._accepting or live is not None or self._work.seen_resolved(key):
            return  # draining; already tracked; or a stale snapshot (ACW only moves forward)
        resolved = self._lookup(decision.queue_id)
        if resolved is None:
            return
        item = new_work_item(decision, resolved.queue, resolved.policy)
        if self._ledger.add_pending(item, queue_name=resolved.queue.name, user_id=decision.user_id):
            live = self._start(item, decision, resolved.code)
            if sighting_proves(decision, item, fetched):
                live.prove(epoch, self._clock.monotonic())  # a grace period would clear it
        elif not decision.uncertain and self._ledger.known(key) is Known.REOPENABLE:
            self._reopen(item)

    def _reopen(self, item: WorkItem) -> None:
        """Seen again in ACW without a code after it ended without ours: try again (checked first)."""
        due = max(item.due_at, self._clock.now())
        if not self._ledger.reopen(item.key, due_at=due, detail="seen again in ACW without a code"):
            return
        log.info("work_item_reopened", conversation=item.key[0], participant=item.key[1])
        self._track(replace(item, due_at=due))

    def _start(self, item: WorkItem, decision: NeedsDefault, code: WrapupCode) -> Live:
        self._metrics.acw_without_code()
        log.info(
            "acw_without_code",
            conversation=item.conversation_id,
            participant=item.participant_id,
            queue=decision.queue_id,
            code=code.name,
            due_in_s=round((item.due_at - self._clock.now()).total_seconds(), 3),
            uncertain=decision.uncertain,
        )
        return self._track(item)

    def _on_no_longer_needed(self, decision: NoLongerNeeded) -> None:
        """Explicit terminal evidence: it ends the item, or cancels the write a worker prepares."""
        key = (decision.conversation_id, decision.participant_id)
        live = self._work.get(key)
        if live is None:
            self._work.remember_resolved(key)
        elif self._work.in_flight(key):
            live.resolution = decision  # the worker reads it right before sending
        else:
            self._out.ended_by_event(live, decision)

    def resume(self, items: Iterable[WorkItem] | None = None) -> int:
        """Schedule what the ledger holds unfinished (after a restart), or ``items`` (left by another
        replica, or redriven by an operator): every one is re-checked by GET first."""
        count = 0
        for item in self._ledger.unfinished() if items is None else items:
            if item.key not in self._work:
                self._track(item)
                count += 1
        if count:
            log.info("resumed_work_items", count=count)
        return count

    def _track(self, item: WorkItem) -> Live:
        live = self._work.track(item)
        self._metrics.set_pending(len(self._work))
        return live

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
            except LedgerUnavailable as exc:  # storage fails for now: wait it out, lose nothing
                self._metrics.retry("LedgerUnavailable")
                self._out.retry_later(live, f"ledger unavailable: {exc}")
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
            gone = f"queue {live.item.queue_id} is no longer configured"
            self._out.finish(live.key, Outcome.FAILED, gone)
            return
        if not await self._out.admitted(live):
            return
        if not self._proof_holds(live) or self._proof_aged(live):
            await self._limiter.acquire(Priority.LIVE)
            if not self.dry_run and not await self._mark_writing(live, resolved):
                return  # the durable mark first: nothing waits between the check and the write
            epoch = self._evidence_epoch()  # before the request: what changes during it is news
            asked_at = self._clock.monotonic()
            check = await self._check_state(live, resolved)
            if check is None or self._out.ended_by(check, live):
                return
            live.prove(epoch, asked_at)
        elif self._out.cancelled(live):
            return
        if not self._only_logged(live, resolved):
            await self._write(live, resolved)

    def _only_logged(self, live: Live, resolved: ResolvedQueue) -> bool:
        """In dry run, read per item right before its write: finished as "would apply", not sent."""
        if self.dry_run:
            code = resolved.code
            self._out.finish(live.key, Outcome.DRY_RUN, f"would apply {code.name}", code_id=code.id)
        return self.dry_run

    def _evidence_epoch(self) -> int | None:
        return self._continuity.epoch if self._continuity.connected else None

    def _proof_holds(self, live: Live) -> bool:
        """The state was seen "in ACW without a code" after the item's last wait, and the socket
        has been continuous since (so any change would have arrived as an event)."""
        epoch = live.proof_epoch
        return epoch is not None and self._continuity.is_continuous_since(epoch)

    def _proof_aged(self, live: Live) -> bool:
        """The sighting waited in the line too long: a code may still be on its way as an event."""
        return self._clock.monotonic() - live.proof_at > PROOF_FRESH_SECONDS

    async def _check_state(self, live: Live, resolved: ResolvedQueue) -> StateCheck | None:
        """GET the conversation (the caller holds a rate-limiter turn); None: failed, rescheduled."""
        conversation_id, participant_id = live.key
        try:
            snapshot = await self._client.get_conversation(conversation_id)
        except PlatformError as exc:
            verdict = classify(exc, Call.READ)
            if isinstance(verdict, Final):
                return StateCheck(verdict.outcome, verdict.detail)
            if isinstance(verdict, Hold):
                self._out.hold(live, verdict)
            else:
                self._out.retry(live, verdict, exc, Call.READ)
            return None
        check = check_participant(find_participant(snapshot, participant_id), resolved.code.id)
        self._ledger.note(live.key, HistoryKind.CHECK, check_summary(check))
        return check

    async def _mark_writing(self, live: Live, resolved: ResolvedQueue) -> bool:
        """The durable mark before a write may leave: a crash after it re-checks by GET. False (no
        write) when the lease lapsed or the item was finished meanwhile (shared ledgers)."""
        attempt, code_id = live.item.attempts + 1, resolved.code.id
        leased = self._replicas is not None and self._replicas.shared
        if not await self._ledger.mark_writing(live.key, attempt, code_id, leased=leased):
            self._out.not_ours(live)
            return False
        live.item = replace(live.item, attempts=attempt, state=ItemState.WRITING, code_id=code_id)
        return True

    async def _write(self, live: Live, resolved: ResolvedQueue) -> None:
        code = resolved.code
        socketless = live.proof_epoch is None  # a GET just now, with no socket to carry news
        if not self._limiter.try_acquire(Priority.LIVE):
            if socketless:  # waiting would leave the write with no proof at all
                self._out.reschedule(
                    live, 0.0, "no socket: the state check must directly precede the write"
                )
                return
            await self._limiter.acquire(Priority.LIVE)
        marked = live.item.state is ItemState.WRITING  # a GET just before it made the mark
        if not marked and not await self._mark_writing(live, resolved):
            return
        if self._out.cancelled(live) or self._only_logged(live, resolved):
            return  # newer evidence, or dry run switched on while this write waited for its turn
        if not socketless and not self._proof_holds(live):  # a gap while waiting for our turn
            self._out.reschedule(live, 0.0, "socket gap before the write: checking again")
            return
        if not self._out.clear_to_send(live, resolved.policy.timeout_margin_seconds):
            return  # the lease ends soon, or the platform's timeout stamp is due
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

    async def _write_failed(self, live: Live, resolved: ResolvedQueue, exc: PlatformError) -> None:
        verdict = classify(exc, Call.WRITE)
        if isinstance(verdict, Final):
            self._out.finish(live.key, verdict.outcome, verdict.detail, code_id=resolved.code.id)
        elif isinstance(verdict, Retry):
            self._out.retry(live, verdict, exc, Call.WRITE)  # the retry checks by GET first
        elif isinstance(verdict, Hold):  # refused before anything was written: not an attempt
            live.item = replace(live.item, attempts=live.item.attempts - 1)
            self._out.hold(live, verdict)
        else:  # refused: find out why from the live state, then decide
            await self._limiter.acquire(Priority.LIVE)
            check = await self._check_state(live, resolved)
            if check is None:
                return
            if check.uncertain:
                self._out.retry_later(live, f"write refused ({verdict.refusal}); {check.detail}")
                return
            outcome, detail, code = after_refusal(check, resolved.code, verdict.refusal)
            self._out.finish(live.key, outcome, detail, code_id=code)

    # --- shutdown -----------------------------------------------------------------------------
    def stop_intake(self) -> None:
        """Take no new decisions and start no due item (shutdown has begun)."""
        self._accepting = False
        self._work.close()

    async def drain(self, deadline_seconds: float) -> bool:
        """Wait for in-flight writes to finish; unfinished items stay in the ledger for the next start."""
        self.stop_intake()
        try:
            await self._clock.wait_for(self._work.idle(), deadline_seconds)
        except TimeoutError:
            log.warning("drain_deadline_passed", in_flight=self._work.held)
            return False
        return True
