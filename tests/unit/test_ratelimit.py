"""The shared token bucket: rate, burst, priorities, fairness, 429 pauses. No real sleeping."""

from __future__ import annotations

import asyncio

import pytest

from wrapupd.clock import ManualClock
from wrapupd.ratelimit import Priority, RateLimiter, default_burst

# One time unit: with 60 requests a minute a token refills every UNIT seconds.
UNIT = 1.0
PER_MINUTE = 60.0


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


class Recorder:
    """Starts callers as tasks and records the order in which they got their token."""

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter
        self.order: list[str] = []
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, name: str, priority: Priority = Priority.LIVE) -> asyncio.Task[None]:
        async def caller() -> None:
            await self.limiter.acquire(priority)
            self.order.append(name)

        task = asyncio.get_running_loop().create_task(caller())
        self.tasks.append(task)
        return task


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def drain(limiter: RateLimiter, tokens: int = 1) -> None:
    """Use up the tokens the bucket holds now (its burst: one in these tests)."""
    for _ in range(tokens):
        await limiter.acquire()


# --- rate and burst ---------------------------------------------------------------------------


async def test_a_full_bucket_serves_its_burst_at_once(clock: ManualClock) -> None:
    limiter = RateLimiter(PER_MINUTE, burst=3, clock=clock)
    rec = Recorder(limiter)
    for name in "abcd":
        rec.start(name)
    await settle()
    assert rec.order == ["a", "b", "c"]
    await clock.advance(UNIT)
    await settle()
    assert rec.order == ["a", "b", "c", "d"]


async def test_tokens_refill_at_the_configured_rate(clock: ManualClock) -> None:
    limiter = RateLimiter(PER_MINUTE, burst=1, clock=clock)
    rec = Recorder(limiter)
    for i in range(5):
        rec.start(str(i))
    await settle()
    assert len(rec.order) == 1
    for expected in range(2, 6):
        await clock.advance(UNIT / 2)
        await settle()
        assert len(rec.order) == expected - 1
        await clock.advance(UNIT / 2)
        await settle()
        assert len(rec.order) == expected


async def test_the_bucket_never_holds_more_than_its_burst(clock: ManualClock) -> None:
    limiter = RateLimiter(PER_MINUTE, burst=2, clock=clock)
    await clock.advance(100 * UNIT)
    rec = Recorder(limiter)
    for name in "abc":
        rec.start(name)
    await settle()
    assert rec.order == ["a", "b"]


async def test_over_any_stretch_grants_stay_within_burst_plus_rate(clock: ManualClock) -> None:
    limiter = RateLimiter(600, burst=5, clock=clock)  # 10 a second
    rec = Recorder(limiter)
    for i in range(200):
        rec.start(str(i))
    await settle()
    for step in range(1, 41):
        await clock.advance(0.25)
        await settle()
        elapsed = step * 0.25
        assert len(rec.order) <= 5 + 10 * elapsed + 1e-6
        assert len(rec.order) >= 5 + 10 * elapsed - 1  # and the budget is actually used
    for task in rec.tasks:
        task.cancel()
    await settle()


async def test_the_default_burst_keeps_a_minute_under_the_platform_limit(
    clock: ManualClock,
) -> None:
    budget = 300 - 30
    assert budget + default_burst(budget) < 300
    assert default_burst(1) == 1
    limiter = RateLimiter(budget, clock=clock)
    await drain(limiter, default_burst(budget))  # served at once: the default burst
    late = asyncio.ensure_future(limiter.acquire())
    await settle()
    assert not late.done(), "no more than the default burst without time passing"
    late.cancel()


@pytest.mark.parametrize(("rate", "burst"), [(0, None), (-5, None), (60, 0)])
def test_nonsense_limits_are_refused(rate: float, burst: int | None) -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate, burst=burst, clock=ManualClock())


# --- fairness and priority --------------------------------------------------------------------


