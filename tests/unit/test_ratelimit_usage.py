"""The rate limiter's "requests in the last minute", which the status page shows as budget in use."""

from __future__ import annotations

import asyncio

from wrapupd.clock import ManualClock
from wrapupd.ratelimit import RateLimiter


async def test_used_last_minute_counts_the_tokens_of_the_last_sixty_seconds() -> None:
    clock = ManualClock()
    limiter = RateLimiter(600, burst=5, clock=clock)
    for _ in range(3):
        await limiter.acquire()
    assert limiter.used_last_minute() == 3
    await clock.advance(30)
    await limiter.acquire()
    assert limiter.used_last_minute() == 4
    await clock.advance(30.5)  # the first three are now older than a minute
    assert limiter.used_last_minute() == 1
    await clock.advance(60)
    assert limiter.used_last_minute() == 0


async def test_a_caller_who_gives_up_its_token_is_not_counted() -> None:
    clock = ManualClock()
    limiter = RateLimiter(60, burst=1, clock=clock)
    await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert limiter.used_last_minute() == 1
