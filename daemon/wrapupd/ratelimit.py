"""One token bucket for the platform calls of the appliers, the reconciler and the code cache, plus
a pause after a 429.

Genesys counts requests per client-credentials token (300 a minute by default), so these callers
share one budget. The subscriber's channel calls (create, subscribe, renew: a few an hour) take no
token, though the ``inin-ratelimit-*`` headers of their answers still tell the bucket what is left
of the platform's window (:meth:`RateLimiter.observe`). Live work (applying a code before a
time-boxed ACW runs out) must never queue behind a reconciliation sweep, hence two priorities: a
BACKGROUND caller is served only when no LIVE caller waits. Within a priority, callers are served
first come, first served.

After a 429 the platform wants silence for ``Retry-After`` seconds: :meth:`RateLimiter.pause_for`
stops every caller, the longest pause wins, and the bucket restarts with a single token so the
daemon does not answer a 429 with a burst.

Time comes only from the injected :class:`~wrapupd.clock.Clock`; tests drive it with
:class:`~wrapupd.clock.ManualClock` and never really sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections import deque
from dataclasses import dataclass

from wrapupd.clock import Clock

__all__ = ["Priority", "RateLimitStats", "RateLimiter", "default_burst"]

# Float arithmetic can leave a refilled bucket at 0.9999999 tokens; that is one token.
_EPSILON = 1e-9
_MINUTE = 60.0
# A request with no answer after this long (it failed without one) is no longer on its way.
_ON_THE_WAY_AT_MOST = 120.0


class Priority(enum.IntEnum):
    """Who is asking. Higher values are served first."""

    BACKGROUND = 0  # reconciliation sweeps, code refreshes: can wait
    LIVE = 1  # applying codes, re-checking a participant, keeping the channel alive


_HIGHEST_FIRST = tuple(sorted(Priority, reverse=True))


@dataclass(frozen=True, slots=True)
class RateLimitStats:
    """Counters for metrics: how often callers had to wait, and for how long in total."""

    acquired: int
    waited_live: int
    waited_background: int
    wait_seconds: float
    pauses: int


def default_burst(rate_per_minute: float) -> int:
    """Three seconds' worth of tokens (at least one).

    Small on purpose: the platform counts per minute, and a bucket allows up to ``burst + rate``
    calls in any minute. With the default budget of 270 a minute that is 283, still under the 300
    the platform allows.
    """
    return max(1, int(rate_per_minute / 20))


class RateLimiter:
    """A token bucket shared by every caller, with priorities and a global pause."""

    def __init__(self, rate_per_minute: float, *, burst: int | None = None, clock: Clock) -> None:
        if not rate_per_minute > 0:
            raise ValueError(f"rate_per_minute must be > 0, got {rate_per_minute!r}")
        self._rate = rate_per_minute / 60.0  # tokens per second
        self._burst = default_burst(rate_per_minute) if burst is None else burst
        if self._burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst!r}")
        self._clock = clock
        self._tokens = float(self._burst)
        self._refilled_at = clock.monotonic()
        self._paused_until = float("-inf")
        self._queues: dict[Priority, deque[asyncio.Future[None]]] = {p: deque() for p in Priority}
        self._dispatcher: asyncio.Task[None] | None = None
        self._acquired = 0
        self._waited = {p: 0 for p in Priority}
        self._wait_seconds = 0.0
        self._pauses = 0
        self._taken_at: deque[float] = deque()  # monotonic times of the last minute's tokens
        # The platform's fixed window as its headers tell it: the earliest reset any response
        # promised (each says "within N whole seconds", so the smallest bound is the tightest),
        # and our own grants in it, known once a reset has passed (None in the first window).
        self._window_ends_by = float("inf")
        self._window_grants: int | None = None
        self._window_allowance = float("inf")
        # Grants whose answer has not come back: the platform counts a request when it arrives,
        # so each may still land in the current window (or, near a reset, in the next).
        self._on_the_way: deque[float] = deque()

    # --- public API ------------------------------------------------------------------------

    async def acquire(self, priority: Priority = Priority.LIVE) -> None:
        """Take one token, waiting (fairly, by priority) when there is none or a pause is on."""
        if self._may_take_now(priority):
            self._take()
            return
        await self._wait_in_line(priority)

    @property
    def rate_per_minute(self) -> float:
        """The refill rate in force (a reload or the replicas' share may have changed it)."""
        return self._rate * 60.0

    def set_rate(self, rate_per_minute: float) -> None:
        """Refill at a new rate from now on (replicas re-sharing the deployment's budget)."""
        if not rate_per_minute > 0:
            raise ValueError(f"rate_per_minute must be > 0, got {rate_per_minute!r}")
        self._refill()
        self._rate = rate_per_minute / 60.0

    def try_acquire(self, priority: Priority = Priority.LIVE) -> bool:
        """Take one token only if it is free now; False (nothing taken) when it would mean a wait."""
        if self._may_take_now(priority):
            self._take()
            return True
        return False

    def pause_until(self, monotonic_deadline: float, *, restart_tokens: float = 1.0) -> None:
        """Stop every caller until ``monotonic_deadline``; a later pause already on is kept.

        After a 429 the bucket restarts with one token (the retry) and refills from there: no burst
        into a platform that just refused us."""
        if monotonic_deadline <= max(self._paused_until, self._clock.monotonic()):
            return
        self._paused_until = monotonic_deadline
        self._pauses += 1
        self._tokens = min(float(self._burst), restart_tokens)
        self._refilled_at = monotonic_deadline

    def pause_for(self, seconds: float) -> None:
        """Stop every caller for ``seconds`` from now (a 429's ``Retry-After``)."""
        self.pause_until(self._clock.monotonic() + seconds)

    def observe_window(
        self, count: int, allowed: int, reset_in: float, *, share: float = 1.0
    ) -> None:
        """A response's ``inin-ratelimit-count/-allowed/-reset``: keep to ``share`` of the
        platform's current window, and when our part is spent wait exactly for its reset.

        Once a reset has passed, the limiter counts its own grants in the window, requests still
        on their way included, so it can spend the whole share; in the first window it cannot tell
        which of its requests the platform has counted: those still on their way count as spent,
        and it keeps one back for a call of the daemon's that took no token."""
        on_the_way = self._answered()
        if self._window_grants is not None and count > self._window_grants:
            return  # counted in the window before (an answer that arrived after the reset)
        self._window_ends_by = min(self._window_ends_by, self._clock.monotonic() + reset_in)
        ours = self._window_allowance = allowed * share
        if self._window_grants is None:
            self._cap(ours - count - on_the_way - 1)
        else:
            self._cap(ours - self._window_grants)

    def _answered(self) -> int:
        """One request came back: how many of ours are still on their way."""
        if self._on_the_way:
            self._on_the_way.popleft()
        lost_before = self._clock.monotonic() - _ON_THE_WAY_AT_MOST
        while self._on_the_way and self._on_the_way[0] < lost_before:
            self._on_the_way.popleft()
        return len(self._on_the_way)

    def _cap(self, remaining: float) -> None:
        """Never hold more tokens than the window has left; nothing left: wait for its reset
        and restart with a full bucket (a fresh window follows, nothing was refused)."""
        if remaining < 1:
            self.pause_until(self._window_ends_by, restart_tokens=self._burst)
            return
        self._refill()
        self._tokens = min(self._tokens, float(remaining))

    def paused_remaining(self) -> float:
        """Seconds left in the current pause (0.0 when not paused)."""
        return max(0.0, self._paused_until - self._clock.monotonic())

    def waiting(self, priority: Priority | None = None) -> int:
        """How many callers are queued (of one priority, or in all)."""
        queues = self._queues.values() if priority is None else (self._queues[priority],)
        return sum(1 for q in queues for fut in q if not fut.done())

    def used_last_minute(self) -> int:
        """Tokens handed out in the last 60 s (the status page's "budget in use")."""
        self._forget_before(self._clock.monotonic() - _MINUTE)
        return len(self._taken_at)

    def _forget_before(self, moment: float) -> None:
        while self._taken_at and self._taken_at[0] < moment:
            self._taken_at.popleft()

    def stats(self) -> RateLimitStats:
        """The counters so far (exported as ``wrapupd_ratelimit_*``)."""
        return RateLimitStats(
            acquired=self._acquired,
            waited_live=self._waited[Priority.LIVE],
            waited_background=self._waited[Priority.BACKGROUND],
            wait_seconds=self._wait_seconds,
            pauses=self._pauses,
        )

    # --- the bucket ------------------------------------------------------------------------

    def _refill(self) -> None:
        now = self._clock.monotonic()
        if now > self._refilled_at:
            self._tokens = min(
                float(self._burst), self._tokens + (now - self._refilled_at) * self._rate
            )
            self._refilled_at = now

    def _may_take_now(self, priority: Priority) -> bool:
        """A token is free and nobody of equal or higher priority is already in line."""
        if self.paused_remaining() > 0 or self._anyone_waiting_at_or_above(priority):
            return False
        self._refill()
        return self._tokens >= 1.0 - _EPSILON

    def _take(self) -> None:
        self._tokens = max(0.0, self._tokens - 1.0)
        self._acquired += 1
        now = self._clock.monotonic()
        self._taken_at.append(now)
        self._forget_before(now - _MINUTE)
        if now >= self._window_ends_by:  # the platform's window has reset; what is on its way
            self._window_ends_by = float("inf")  # may land in the new one
            self._window_grants = len(self._on_the_way)
        self._on_the_way.append(now)
        if self._window_grants is not None:
            self._window_grants += 1
            spent = self._window_grants >= self._window_allowance
            if spent and self._window_ends_by < float("inf"):  # known before any answer says so
                self.pause_until(self._window_ends_by, restart_tokens=self._burst)

    def _anyone_waiting_at_or_above(self, priority: Priority) -> bool:
        return any(self._queues[p] for p in Priority if p >= priority)

    def _seconds_until_token(self) -> float:
        """How long the head of the line must wait: the pause, or the refill of one token."""
        pause = self.paused_remaining()
        if pause > 0:
            return pause
        self._refill()
        return max(0.0, (1.0 - self._tokens) / self._rate) if self._tokens < 1.0 - _EPSILON else 0.0

    # --- the line --------------------------------------------------------------------------

    async def _wait_in_line(self, priority: Priority) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queues[priority].append(waiter)
        self._waited[priority] += 1
        started = self._clock.monotonic()
        self._ensure_dispatcher()
        try:
            await waiter
        except asyncio.CancelledError:
            self._leave_line(priority, waiter)
            raise
        finally:
            self._wait_seconds += self._clock.monotonic() - started

    def _leave_line(self, priority: Priority, waiter: asyncio.Future[None]) -> None:
        """A cancelled caller gives up its place, or returns the token it was just handed."""
        if waiter.done() and not waiter.cancelled():
            self._tokens = min(float(self._burst), self._tokens + 1.0)
            self._acquired -= 1
            if self._taken_at:
                self._taken_at.pop()
            if self._window_grants:
                self._window_grants -= 1
            if self._on_the_way:
                self._on_the_way.pop()
        with contextlib.suppress(ValueError):
            self._queues[priority].remove(waiter)
        if not self._anyone_waiting_at_or_above(Priority.BACKGROUND) and self._dispatcher:
            self._dispatcher.cancel()  # nobody left: do not leave a task sleeping on the clock
            self._dispatcher = None

    def _ensure_dispatcher(self) -> None:
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.get_running_loop().create_task(
                self._dispatch(), name="ratelimit-dispatch"
            )

    def _next_waiter(self) -> asyncio.Future[None] | None:
        """The head of the highest-priority non-empty line, dropping callers who gave up."""
        for priority in _HIGHEST_FIRST:
            line = self._queues[priority]
            while line and line[0].done():
                line.popleft()
            if line:
                return line[0]
        return None

    async def _dispatch(self) -> None:
        """Hand out tokens to waiters, one at a time, in priority then arrival order.

        Re-evaluates after every sleep, so a pause that starts (or a LIVE caller who arrives) while
        it sleeps is honoured.
        """
        while (waiter := self._next_waiter()) is not None:
            delay = self._seconds_until_token()
            if delay > 0:
                await self._clock.sleep(delay)
                continue
            self._grant(waiter)
        self._dispatcher = None

    def _grant(self, waiter: asyncio.Future[None]) -> None:
        for line in self._queues.values():
            if line and line[0] is waiter:
                line.popleft()
                break
        self._take()
        waiter.set_result(None)