async def test_callers_of_one_priority_are_served_first_come_first_served(
    clock: ManualClock,
) -> None:
    limiter = RateLimiter(PER_MINUTE, burst=1, clock=clock)
    await drain(limiter)
    rec = Recorder(limiter)
    for name in ["first", "second", "third", "fourth"]:
        rec.start(name)
        await settle()
    await clock.advance(4 * UNIT)
    await settle()
    assert rec.order == ["first", "second", "third", "fourth"]


async def test_a_waiting_background_caller_yields_to_a_live_one_that_came_later(
    clock: ManualClock,
) -> None:
    limiter = RateLimiter(PER_MINUTE, burst=1, clock=clock)
    await drain(limiter)
    rec = Recorder(limiter)
    rec.start("sweep-1", Priority.BACKGROUND)
    rec.start("sweep-2", Priority.BACKGROUND)
    await settle()
    rec.start("apply-1", Priority.LIVE)
    rec.start("apply-2", Priority.LIVE)
    await settle()
    await clock.advance(4 * UNIT)
    await settle()
    assert rec.order == ["apply-1", "apply-2", "sweep-1", "sweep-2"]


async def test_background_work_uses_tokens_nobody_live_wants(clock: ManualClock) -> None:
    limiter = RateLimiter(PER_MINUTE, burst=2, clock=clock)
    rec = Recorder(limiter)
    rec.start("sweep", Priority.BACKGROUND)
    await settle()
    assert rec.order == ["sweep"]


async def test_a_background_caller_cannot_jump_ahead_of_waiting_live_callers(
    clock: ManualClock,
) -> None:
    limiter = RateLimiter(PER_MINUTE, burst=1, clock=clock)
    await drain(limiter)
    rec = Recorder(limiter)
    rec.start("apply", Priority.LIVE)
    await settle()
    await clock.advance(UNIT / 2)
    rec.start("sweep", Priority.BACKGROUND)
    await settle()
    assert limiter.waiting(Priority.LIVE) == 1
    assert limiter.waiting(Priority.BACKGROUND) == 1
    await clock.advance(UNIT / 2)
    await settle()
    assert rec.order == ["apply"]
    await clock.advance(UNIT)
    await settle()
    assert rec.order == ["apply", "sweep"]


# --- pauses after a 429 -----------------------------------------------------------------------


async def test_a_pause_stops_every_caller_even_with_tokens_left(clock: ManualClock) -> None:
    limiter = RateLimiter(PER_MINUTE, burst=10, clock=clock)
    limiter.pause_for(5 * UNIT)
    assert limiter.paused_remaining() == pytest.approx(5 * UNIT)
    rec = Recorder(limiter)
    rec.start("live", Priority.LIVE)
    rec.start("background", Priority.BACKGROUND)
    await settle()
    await clock.advance(4.9 * UNIT)
    await settle()
    assert rec.order == []
    assert limiter.paused_remaining() == pytest.approx(0.1 * UNIT)
    await clock.advance(0.1 * UNIT)
    await settle()
    assert rec.order == ["live"]  # one token after a pause: no burst into a fresh 429
    await clock.advance(UNIT)
    await settle()
    assert rec.order == ["live", "background"]
    assert limiter.paused_remaining() == 0.0


async def test_the_longest_pause_wins(clock: ManualClock) -> None:
    limiter = RateLimiter(PER_MINUTE, burst=10, clock=clock)
    limiter.pause_for(10 * UNIT)
    limiter.pause_for(3 * UNIT)
    assert limiter.paused_remaining() == pytest.approx(10 * UNIT)
    limiter.pause_until(clock.monotonic() + 20 * UNIT)
    assert limiter.paused_remaining() == pytest.approx(20 * UNIT)
    assert limiter.stats().pauses == 2


