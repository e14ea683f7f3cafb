"""The shared machinery: an emulator child per run, seeded traffic, and figures from ground truth.

Every contender gets its own fresh ``python -m genesys_emulator`` child and the same traffic
specification (same seed), so one ``python -m bench`` compares them on one machine in one sitting.
Every figure comes from the emulator's side (its call log and ground truth), never from what a
contender says about itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from groundtruth.emulator import Emulator
from groundtruth.emulator import emulator_process as _emulator_process
from groundtruth.score import percentile, score, unresolved

REPO = Path(__file__).resolve().parents[1]
DEMO_ORG = REPO / "config" / "orgs" / "demo.toml"
UNLIMITED = 1_000_000_000  # an emulator rate limit nobody reaches

# The demo org's queues and the default each contender applies (Unwatched Queue is left alone).
WATCHED: tuple[tuple[str, str], ...] = (
    ("Support", "No code selected"),
    ("Sales", "No code selected"),
    ("Billing", "No code selected"),
    ("Retention", "No code selected"),
    ("Callbacks", "No answer"),
)
UNWATCHED = "Unwatched Queue"


# --- the emulator child ----------------------------------------------------------------------


def emulator_process(
    org: str | Path = DEMO_ORG, extra: Sequence[str] = ()
) -> contextlib.AbstractContextManager[Emulator]:
    """``python -m genesys_emulator --port 0`` on loopback (the same child the demo runs)."""
    return _emulator_process(org, extra)


def rate_args(limit: int, window_s: float) -> list[str]:
    return ["--rate-limit", str(limit), "--rate-window", str(window_s)]


# --- org files -------------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def write_org(data: dict[str, Any], path: Path) -> Path:
    """A minimal TOML writer for the org schema (tables and arrays of tables of scalars/lists)."""
    lines = ["[org]", *(f"{k} = {_toml_value(v)}" for k, v in data["org"].items()), ""]
    for section in ("codes", "queues", "agents", "clients"):
        for entry in data.get(section, []):
            lines.append(f"[[{section}]]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in entry.items()]
            lines.append("")
    path.write_text("\n".join(lines))
    return path


def demo_org() -> dict[str, Any]:
    with DEMO_ORG.open("rb") as f:
        return tomllib.load(f)


def timed_demo_org(path: Path, timeout_ms: int) -> Path:
    """The demo org with every watched queue time-boxed: what a user relying on the platform sets."""
    data = demo_org()
    watched = {name for name, _ in WATCHED}
    for queue in data["queues"]:
        if queue["name"] in watched:
            queue["wrapup_prompt"] = "MANDATORY_TIMEOUT"
            queue["timeout_ms"] = timeout_ms
    return write_org(data, path)


def many_queues_org(path: Path, count: int) -> Path:
    """``count`` queues ("Queue 00001" …), each with the shared default and one own code."""
    base = demo_org()
    codes = [{"id": _guid(0xC0DE, 0), "name": "No code selected"}]
    queues = []
    for i in range(1, count + 1):
        own = {"id": _guid(0xC0DE, i), "name": f"Code {i:05d}"}
        codes.append(own)
        queues.append(
            {
                "id": _guid(0xA0A0, i),
                "name": f"Queue {i:05d}",
                "wrapup_prompt": "MANDATORY",
                "codes": [codes[0]["id"], own["id"]],
            }
        )
    data = {
        "org": {**base["org"], "name": f"bench-{count}-queues"},
        "codes": codes,
        "queues": queues,
        "agents": base["agents"][:2],
        "clients": [c for c in base["clients"] if c.get("main")],
    }
    return write_org(data, path)


def _guid(prefix: int, n: int) -> str:
    return f"{prefix:08x}-0000-4000-8000-{n:012x}"


# --- traffic ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Traffic:
    """One seeded traffic specification, played identically against every contender."""

    rate_per_s: float
    duration_s: float
    queues: tuple[str, ...]
    mix: dict[str, float]
    talk_s: tuple[float, float] = (0.05, 0.3)
    agent_delay_s: tuple[float, float] = (1.0, 8.0)
    media: tuple[str, ...] = ("call", "chat", "email", "message", "callback")
    seed: int = 6
    conferences: int = 0  # extra 3-agent conferences on Support, spread over the run
    conference_size: int = 3

    def spec(self) -> dict[str, Any]:
        return {
            "rate_per_s": self.rate_per_s,
            "duration_s": self.duration_s,
            "queues": list(self.queues),
            "mix": self.mix,
            "talk_s": list(self.talk_s),
            "agent_delay_s": list(self.agent_delay_s),
            "media": list(self.media),
            "seed": self.seed,
        }


async def play(emu: Emulator, traffic: Traffic) -> None:
    """Start the generated traffic and, alongside, the conferences; returns when both are placed."""
    await emu.acontrol("POST", "/_emulator/traffic", traffic.spec())
    gap = traffic.duration_s / max(1, traffic.conferences)
    for _ in range(traffic.conferences):
        await asyncio.sleep(gap / 2)
        await emu.acontrol(
            "POST",
            "/_emulator/conversations",
            {
                "queue": "Support",
                "conference": traffic.conference_size,
                "outcome": "nothing",
                "talk_s": 0.2,
            },
        )
        await asyncio.sleep(gap / 2)


# --- contenders ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    """What a contender is told: the watched queues, their defaults and the known budget."""

    watched: tuple[tuple[str, str], ...] = WATCHED
    budget_per_minute: float = 270.0


class Contender(Protocol):
    name: str

    async def start(self, emu: Emulator, setup: Setup) -> None: ...
    async def stop(self) -> None: ...


# --- figures from ground truth ---------------------------------------------------------------


def call_counts(calls: list[dict[str, Any]]) -> Counter[tuple[str, str, int]]:
    return Counter({(c["method"], c["path"], int(c["status"])): int(c["count"]) for c in calls})


@dataclass
class RunFigures:
    """Everything one contender's run produced, ready for the JSON file."""

    contender: str
    scenario: str
    participants: int = 0
    needing_default: int = 0
    applied: int = 0
    agent_coded: int = 0
    skipped: int = 0
    timeout_stamped: int = 0
    missed: int = 0
    late: int = 0
    doubled: int = 0
    overwritten: int = 0
    stray: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    calls_by_endpoint: dict[str, int] = field(default_factory=dict)
    calls_total: int = 0
    calls_during_traffic: int = 0
    rate_limited: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        lat = self.latencies_ms
        out = {k: v for k, v in self.__dict__.items() if k != "latencies_ms"}
        out["latency_ms"] = {
            "count": len(lat),
            "p50": _r(percentile(lat, 50)),
            "p99": _r(percentile(lat, 99)),
            "max": _r(max(lat) if lat else None),
            "samples": [round(v, 1) for v in lat],
        }
        out["calls_per_applied"] = _r(self.calls_total / self.applied if self.applied else None, 3)
        out["calls_per_applied_during_traffic"] = _r(
            self.calls_during_traffic / self.applied if self.applied else None, 3
        )
        return out


