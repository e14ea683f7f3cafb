"""The applier's promises under adversarial timing (issue 11), on a manual clock.

A scripted platform double plays the conversation: it answers GETs with the participant's current
state, records every write, and counts a write over a code (or after ACW ended) as an overwrite.
Hooks run *during* a call, which is how a test makes the agent code at the worst moment.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from full_disk import fill, small_disk
from wrapupd.applier import Applier, ApplierConfig
from wrapupd.clock import ManualClock
from wrapupd.code_cache import ResolvedQueue
from wrapupd.detector import decide
from wrapupd.errors import PlatformError, RateLimited, RequestTimeout, ServerError
from wrapupd.events import (
    Communication,
    ConversationSnapshot,
    ItemState,
    Outcome,
    Participant,
    Queue,
    QueuePolicy,
    WorkItem,
    WrapupCode,
)
from wrapupd.ledger import Ledger, open_ledger
from wrapupd.ledger.model import Known
from wrapupd.metrics import Metrics
from wrapupd.ratelimit import RateLimiter

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
GRACE = 10.0
KEY = ("c1", "p1")
CODE = WrapupCode("code-default", "Default")
QUEUE = Queue("q1", "Support", wrapup_prompt="MANDATORY")
RESOLVED = ResolvedQueue(QUEUE, CODE, QueuePolicy("Support", "Default", GRACE, 5.0, None))
Hook = Callable[[], None]


def agent(acw_state: str | None = "pending", code: str | None = None) -> Participant:
    """The agent leg in ACW (``acw_state``), with ``code`` when someone has coded it."""
    ended = T0 + timedelta(seconds=1) if code or acw_state in ("complete", "skipped") else None
    communication = Communication("m1", "call", "disconnected", acw_state, None)
    return Participant("p1", "agent", "u1", "q1", T0, ended, code, communications=(communication,))


@dataclass
class Platform:
    """One conversation with one agent; faults and hooks scripted per call."""

    participant: Participant = field(default_factory=agent)
    writes: list[str] = field(default_factory=list)
    overwritten: int = 0
    get_faults: list[PlatformError] = field(default_factory=list)
    patch_faults: list[PlatformError] = field(default_factory=list)
    during_get: list[Hook] = field(default_factory=list)
    during_patch: list[Hook] = field(default_factory=list)
    answers_lost: int = 0  # the next writes land, but their answers never come back
    gets: int = 0
    calls: int = 0
    down: bool = False  # every call answers 503

    def snapshot(self) -> ConversationSnapshot:
        return ConversationSnapshot("c1", (self.participant,))

    def agent_codes(self, code: str = "code-agent") -> None:
        self.participant = agent("complete", code)

    async def get_conversation(self, conversation_id: str) -> ConversationSnapshot:
        self.gets += 1
        self.calls += 1
        if self.down:
            raise busy_503()
        state = self.snapshot()  # what the platform read when the request arrived
        if self.during_get:
            self.during_get.pop(0)()
        if self.get_faults:
            raise self.get_faults.pop(0)
        await asyncio.sleep(0)
        return state

    async def patch_participant_wrapup(
        self,
        conversation_id: str,
        participant_id: str,
        *,
        code_id: str,
        code_name: str | None,
        notes: str | None,
    ) -> None:
        self.calls += 1
        if self.down:
            raise busy_503()
        if self.during_patch:
            self.during_patch.pop(0)()
        if self.patch_faults:
            raise self.patch_faults.pop(0)
        if self.participant.wrapup_code or self.participant.end_acw_time:
            self.overwritten += 1
        self.writes.append(code_id)
        self.participant = agent("complete", code_id)
        if self.answers_lost:
            self.answers_lost -= 1
            raise RequestTimeout("PATCH: no answer within the read timeout")


@dataclass
class Socket:
    """The subscriber as the applier sees it: an epoch that a gap moves on."""

    epoch: int = 0
    connected: bool = True

    def is_continuous_since(self, epoch: int) -> bool:
        return self.connected and epoch == self.epoch

    def gap(self) -> None:
        """The socket dropped and came back: whatever happened meanwhile was not delivered."""
        self.epoch += 1


@dataclass
class Rig:
    platform: Platform
    applier: Applier
    ledger: Ledger
    clock: ManualClock
    limiter: RateLimiter
    socket: Socket

    def sighting(self, *, fetched: bool = False) -> None:
        """The socket delivers the conversation's current state (``fetched``: a sweep's GET)."""
        decisions = decide(self.platform.snapshot(), {"q1"})
        self.applier.submit(decisions, epoch=self.socket.epoch, fetched=fetched)

    async def advance(self, seconds: float) -> None:
        """Let timers just created start sleeping, then move the clock."""
        for _ in range(5):
            await asyncio.sleep(0)
        await self.clock.advance(seconds)

    async def until(self, fact: Callable[[], bool]) -> None:
        """Let the loop (and the ledger's disk thread) run until ``fact`` holds."""
        for _ in range(2000):
            if fact():
                return
            await asyncio.sleep(0.002)
        raise AssertionError("the fact never held")

    def outcome(self) -> Outcome | None:
        item = self.ledger.get(KEY)
        return item.outcome if item else None


async def make_rig(
    tmp_path: Path,
    *,
    rate_per_minute: float = 6000,
    burst: int = 10,
    grace: float = GRACE,
    queue: Queue = QUEUE,
) -> Rig:
    clock = ManualClock(T0)
    resolved = ResolvedQueue(queue, CODE, QueuePolicy("Support", "Default", grace, 5.0, None))
    ledger = await open_ledger(tmp_path / "ledger.db", clock=clock, backoff=lambda: iter(_fast()))
    platform = Platform()
    limiter = RateLimiter(rate_per_minute, burst=burst, clock=clock)
    socket = Socket()
    applier = Applier(
        client=platform,
        ledger=ledger,
        lookup=lambda queue_id: resolved if queue_id == "q1" else None,
        continuity=socket,
        limiter=limiter,
        metrics=Metrics(process_metrics=False),
        clock=clock,
        config=ApplierConfig(workers=2, retry_initial_seconds=1.0, retry_max_seconds=30.0),
    )
    return Rig(platform, applier, ledger, clock, limiter, socket)


def _fast() -> list[float]:
    """The ledger's retry delays on failing storage (real seconds): short, so tests stay quick."""
    return [0.02] * 10_000


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    built = await make_rig(tmp_path)
    async with running(built):
        yield built


class running:
    """Run the applier's workers for the length of a block, then stop them and close the ledger."""

    def __init__(self, rig: Rig) -> None:
        self._rig = rig
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Rig:
        self._task = asyncio.create_task(self._rig.applier.run())
        return self._rig

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._rig.ledger.close()


def busy_503() -> ServerError:
    return ServerError("busy", status=503)


def limited(seconds: float) -> RateLimited:
    return RateLimited("slow down", status=429, retry_after=seconds)


# --- finding 1 and 2: a write goes out only on a proof taken after the last wait --------------


async def test_agent_code_during_a_rate_limiter_wait_is_never_overwritten(tmp_path: Path) -> None:
    """The budget runs dry between the state check and the write; the agent codes meanwhile and the
    event is lost (a socket gap): the write must not go out on the proof taken before the wait."""
    rig = await make_rig(tmp_path, rate_per_minute=1, burst=1)
    async with running(rig):
        rig.socket.connected = False  # no socket proof: the worker checks by GET, then waits
        rig.sighting()
        await rig.advance(GRACE)
        await rig.until(lambda: rig.platform.gets == 1)
        rig.socket.connected = True
        await rig.until(lambda: rig.limiter.waiting() > 0)
        rig.platform.agent_codes()
        rig.socket.gap()
        await rig.advance(61)
        await rig.until(lambda: rig.outcome() is not None)
        assert rig.platform.overwritten == 0 and rig.platform.writes == []
        assert rig.outcome() is Outcome.ALREADY_CODED


async def test_agent_code_during_a_rate_limiter_wait_with_a_socket_gap_is_never_overwritten(
    tmp_path: Path,
) -> None:
    """The socket proved the state; the write waits for the budget; the agent codes and the event
    is lost in a gap during that wait: the proof no longer holds, the state is checked again."""
    rig = await make_rig(tmp_path, rate_per_minute=1, burst=1)
    async with running(rig):
        rig.sighting()
        await rig.limiter.acquire()  # someone else spent the budget
        await rig.advance(GRACE)
        await rig.until(lambda: rig.limiter.waiting() > 0)
        rig.platform.agent_codes()
        rig.socket.gap()
        for _ in range(3):
            await rig.advance(61)
            await asyncio.sleep(0.01)
        await rig.until(lambda: rig.outcome() is not None)
        assert rig.platform.overwritten == 0 and rig.platform.writes == []
        assert rig.outcome() is Outcome.ALREADY_CODED


async def test_agent_code_during_a_rate_limiter_wait_cancels_the_write(tmp_path: Path) -> None:
    """As above with the socket up: the coded event arrives during the wait and cancels the write."""
    rig = await make_rig(tmp_path, rate_per_minute=1, burst=1)
    async with running(rig):
        rig.sighting()
        await rig.limiter.acquire()
        await rig.advance(GRACE)
        await rig.until(lambda: rig.limiter.waiting() > 0)
        rig.platform.agent_codes()
        rig.sighting()
        await rig.advance(61)
        await rig.until(lambda: rig.outcome() is not None)
        assert rig.platform.overwritten == 0 and rig.platform.writes == []
        assert rig.outcome() is Outcome.ALREADY_CODED


async def test_agent_code_seen_while_our_check_is_in_flight_cancels_the_write(rig: Rig) -> None:
    """The GET was answered from the state before the agent coded; the coded event arrives while the
    answer travels: that newer evidence cancels the write not yet sent."""

    def agent_codes_and_the_event_arrives() -> None:
        rig.platform.agent_codes()
        rig.sighting()

    rig.platform.during_get.append(agent_codes_and_the_event_arrives)
    rig.sighting()
    rig.socket.gap()  # the sighting no longer proves anything: the worker checks by GET
    await rig.advance(GRACE)
    await rig.until(lambda: rig.outcome() is not None)
    assert rig.platform.overwritten == 0 and rig.platform.writes == []
    assert rig.outcome() is Outcome.ALREADY_CODED


async def test_agent_code_during_a_retry_after_pause_is_never_overwritten(rig: Rig) -> None:
    """Our write is answered 429 while the agent codes and the event arrives in flight: the retry must
    not go out on the freshness the coded event brought."""

    def agent_codes_and_the_event_arrives() -> None:
        rig.platform.agent_codes()
        rig.sighting()

    rig.platform.patch_faults.append(limited(5))
    rig.platform.during_patch.append(agent_codes_and_the_event_arrives)
    rig.sighting()
    await rig.advance(GRACE)
    await rig.until(lambda: rig.platform.during_patch == [])
    await rig.advance(30)
    await rig.until(lambda: rig.outcome() is not None)
    assert rig.platform.overwritten == 0 and rig.platform.writes == []
    assert rig.outcome() is Outcome.ALREADY_CODED


async def test_agent_code_during_a_retry_after_pause_without_its_event_is_never_overwritten(
    rig: Rig,
) -> None:
    """As above, but the coded event is lost in a socket gap: the retry proves the state anew."""
    rig.platform.patch_faults.append(limited(5))
    rig.platform.during_patch.append(rig.platform.agent_codes)
    rig.sighting()
    await rig.advance(GRACE)
    await rig.until(lambda: rig.platform.during_patch == [])
    await rig.advance(30)
    await rig.until(lambda: rig.outcome() is not None)
    assert rig.platform.overwritten == 0 and rig.platform.writes == []
    assert rig.outcome() is Outcome.ALREADY_CODED


def retry_scheduled(rig: Rig) -> bool:
    """The item is back in the line after one attempt."""
    item = rig.ledger.get(KEY)
    return item is not None and item.state is ItemState.PENDING and item.attempts == 1


async def test_our_write_whose_answer_was_lost_is_recorded_as_ours_when_its_event_comes(
    rig: Rig,
) -> None:
    """The PATCH times out but landed: the event that shows our code must not be read as the
    agent's choice (the reporting teams would see our default counted as an agent's code)."""
    rig.platform.answers_lost = 1
    rig.sighting()
    await rig.advance(GRACE)
    await rig.until(lambda: retry_scheduled(rig))  # its backoff not over yet
    rig.sighting()  # the socket delivers the landed write
    await rig.until(lambda: rig.outcome() is not None)

    item = rig.ledger.get(KEY)
    assert item is not None and item.outcome is Outcome.APPLIED and item.code_id == CODE.id
    assert "answer" in (item.detail or "")
    assert rig.platform.writes == [CODE.id] and rig.platform.overwritten == 0


async def test_our_write_whose_answer_was_lost_is_found_ours_by_the_retry_s_check(
    rig: Rig,
) -> None:
    """As above, with the event lost in a socket gap: the retry's GET finds our code, writes nothing."""
    rig.platform.answers_lost = 1
    rig.sighting()
    await rig.advance(GRACE)
    await rig.until(lambda: rig.platform.writes == [CODE.id])
    rig.socket.gap()
    await rig.advance(30)
    await rig.until(lambda: rig.outcome() is not None)

    assert rig.outcome() is Outcome.APPLIED
    assert rig.platform.writes == [CODE.id] and rig.platform.overwritten == 0


async def test_a_write_in_flight_at_a_crash_is_ours_when_its_event_comes_after_the_restart(
    tmp_path: Path,
) -> None:
    """The process died with the ``writing`` mark on disk; the write had landed. After the restart
    the event showing our code arrives before the worker's check: the item is ours, applied."""
    before = await make_rig(tmp_path)
    item = WorkItem("c1", "p1", "q1", acw_started_at=T0, due_at=T0, deadline=None)
    assert before.ledger.add_pending(item)
    assert await before.ledger.mark_writing(KEY, 1, CODE.id)
    await before.ledger.close()

    after = await make_rig(tmp_path)  # no workers running: only the event can end the item
    assert after.applier.resume() == 1
    after.platform.participant = agent("complete", CODE.id)
    after.sighting()
    await after.until(lambda: after.outcome() is not None)

    assert after.outcome() is Outcome.APPLIED and after.platform.calls == 0
    await after.ledger.close()


async def test_a_sighting_from_before_a_socket_gap_never_authorizes_a_write(rig: Rig) -> None:
    """A snapshot says "in ACW"; the agent codes and that news is lost in a socket gap: the write
    waits for a state check requested after the gap."""
    rig.sighting()
    rig.platform.agent_codes()
    rig.socket.gap()
    await rig.advance(GRACE)
    await rig.until(lambda: rig.outcome() is not None)
    assert rig.platform.overwritten == 0 and rig.platform.writes == []


async def test_a_participant_still_in_acw_gets_the_default_once(rig: Rig) -> None:
    rig.sighting()
    await rig.advance(GRACE)
    await rig.until(lambda: rig.outcome() is not None)
    assert rig.platform.writes == [CODE.id] and rig.outcome() is Outcome.APPLIED


async def test_an_item_that_waited_its_grace_is_checked_before_the_write(rig: Rig) -> None:
    rig.sighting()
    await rig.advance(GRACE)
    await rig.until(lambda: rig.outcome() is not None)
    assert (rig.platform.gets, rig.platform.writes) == (1, [CODE.id])


async def test_a_sweep_read_of_an_item_already_due_is_its_proof_one_call(rig: Rig) -> None:
    """Read by a sweep after its grace ran out (after an outage, a restart): nothing waited between
    the read and the write, so the read proves the state and the write is the one call."""
    await rig.advance(GRACE + 1)
    rig.sighting(fetched=True)
    await rig.until(lambda: rig.outcome() is not None)
    assert (rig.platform.calls, rig.platform.writes) == (1, [CODE.id])


async def test_an_event_on_a_queue_without_grace_is_its_proof_one_call(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path, grace=0.0)
    async with running(rig):
        rig.sighting()
        await rig.until(lambda: rig.outcome() is not None)
        assert (rig.platform.calls, rig.platform.writes) == (1, [CODE.id])


async def test_an_event_first_seen_after_the_grace_ran_out_is_checked_before_the_write(
    rig: Rig,
) -> None:
    """An event that arrives after its participant's grace ran out was delivered late (or an
    earlier one was lost): the state it shows may be that old, and the agent's code may be on its
    way behind it, so it proves nothing and a GET precedes the write."""
    await rig.advance(GRACE + 1)
    rig.sighting()
    rig.platform.agent_codes()  # coded before the write, its event still on its way
    await rig.until(lambda: rig.outcome() is not None)
    assert (rig.platform.gets, rig.platform.writes) == (1, [])
    assert rig.outcome() is Outcome.ALREADY_CODED


async def test_an_event_repeated_after_the_grace_is_checked_before_the_write(
    tmp_path: Path,
) -> None:
    """A duplicate (or a late copy) of an event that arrives after the grace wait ended shows a
    state of unknown age: it does not stand in for the GET the wait made necessary."""
    rig = await make_rig(tmp_path)
    rig.sighting()
    await rig.advance(GRACE)  # no worker runs yet: the item waits in the line
    rig.sighting()  # the platform delivers the same snapshot again, late
    rig.platform.agent_codes()
    async with running(rig):
        await rig.until(lambda: rig.outcome() is not None)
        assert (rig.platform.gets, rig.platform.writes) == (1, [])


@pytest.mark.parametrize("due_at_once", [True, False])
async def test_the_writing_mark_is_on_disk_before_the_patch_is_sent(
    rig: Rig, due_at_once: bool
) -> None:
    """What the disk holds while the PATCH is on its way: the item, marked ``writing`` with the
    code, so a crash during the write re-checks by GET instead of writing again. Read from the
    file as another process would (the ledger's queries do not wait for its writer)."""
    on_disk: list[WorkItem | None] = []
    rig.platform.during_patch.append(lambda: on_disk.append(rig.ledger.queries.get(KEY)))
    if due_at_once:
        await rig.advance(GRACE + 1)
        rig.sighting()
    else:
        rig.sighting()
        await rig.advance(GRACE)
    await rig.until(lambda: rig.outcome() is not None)
    assert rig.platform.writes == [CODE.id]
    [seen] = on_disk
    assert seen is not None, "the PATCH left before its work item was on disk"
    assert (seen.state, seen.attempts, seen.code_id) == (ItemState.WRITING, 1, CODE.id)


async def test_a_sighting_that_aged_in_the_line_is_checked_before_the_write(
    tmp_path: Path,
) -> None:
    """Seen already due, but no worker was free for a second: the agent may have coded meanwhile
    with the news still on its way, so the sighting no longer stands in for a GET."""
    rig = await make_rig(tmp_path)
    await rig.advance(GRACE + 1)
    rig.sighting()
    await rig.advance(1.0)
    async with running(rig):
        await rig.until(lambda: rig.outcome() is not None)
        assert (rig.platform.gets, rig.platform.writes) == (1, [CODE.id])


async def test_past_a_time_boxed_queue_s_deadline_no_write_races_the_timeout_stamp(
    tmp_path: Path,
) -> None:
    """Delayed past ``startAcwTime + timeout - margin`` (a lease wait, a retry), a write would race
    the platform's own timeout stamp: it is not sent; the item is looked at again once the margin
    has also passed the timeout, when the stamp shows (too late) or the write no longer races it."""
    boxed = Queue("q1", "Support", wrapup_prompt="MANDATORY_TIMEOUT", acw_timeout_ms=20_000)
    rig = await make_rig(tmp_path, queue=boxed)  # grace 10 s, margin 5 s: deadline at 15 s
    rig.sighting()
    await rig.advance(16.0)  # no worker ran meanwhile
    async with running(rig):
        await rig.until(lambda: rig.platform.gets == 1)
        for _ in range(20):
            await asyncio.sleep(0)
        assert rig.platform.writes == [] and rig.outcome() is None
        rig.platform.participant = agent("complete", "ININ-WRAP-UP-TIMEOUT")  # the stamp, at 20 s
        await rig.advance(8.9)
        assert rig.platform.gets == 1  # held until 25 s: the timeout, then the margin again
        await rig.advance(0.1)
        await rig.until(lambda: rig.outcome() is not None)
        assert rig.platform.writes == [] and rig.outcome() is Outcome.TOO_LATE


# --- finding 3: transient failures never end an item while ACW can last -----------------------


async def test_a_ten_minute_outage_never_ends_an_item_while_acw_can_last(rig: Rig) -> None:
    """Every call fails for ten minutes, then the platform is back: the agent still gets the code."""
    rig.platform.down = True
    rig.sighting()
    await rig.advance(GRACE)
    for _ in range(20):
        await rig.until(lambda: rig.platform.calls > 0)
        await rig.advance(30)
        await asyncio.sleep(0.01)
        assert rig.outcome() is None, "a transient failure ended the item"
    calls_during_outage = rig.platform.calls
    rig.platform.down = False
    await rig.advance(30)
    await rig.until(lambda: rig.outcome() is not None)
    assert rig.platform.writes == [CODE.id] and rig.outcome() is Outcome.APPLIED
    assert calls_during_outage < 100, "the backoff waits between calls, it is no busy loop"


async def test_failed_writes_never_end_an_item_while_acw_can_last(rig: Rig) -> None:
    rig.platform.patch_faults.extend(busy_503() for _ in range(20))
    rig.sighting()
    await rig.advance(GRACE)
    for _ in range(200):
        if not rig.platform.patch_faults:
            break
        assert rig.outcome() is None, "a transient failure ended the item"
        await rig.advance(30)
        await asyncio.sleep(0.01)
    await rig.advance(30)
    await rig.until(lambda: rig.outcome() is not None)
    assert rig.platform.writes == [CODE.id] and rig.outcome() is Outcome.APPLIED
    assert rig.platform.overwritten == 0


async def test_a_failed_item_seen_again_in_acw_is_reopened(tmp_path: Path) -> None:
    """An item an older run gave up on: the next sighting in ACW without a code reopens it."""
    rig = await make_rig(tmp_path)
    due = T0 + timedelta(seconds=GRACE)
    item = WorkItem("c1", "p1", "q1", acw_started_at=T0, due_at=due, deadline=None)
    rig.ledger.add_pending(item)
    await rig.ledger.record_outcome(KEY, Outcome.FAILED, "gave up (older version)")
    assert rig.ledger.known(KEY) is Known.REOPENABLE
    async with running(rig):
        rig.sighting()
        await rig.advance(GRACE)
        await rig.until(lambda: rig.outcome() is Outcome.APPLIED)
        assert rig.platform.writes == [CODE.id]


# --- finding 4: only explicit terminal evidence ends an item ----------------------------------


@pytest.mark.parametrize("state", [None, "unknown", "outdated_sdk_version"])
async def test_an_unknown_acw_state_is_uncertain_never_resolved_forever(
    rig: Rig, state: str | None
) -> None:
    """A snapshot without a readable ACW state neither ends the participant nor hides a later one."""
    rig.platform.participant = agent(state)
    rig.sighting()
    rig.platform.participant = agent("pending")
    rig.sighting()
    await rig.advance(GRACE)
    await rig.until(lambda: rig.outcome() is not None)
    assert rig.platform.writes == [CODE.id] and rig.outcome() is Outcome.APPLIED


async def test_an_item_whose_check_reads_an_unknown_state_waits_for_evidence(rig: Rig) -> None:
    """The check itself reads an unknown state: no write, no end; later evidence decides."""
    rig.sighting()
    rig.socket.gap()
    rig.platform.participant = agent("unknown")
    await rig.advance(GRACE)
    await rig.until(lambda: rig.platform.gets > 0)
    await rig.advance(5)
    assert rig.outcome() is None and rig.platform.writes == []
    rig.platform.participant = agent("pending")
    for _ in range(5):
        await rig.advance(30)
        await asyncio.sleep(0.01)
    await rig.until(lambda: rig.outcome() is not None)
    assert rig.platform.writes == [CODE.id] and rig.outcome() is Outcome.APPLIED


# --- finding 9: an unavailable ledger delays, never crashes or loses ---------------------------


async def test_a_full_disk_delays_the_write_without_a_crash_and_loses_nothing() -> None:
    """The disk fills before the durable mark: no PATCH without it, no crash log, the item waits;
    the disk frees up and the code goes out once."""
    with small_disk() as disk:
        rig = await make_rig(disk)
        async with running(rig):
            rig.sighting()
            await rig.ledger.flush()
            filler = fill(disk)
            with capture_logs() as logs:
                await rig.advance(GRACE)
                await rig.until(lambda: any(e["event"] == "work_item_retry" for e in logs))
                for _ in range(3):
                    await rig.advance(30)
                    await asyncio.sleep(0.01)
            assert rig.platform.writes == [], "a PATCH left without its durable mark"
            assert not any(e["event"] == "work_item_crashed" for e in logs)
            assert not rig.ledger.health().available
            filler.unlink()
            await rig.until(lambda: rig.ledger.available)
            await rig.advance(30)
            await rig.until(lambda: rig.outcome() is not None)
            assert rig.platform.writes == [CODE.id] and rig.outcome() is Outcome.APPLIED


# --- finding 16: the drain starts nothing new ---------------------------------------------------


async def test_no_item_starts_during_the_drain(rig: Rig) -> None:
    """Shutdown has begun: an item that falls due now stays in the ledger for the next start."""
    rig.sighting()
    drained = asyncio.create_task(rig.applier.drain(60.0))
    await rig.advance(GRACE)
    await asyncio.sleep(0.05)
    assert await drained
    assert rig.platform.calls == 0, "a worker started an item during the drain"
    assert rig.outcome() is None
