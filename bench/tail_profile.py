"""``python -m bench.tail_profile [--runs N] [--peak]``: what lands on the event loop during traffic.

Runs wrapupd's latency scenario (the quick plan's ~50 ACW/s, grace 0; ``--peak``: the peak run's
200 ACW/s) ``--runs`` times in this process and records, beside each run's p50/p99: every garbage
collection (generation, milliseconds, from ``gc.callbacks``), every event-loop callback that ran
longer than 2 ms (timed around ``asyncio.Handle._run``, named by its task's coroutine), and the two
waits of a write as the applier sees them: the awaited ``writing`` mark (intake and mark on disk)
and the PATCH call (worker thread, SDK, emulator); and where each write's latency went, for the
median write and the slowest 1 %: from the ACW start to the daemon's sighting of it (the platform
building and delivering the event, the daemon reading it), from the sighting to the request
handed to the HTTP transport (the daemon: intake, the ``writing`` mark's fsync, the hand-offs, the
SDK), and from there to the platform's stamp (sending, the platform's own work). Run it under
``py-spy record`` for the flame graph; run it on two checkouts in turn to compare them (the
machine's load is in each run).
Prints one JSON object. A measurement, never an assertion (STYLE.md).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import bench.harness
from bench.__main__ import PLANS, latency_scenario, peak_scenario
from bench.contenders.wrapupd_runner import WrapupdContender
from bench.harness import Scenario, run_scenario
from groundtruth.score import percentile, timestamp
from wrapupd.applier import Applier
from wrapupd.detector import NeedsDefault
from wrapupd.genesys.client import GenesysClient
from wrapupd.genesys.http import PinnedHttpClient
from wrapupd.ledger import Ledger


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


@contextmanager
def timed(owner: type, method: str) -> Iterator[list[float]]:
    """Milliseconds of every awaited call of ``owner.method`` while installed."""
    original: Callable[..., Awaitable[Any]] = getattr(owner, method)
    took: list[float] = []

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            took.append((time.perf_counter() - started) * 1000)

    setattr(owner, method, wrapper)
    try:
        yield took
    finally:
        setattr(owner, method, original)


class Stages:
    """Wall-clock moments of each participant's write, keyed by (conversation, participant): first
    sighting in ACW without a code, the ``writing`` mark on disk, the request handed to the HTTP
    transport; joined with the emulator's ground truth (ACW start, code stamped) at the end."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], dict[str, float]] = {}
        self.truth: list[dict[str, Any]] = []

    def note(self, key: tuple[str, str], moment: str) -> None:
        self.seen.setdefault(key, {}).setdefault(moment, time.time())

    @contextmanager
    def installed(self) -> Iterator[Stages]:
        submit, mark = Applier.submit, Ledger.mark_writing
        request, figures = PinnedHttpClient.request, bench.harness.figures
        stages = self

        def on_submit(applier: Applier, decisions: Any, **kwargs: Any) -> None:
            for d in decisions:
                if isinstance(d, NeedsDefault):
                    stages.note((d.conversation_id, d.participant_id), "sighted")
            submit(applier, decisions, **kwargs)

        async def on_mark(ledger: Ledger, key: tuple[str, str], *a: Any, **k: Any) -> bool:
            done = await mark(ledger, key, *a, **k)
            stages.note(key, "marked")
            return done

        def on_request(client: PinnedHttpClient, options: Any) -> Any:
            if options.method == "PATCH":
                path = options.url.split("?")[0].split("/")
                at = path.index("participants")
                stages.note((path[at - 1], path[at + 1]), "handed")
            return request(client, options)

        def on_figures(contender: str, scenario: str, truth: Any, *a: Any, **k: Any) -> Any:
            stages.truth = truth
            return figures(contender, scenario, truth, *a, **k)

        Applier.submit = on_submit  # type: ignore[method-assign]
        Ledger.mark_writing = on_mark  # type: ignore[method-assign]
        PinnedHttpClient.request = on_request  # type: ignore[method-assign]
        bench.harness.figures = on_figures
        try:
            yield self
        finally:
            Applier.submit = submit  # type: ignore[method-assign]
            Ledger.mark_writing = mark  # type: ignore[method-assign]
            PinnedHttpClient.request = request  # type: ignore[method-assign]
            bench.harness.figures = figures

    def split(self) -> dict[str, Any]:
        """Milliseconds per stage: each stage's median, and its mean over the slowest 1 % writes."""
        rows = sorted(filter(None, (self._row(entry) for entry in self.truth)))
        if not rows:
            return {}
        slowest = rows[-max(1, len(rows) // 100) :]
        names = (
            "total",
            "acw_to_sighting",
            "sighting_to_handed",
            "of_which_to_mark_on_disk",
            "handed_to_stamp",
        )
        return {
            "count": len(rows),
            "median": {n: _r2(percentile([r[i] for r in rows], 50)) for i, n in enumerate(names)},
            "slowest_1pct": {
                n: round(sum(r[i] for r in slowest) / len(slowest), 2) for i, n in enumerate(names)
            },
        }

    def _row(self, entry: dict[str, Any]) -> tuple[float, ...] | None:
        wrapup = entry.get("wrapup") or {}
        seen = self.seen.get((entry["conversationId"], entry["participantId"]), {})
        start, stamped = timestamp(entry.get("acwStartedAt")), timestamp(wrapup.get("at"))
        if wrapup.get("by") != "api" or start is None or stamped is None:
            return None
        if not {"sighted", "marked", "handed"} <= seen.keys():
            return None
        ms = [
            (stamped - start),
            (seen["sighted"] - start),
            (seen["handed"] - seen["sighted"]),
            (seen["marked"] - seen["sighted"]),
            (stamped - seen["handed"]),
        ]
        return tuple(v * 1000 for v in ms)


def _r2(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _waits(ms: list[float]) -> dict[str, Any]:
    p50, p99 = percentile(ms, 50), percentile(ms, 99)
    return {
        "count": len(ms),
        "p50": None if p50 is None else round(p50, 2),
        "p99": None if p99 is None else round(p99, 2),
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
        with (
            SlowCallbacks() as slow,
            timed(Ledger, "mark_writing") as marks,
            timed(GenesysClient, "patch_participant_wrapup") as patches,
            Stages().installed() as stages,
        ):
            run = (await run_scenario(WrapupdContender(), scenario)).as_json()
    finally:
        gc.callbacks.remove(collections)
    lat = run["latency_ms"]
    return {
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "p50": lat["p50"],
        "p99": lat["p99"],
        "max": lat["max"],
        "count": lat["count"],
        "writing_mark_ms": _waits(marks),
        "patch_ms": _waits(patches),
        "stages_ms": stages.split(),
        "gc": collections.summary(),
        "slow_callbacks": slow.summary(),
    }


async def main_async(runs: int, peak: bool = False) -> list[dict[str, Any]]:
    plan = PLANS["quick"]
    base = peak_scenario(plan) if peak else latency_scenario(plan)
    scenario = Scenario(**{**base.__dict__, "settle_s": 15})
    return [await one_run(scenario) for _ in range(runs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--peak", action="store_true", help="the peak run's 200 ACW/s")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args.runs, args.peak))))


if __name__ == "__main__":
    main()