def _r(v: float | None, digits: int = 1) -> float | None:
    return None if v is None else round(v, digits)


def figures(
    contender: str,
    scenario: str,
    truth: list[dict[str, Any]],
    calls_before: list[dict[str, Any]],
    calls_after: list[dict[str, Any]],
    watched_ids: set[str],
    *,
    latency_by: str = "api",
    window: tuple[float, float] | None = None,
) -> RunFigures:
    """Correctness, latency and API cost from the emulator's own records, scored by
    :func:`groundtruth.score.score` (the scorer the demo and the fault matrix use).

    ``latency_by`` is whose codes are the contender's result ("timeout" for the platform's
    built-in, whose stamps are then not late); ``window`` limits ``applied`` to codes written in
    ``[start, end]`` (throughput runs).
    """
    result = score(truth, calls_after, watched_ids, window=window, contender_code=latency_by)
    f = RunFigures(contender, scenario)
    f.participants = result.watched
    f.applied, f.agent_coded, f.skipped = result.applied, result.agent, result.skipped
    f.timeout_stamped, f.missed, f.late = result.timeout_stamped, result.missed, result.late
    f.doubled, f.overwritten, f.stray = result.doubled, result.overwritten, result.stray
    f.latencies_ms = result.latencies_ms
    f.needing_default = f.participants - f.agent_coded - f.skipped
    f.calls_by_endpoint = result.api_calls
    after, before = call_counts(calls_after), call_counts(calls_before)
    f.rate_limited = result.rate_limited
    f.calls_total = sum(after.values())
    f.calls_during_traffic = f.calls_total - sum(before.values())
    f.extra["rate_limited_during_traffic"] = f.rate_limited - sum(
        n for (_, _, status), n in before.items() if status == 429
    )
    return f