async def test_a_pause_in_the_past_changes_nothing(clock: ManualClock) -> None:
    limiter = RateLimiter(PER_MINUTE, burst=3, clock=clock)
    await clock.advance(10 * UNIT)
    limiter.pause_until(5 * UNIT)
    limiter.pause_for(0)
    assert limiter.paused_remaining() == 0.0
    rec = Recorder(limiter)
    for name in "abc":
        rec.start(name)
    await settle()
    assert rec.order == ["a", "b", "c"]


async def test_a_pause_that_starts_while_callers_wait_holds_them(clock: ManualClock) -> None:
    limiter = RateLimiter(PER_MINUTE, burst=1, clock=clock)
    await drain(limiter)
    rec = Recorder(limiter)
    rec.start("a")
    await settle()
    await clock.advance(UNIT / 2)
    limiter.pause_for(10 * UNIT)  # another caller just got a 429
    await clock.advance(UNIT)
    await settle()
    assert rec.order == []
    await clock.advance(9.5 * UNIT)
    await settle()
    assert rec.order == ["a"]


async def test_a_pause_after_the_bucket_refilled_still_allows_no_burst(clock: ManualClock) -> None:
    limiter = RateLimiter(PER_MINUTE, burst=5, clock=clock)
    limiter.pause_for(2 * UNIT)
    await clock.advance(2 * UNIT)
    rec = Recorder(limiter)
    for name in "abc":
        rec.start(name)
    await settle()
    assert rec.order == ["a"]
    await clock.advance(2 * UNIT)
    await settle()
    assert rec.order == ["a", "b", "c"]


# --- cancellation and bookkeeping -------------------------------------------------------------


async def test_a_cancelled_caller_gives_up_its_place(clock: ManualClock) -> None:
    limiter = RateLimiter(PER_MINUTE, burst=1, clock=clock)
    await drain(limiter)
    rec = Recorder(limiter)
    quitter = rec.start("quitter")
    rec.start("patient")
    await settle()
    quitter.cancel()
    await settle()
    assert limiter.waiting() == 1
    await clock.advance(UNIT)
    await settle()
    assert rec.order == ["patient"]
    assert quitter.cancelled()


async def test_when_every_waiter_gives_up_no_task_is_left_behind(clock: ManualClock) -> None:
    limiter = RateLimiter(PER_MINUTE, burst=1, clock=clock)
    await drain(limiter)
    rec = Recorder(limiter)
    rec.start("a")
    rec.start("b", Priority.BACKGROUND)
    await settle()
    before = {t.get_name() for t in asyncio.all_tasks()}
    assert "ratelimit-dispatch" in before
    for task in rec.tasks:
        task.cancel()
    await settle()
    assert "ratelimit-dispatch" not in {t.get_name() for t in asyncio.all_tasks()}
    assert limiter.waiting() == 0
    # and the limiter still works afterwards
    await clock.advance(UNIT)
    await limiter.acquire()


