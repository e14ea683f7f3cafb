"""The clock seam: timeouts that honour cancellation, on the system clock and the manual one."""

from __future__ import annotations

import asyncio

import pytest

from wrapupd.clock import ManualClock, SystemClock


async def settle() -> None:
    """Let every task that is ready run (no time passes)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_a_cancellation_that_meets_a_result_is_not_swallowed() -> None:
    """asyncio.wait_for on 3.11 returns the result and drops the cancel; a part doing that hangs
    the TaskGroup that is stopping the daemon."""
    answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    waiting = asyncio.create_task(SystemClock().wait_for(answer, 10))
    await asyncio.sleep(0)
    answer.set_result("frame")
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_the_system_clock_times_out() -> None:
    with pytest.raises(TimeoutError):
        await SystemClock().wait_for(asyncio.Event().wait(), 0)


async def test_the_manual_clock_times_out_only_when_moved() -> None:
    clock = ManualClock()
    never = asyncio.Event()
    waiting = asyncio.create_task(clock.wait_for(never.wait(), 5))
    await settle()
    await clock.advance(4.9)
    assert not waiting.done()
    await clock.advance(0.1)
    with pytest.raises(TimeoutError):
        await waiting


async def test_the_manual_clock_returns_what_arrives_in_time() -> None:
    clock = ManualClock()
    arrived = asyncio.Event()
    waiting = asyncio.create_task(clock.wait_for(arrived.wait(), 5))
    await settle()
    await clock.advance(1)
    arrived.set()
    assert await waiting is True


async def test_a_cancelled_manual_wait_cancels_what_it_waited_on() -> None:
    clock = ManualClock()
    inner = asyncio.ensure_future(asyncio.Event().wait())
    waiting = asyncio.create_task(clock.wait_for(inner, 5))
    await settle()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert inner.cancelled()
