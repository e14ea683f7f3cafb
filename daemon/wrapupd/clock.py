"""The one seam for time: every wait, timeout and timestamp of the daemon goes through a Clock.

Production uses :class:`SystemClock`; tests inject :class:`ManualClock`, which moves only when the
test says so, so reconnects, retries and grace periods play out deterministically without sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    """Where the daemon reads time and waits."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""

    def now(self) -> datetime:
        """Wall-clock time, timezone-aware UTC."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (or return at once when ``seconds <= 0``)."""

    async def wait_for(self, awaitable: Awaitable[T], seconds: float) -> T:
        """``awaitable``'s result, or TimeoutError (the awaitable cancelled) after ``seconds``."""


class SystemClock:
    """Real time: the event loop's timers and the system's clocks."""

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def now(self) -> datetime:
        """The system's wall clock, in UTC."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """The event loop's own sleep."""
        await asyncio.sleep(max(0.0, seconds))

    async def wait_for(self, awaitable: Awaitable[T], seconds: float) -> T:
        """``awaitable`` under an ``asyncio.timeout`` of ``seconds``."""
        # asyncio.timeout, not asyncio.wait_for: on 3.11 wait_for swallows a cancellation that
        # arrives as the awaitable completes, and a part that ignores its cancellation hangs the
        # TaskGroup that is shutting the daemon down.
        async with asyncio.timeout(max(0.0, seconds)):
            return await awaitable


class ManualClock:
    """A clock that moves only when a test calls :meth:`advance`; sleepers wake in due order."""

    def __init__(self, start: datetime | None = None) -> None:
        self._wall0 = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._t = 0.0
        self._seq = itertools.count()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []

    def monotonic(self) -> float:
        """Seconds the test has moved this clock."""
        return self._t

    def now(self) -> datetime:
        """The start time plus what the test has moved this clock."""
        return self._wall0 + timedelta(seconds=self._t)

    async def sleep(self, seconds: float) -> None:
        """Return once the test has moved the clock ``seconds`` further."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._t + seconds, next(self._seq), fut))
        await fut

    async def wait_for(self, awaitable: Awaitable[T], seconds: float) -> T:
        """``awaitable``'s result, or TimeoutError once the test moved the clock ``seconds``."""
        task = asyncio.ensure_future(awaitable)
        timer = asyncio.ensure_future(self.sleep(seconds))
        try:
            await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if task.cancelled():
            raise TimeoutError
        return task.result()

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking every sleeper whose deadline passes, in order."""
        target = self._t + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            when, _, fut = heapq.heappop(self._sleepers)
            self._t = max(self._t, when)
            if not fut.done():
                fut.set_result(None)
            for _ in range(5):
                await asyncio.sleep(0)
        self._t = target
        await asyncio.sleep(0)