async def test_a_caller_cancelled_just_after_its_grant_returns_the_token(
    clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    limiter = RateLimiter(PER_MINUTE, burst=1, clock=clock)
    await drain(limiter)
    task = asyncio.get_running_loop().create_task(limiter.acquire())
    await settle()
    grant = limiter._grant

    def grant_then_cancel(waiter: asyncio.Future[None]) -> None:
        grant(waiter)
        task.cancel()  # the caller is cancelled before it could resume with its token

    monkeypatch.setattr(limiter, "_grant", grant_then_cancel)
    await clock.advance(UNIT)
    await settle()
    assert task.cancelled()
    assert limiter.stats().acquired == 1  # only the drain
    rec = Recorder(limiter)
    rec.start("next")
    await settle()
    assert rec.order == ["next"]  # the returned token, without waiting


async def test_cancellation_is_re_raised_to_the_caller(clock: ManualClock) -> None:
    limiter = RateLimiter(PER_MINUTE, burst=1, clock=clock)
    await drain(limiter)
    task = asyncio.get_running_loop().create_task(limiter.acquire())
    await settle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_counters_record_grants_and_waits(clock: ManualClock) -> None:
    limiter = RateLimiter(PER_MINUTE, burst=1, clock=clock)
    await limiter.acquire()  # immediate
    rec = Recorder(limiter)
    rec.start("live")
    rec.start("sweep", Priority.BACKGROUND)
    await settle()
    assert limiter.waiting() == 2
    await clock.advance(2 * UNIT)
    await settle()
    stats = limiter.stats()
    assert stats.acquired == 3
    assert stats.waited_live == 1
    assert stats.waited_background == 1
    assert stats.wait_seconds == pytest.approx(1 * UNIT + 2 * UNIT)
    assert stats.pauses == 0
    assert limiter.waiting() == 0


async def test_many_concurrent_callers_are_all_served_once(clock: ManualClock) -> None:
    limiter = RateLimiter(PER_MINUTE * 10, burst=4, clock=clock)
    rec = Recorder(limiter)
    names = [f"c{i}" for i in range(50)]
    for i, name in enumerate(names):
        rec.start(name, Priority.LIVE if i % 3 else Priority.BACKGROUND)
    await settle()
    await clock.advance(10 * UNIT)
    await settle()
    assert sorted(rec.order) == sorted(names)
    assert all(task.done() for task in rec.tasks)


async def test_observe_caps_tokens_at_what_the_platform_says_is_left() -> None:
    clock = ManualClock()
    limiter = RateLimiter(600, burst=30, clock=clock)
    limiter.observe_window(count=97, allowed=100, reset_in=5.0)  # 2 left, 1 kept back
    await limiter.acquire()
    await limiter.acquire()
    assert limiter.stats().acquired == 2
    third = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0)
    assert not third.done(), "the platform's window had only two left"
    await clock.advance(0.2)  # the bucket refills at 10/s
    await settle()
    assert third.done()


async def test_observe_with_nothing_left_waits_for_the_window_to_reset() -> None:
    clock = ManualClock()
    limiter = RateLimiter(600, burst=30, clock=clock)
    limiter.observe_window(count=99, allowed=100, reset_in=3.0)
    assert limiter.paused_remaining() == 3.0
    waiter = asyncio.ensure_future(limiter.acquire())
    await clock.advance(2.9)
    await settle()
    assert not waiter.done()
    await clock.advance(0.2)
    await settle()
    assert waiter.done()


async def test_a_spent_window_restarts_with_a_full_bucket_but_a_429_with_one_token() -> None:
    clock = ManualClock()
    limiter = RateLimiter(600, burst=10, clock=clock)
    limiter.observe_window(count=99, allowed=100, reset_in=1.0)
    await clock.advance(1.0)
    for _ in range(10):
        await limiter.acquire()  # a fresh window: the whole burst at once
    assert limiter.stats().acquired == 10
    limiter.pause_for(1.0)  # a 429
    await clock.advance(1.0)
    await limiter.acquire()
    blocked = asyncio.ensure_future(limiter.acquire())
    await settle()
    assert not blocked.done(), "after a 429 only the retry goes at once"
    await clock.advance(0.1)
    await settle()
    assert blocked.done()


# --- the platform's fixed window -------------------------------------------------------------


async def spend_first_window(clock: ManualClock, limiter: RateLimiter, reset_in: float) -> None:
    """The first window is spent (as far as its answers say): wait for its reset."""
    limiter.observe_window(count=9, allowed=10, reset_in=reset_in)
    await clock.advance(reset_in)


async def test_the_tightest_reset_bound_of_a_window_wins() -> None:
    clock = ManualClock()
    limiter = RateLimiter(600, burst=30, clock=clock)
    limiter.observe_window(count=1, allowed=10, reset_in=3.0)  # the reset is within 3 s of t=0
    await clock.advance(0.7)
    limiter.observe_window(count=9, allowed=10, reset_in=3.0)  # and within 3 s of t=0.7
    assert limiter.paused_remaining() == pytest.approx(2.3), "waits for the earlier bound"


