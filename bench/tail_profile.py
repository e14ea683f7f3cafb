"""``python -m bench.tail_profile [--runs N]``: what lands on the event loop during traffic.

Runs wrapupd's latency scenario (the quick plan's ~50 ACW/s, grace 0) ``--runs`` times in this
process and records, beside each run's p99: every garbage collection (generation, milliseconds,
from ``gc.callbacks``) and every event-loop callback that ran longer than 2 ms (timed around
``asyncio.Handle._run``, named by its task's coroutine). Run it under ``py-spy record`` for the
flame graph.
Prints one JSON object. A measurement, never an assertion (STYLE.md).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
from typing import Any

from bench.__main__ import PLANS, latency_scenario
from bench.contenders.wrapupd_runner import WrapupdContender
from bench.harness import Scenario, run_scenario


class Collections:
    """Every GC pass while installed: (generation, ms)."""

    def __init__(self) -> None:
        self.passes: list[tuple[int, float]] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.passes.append((info["generation"], (time.perf_counter() - self._started) * 1000))

    def summary(self) -> dict[str, Any]:
        by_gen: dict[str, Any] = {}
        for gen in (0, 1, 2):
            ms = sorted(m for g, m in self.passes if g == gen)
            by_gen[str(gen)] = {
                "count": len(ms),
                "max_ms": round(ms[-1], 2) if ms else 0,
                "total_ms": round(sum(ms), 1),
            }
        return by_gen


class SlowCallbacks:
    """Times every event-loop callback; keeps the ones over ``limit_ms`` with what they ran."""

    def __init__(self, limit_ms: float = 2.0) -> None:
        self.limit_ms = limit_ms
        self.seen: list[tuple[float, str]] = []
        self._original = asyncio.events.Handle._run

    def __enter__(self) -> SlowCallbacks:
        original, seen, limit = self._original, self.seen, self.limit_ms / 1000

        def timed(handle: asyncio.events.Handle) -> None:
            started = time.perf_counter()
            original(handle)
            took = time.perf_counter() - started
            if took > limit:
                seen.append((took * 1000, _name(handle)))

        asyncio.events.Handle._run = timed  # type: ignore[method-assign]
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.events.Handle._run = self._original  # type: ignore[method-assign]

    def summary(self) -> dict[str, Any]:
        by_name: dict[str, list[float]] = {}
        for ms, name in self.seen:
            by_name.setdefault(name, []).append(ms)
        top = sorted(by_name.items(), key=lambda kv: -sum(kv[1]))[:8]
        return {
            "count": len(self.seen),
            "top": [{"callback": n, "count": len(v), "max_ms": round(max(v), 1)} for n, v in top],
        }


def _name(handle: asyncio.events.Handle) -> str:
    callback = getattr(handle, "_callback", None)
    task = getattr(callback, "__self__", None)
    coro = getattr(task, "get_coro", lambda: None)()
    if coro is not None:
        return getattr(coro, "__qualname__", repr(coro))
    return getattr(callback, "__qualname__", repr(callback))[:120]


async def one_run(scenario: Scenario) -> dict[str, Any]:
    collections = Collections()
    gc.callbacks.append(collections)
    try:
        with SlowCallbacks() as slow:
            run = (await run_scenario(WrapupdContender(), scenario)).as_json()
    finally:
        gc.callbacks.remove(collections)
    lat = run["latency_ms"]
    return {
        "p50": lat["p50"],
        "p99": lat["p99"],
        "max": lat["max"],
        "count": lat["count"],
        "gc": collections.summary(),
        "slow_callbacks": slow.summary(),
    }


async def main_async(runs: int) -> list[dict[str, Any]]:
    base = latency_scenario(PLANS["quick"])
    scenario = Scenario(**{**base.__dict__, "settle_s": 15})
    return [await one_run(scenario) for _ in range(runs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args.runs))))


if __name__ == "__main__":
    main()