async def settle(emu: Emulator, watched_ids: set[str], *, limit_s: float) -> float:
    """Wait until no watched participant is still in ACW without a code; returns seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        truth = (await emu.acontrol("GET", "/_emulator/ground-truth"))["participants"]
        if not unresolved(truth, watched_ids):
            break
        await asyncio.sleep(0.5)
    return time.monotonic() - started


@dataclass(frozen=True)
class Scenario:
    """A run: which org and limits the emulator gets, the traffic, and how the run ends."""

    name: str
    traffic: Traffic
    setup: Setup
    emulator_args: tuple[str, ...] = ()
    org: str | Path = DEMO_ORG
    settle_s: float = 0.0  # > 0: wait for every watched ACW to be resolved (at most this long)
    window: bool = False  # True: count only codes written while the traffic ran (throughput)
    latency_by: str = "api"


async def run_scenario(contender: Contender, scenario: Scenario) -> RunFigures:
    """One contender, one fresh emulator child, one traffic specification."""
    with emulator_process(scenario.org, scenario.emulator_args) as emu:
        ids = await asyncio.to_thread(emu.queue_ids)
        watched_ids = {ids[name] for name, _ in scenario.setup.watched}
        started = time.monotonic()
        await contender.start(emu, scenario.setup)
        ready_s = time.monotonic() - started
        try:
            calls_before = (await emu.acontrol("GET", "/_emulator/calls"))["calls"]
            t0 = time.time()
            await asyncio.gather(
                play(emu, scenario.traffic), asyncio.sleep(scenario.traffic.duration_s)
            )
            t1 = time.time()
            if scenario.window:
                truth = (await emu.acontrol("GET", "/_emulator/ground-truth"))["participants"]
                calls_after = (await emu.acontrol("GET", "/_emulator/calls"))["calls"]
                settled = 0.0
            else:
                # The last conversations are still talking: let them reach ACW before settling.
                await asyncio.sleep(scenario.traffic.talk_s[1] + 0.5)
                settled = await settle(emu, watched_ids, limit_s=scenario.settle_s)
                await asyncio.sleep(0.5)  # let a write still in flight land before reading
                truth = (await emu.acontrol("GET", "/_emulator/ground-truth"))["participants"]
                calls_after = (await emu.acontrol("GET", "/_emulator/calls"))["calls"]
        finally:
            await contender.stop()
    result = figures(
        contender.name,
        scenario.name,
        truth,
        calls_before,
        calls_after,
        watched_ids,
        latency_by=scenario.latency_by,
        window=(t0, t1) if scenario.window else None,
    )
    result.extra.update(
        {
            "ready_s": round(ready_s, 2),
            "traffic_s": round(t1 - t0, 2),
            "settle_s": round(settled, 2),
            "acw_starts_per_s": round(
                len([p for p in truth if p.get("acwStartedAt")]) / max(0.001, t1 - t0), 1
            ),
        }
    )
    if scenario.window:
        _throughput(result, scenario, t1 - t0)
    return result


def _throughput(result: RunFigures, scenario: Scenario, seconds: float) -> None:
    """Applied codes per minute and the share of the budget used, over the traffic window."""
    limit, window = _emulator_limit(scenario.emulator_args)
    allowed = limit / window * seconds
    ok_calls = result.calls_during_traffic - result.extra["rate_limited_during_traffic"]
    result.extra.update(
        {
            "applied_per_minute": round(result.applied * 60 / seconds, 1),
            "budget_per_minute": round(limit / window * 60, 1),
            "budget_used": round(ok_calls / allowed, 3),
            "calls_ok_during_traffic": ok_calls,
        }
    )


def _emulator_limit(args: Sequence[str]) -> tuple[int, float]:
    limit, window = 300, 60.0
    for flag, value in itertools.pairwise(args):
        if flag == "--rate-limit":
            limit = int(value)
        elif flag == "--rate-window":
            window = float(value)
    return limit, window