async def test_after_a_reset_the_whole_share_of_the_window_is_used() -> None:
    clock = ManualClock()
    limiter = RateLimiter(600, burst=100, clock=clock)
    await spend_first_window(clock, limiter, 1.0)
    for _ in range(10):
        await limiter.acquire()  # all ten, none kept back: the limiter counts them itself
    limiter.observe_window(count=3, allowed=10, reset_in=5.0)  # answers still coming in
    blocked = asyncio.ensure_future(limiter.acquire())
    await settle()
    assert limiter.stats().acquired == 10 and not blocked.done(), "an eleventh would be a 429"
    await clock.advance(5.0)
    await settle()
    assert blocked.done(), "the next window starts at its reset"


async def test_the_window_share_holds_even_before_any_answer_arrives() -> None:
    clock = ManualClock()
    limiter = RateLimiter(600, burst=100, clock=clock)
    await spend_first_window(clock, limiter, 1.0)
    for _ in range(4):
        await limiter.acquire()
    limiter.observe_window(count=1, allowed=5, reset_in=2.0)
    await limiter.acquire()  # the fifth spends the window: no answer needed to know it
    blocked = asyncio.ensure_future(limiter.acquire())
    await settle()
    assert not blocked.done()


async def test_a_late_answer_from_the_spent_window_does_not_stop_the_new_one() -> None:
    clock = ManualClock()
    limiter = RateLimiter(600, burst=100, clock=clock)
    await spend_first_window(clock, limiter, 1.0)
    await limiter.acquire()
    limiter.observe_window(count=10, allowed=10, reset_in=1.0)  # counted before the reset
    assert limiter.paused_remaining() == 0.0
    await limiter.acquire()
    assert limiter.stats().acquired == 2


async def test_a_share_below_one_leaves_the_rest_of_the_window_free() -> None:
    clock = ManualClock()
    limiter = RateLimiter(600, burst=100, clock=clock)
    await spend_first_window(clock, limiter, 1.0)
    await limiter.acquire()
    limiter.observe_window(count=1, allowed=10, reset_in=5.0, share=0.5)
    for _ in range(4):
        await limiter.acquire()
    blocked = asyncio.ensure_future(limiter.acquire())
    await settle()
    assert limiter.stats().acquired == 5 and not blocked.done()


async def test_requests_still_on_their_way_count_against_the_first_window() -> None:
    """The platform counts a request when it arrives: four granted and one answered leave three
    that may still land in this window, so they are spent already."""
    clock = ManualClock()
    limiter = RateLimiter(600, burst=100, clock=clock)
    for _ in range(4):
        await limiter.acquire()
    limiter.observe_window(count=1, allowed=10, reset_in=5.0)  # 10 - 1 counted - 3 on the way - 1
    for _ in range(5):
        await limiter.acquire()
    blocked = asyncio.ensure_future(limiter.acquire())
    await settle()
    assert limiter.stats().acquired == 9 and not blocked.done()


async def test_requests_on_their_way_at_a_reset_count_in_the_new_window() -> None:
    """Granted before the reset, answered after it: the platform may count them in the new window."""
    clock = ManualClock()
    limiter = RateLimiter(600, burst=100, clock=clock)
    await spend_first_window(clock, limiter, 1.0)
    for _ in range(3):
        await limiter.acquire()
    limiter.observe_window(count=1, allowed=10, reset_in=1.0)  # two still on their way
    await clock.advance(1.0)
    await limiter.acquire()  # the first of the new window
    limiter.observe_window(count=1, allowed=10, reset_in=1.0)
    for _ in range(7):
        await limiter.acquire()
    blocked = asyncio.ensure_future(limiter.acquire())
    await settle()
    assert not blocked.done(), "two carried over, eight of ours: the window's ten"
