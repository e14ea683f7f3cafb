"""``wrapupd demo``: the daemon against the built-in simulated org, checked against ground truth.

The emulator runs as a child process (``python -m genesys_emulator``); wrapupd talks to it only over
HTTP and WebSocket on loopback, exactly as it talks to Genesys Cloud, and reads its control plane
(``/_emulator/...``) to play traffic and to learn what really happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wrapupd import logs
from wrapupd.applier import ApplierConfig
from wrapupd.events import Outcome, QueuePolicy
from wrapupd.reconciler import ReconcilerConfig
from wrapupd.service import Daemon, DaemonOptions
from wrapupd.subscriber import SubscriberConfig

# (queue, default code, grace seconds): the demo org's watched queues; "Unwatched Queue" is left alone.
WATCHED: tuple[tuple[str, str, float], ...] = (
    ("Support", "No code selected", 0.0),
    ("Sales", "No code selected", 3.0),
    ("Billing", "No code selected", 3.0),
    ("Retention", "No code selected", 3.0),
    ("Callbacks", "No answer", 3.0),
)
READY_TIMEOUT = 60.0


@dataclass
class Emulator:
    process: subprocess.Popen[str]
    base_url: str
    client_id: str
    client_secret: str

    def control(self, method: str, path: str, body: object | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b"{}")

    async def acontrol(self, method: str, path: str, body: object | None = None) -> Any:
        return await asyncio.to_thread(self.control, method, path, body)

    def queue_ids(self) -> dict[str, str]:
        """Queue name -> id, from the control plane's view of the org."""
        return {q["name"]: q["id"] for q in self.control("GET", "/_emulator/org")["queues"]}


@contextlib.contextmanager
def emulator_process(org: str | Path = "demo", extra: Sequence[str] = ()) -> Iterator[Emulator]:
    """Start ``python -m genesys_emulator`` on a free loopback port and read its ready line."""
    command = [sys.executable, "-m", "genesys_emulator", "--port", "0", "--org", str(org)]
    command += [*extra, "--log-level", "WARNING"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(
                f"the emulator exited before it was ready (exit code {process.wait(5)})"
            )
        ready = json.loads(line)
        yield Emulator(process, ready["base_url"], ready["client_id"], ready["client_secret"])
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def demo_options(emulator: Emulator, state_dir: Path) -> DaemonOptions:
    rules = tuple(
        QueuePolicy(
            queue=name,
            default_code=code,
            grace_seconds=grace,
            timeout_margin_seconds=2.0,
            notes="Default applied by wrapupd (demo)",
        )
        for name, code, grace in WATCHED
    )
    return DaemonOptions(
        api_host=emulator.base_url,
        client_id=emulator.client_id,
        client_secret=emulator.client_secret,
        rules=rules,
        state_dir=state_dir,
        listen=("127.0.0.1", 0),
        budget_per_minute=270.0,
        subscriber=SubscriberConfig(heartbeat_timeout=15.0, ping_timeout=5.0, min_session=2.0),
        applier=ApplierConfig(workers=4),
        reconciler=ReconcilerConfig(interval=30.0, end_lag=0.0),
    )


# --- the summary -------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _parse_ts(value: str | None) -> float | None:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


def summarise(
    truth: list[dict[str, Any]],
    calls: list[dict[str, Any]],
    watched_ids: set[str],
    grace_by_queue: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The figures the demo promises, from the emulator's ground truth only."""
    watched = [p for p in truth if p.get("queueId") in watched_ids]
    by = Counter((p.get("wrapup") or {}).get("by") for p in watched)
    latencies: list[float] = []
    after_grace: list[float] = []
    grace = grace_by_queue or {}
    for p in watched:
        wrapup = p.get("wrapup") or {}
        if wrapup.get("by") == "api":
            start, end = _parse_ts(p.get("acwStartedAt")), _parse_ts(wrapup.get("at"))
            if start is not None and end is not None:
                latencies.append((end - start) * 1000)
                after_grace.append((end - start - grace.get(p["queueId"], 0.0)) * 1000)
    doubled = sum(1 for p in truth if _api_writes(p) > 1)
    overwritten = sum(1 for p in truth if overwritten_by_api(p))
    stray = sum(
        1 for p in truth if p.get("queueId") not in watched_ids and p.get("apiWrapupCalls", 0) > 0
    )
    api_calls: Counter[str] = Counter()
    for c in calls:
        api_calls[f"{c['method']} {c['path']}"] += int(c["count"])
    missed = by.get(None, 0) + by.get("timeout", 0)
    return {
        "conversations": len({p["conversationId"] for p in truth}),
        "acw_without_code": by.get("api", 0) + missed,
        "applied": by.get("api", 0),
        "agent_coded_untouched": sum(
            1
            for p in watched
            if (p.get("wrapup") or {}).get("by") == "agent" and p.get("apiWrapupCalls", 0) == 0
        ),
        "agent_skipped": by.get("skipped", 0),
        "missed": missed,
        "doubled": doubled,
        "overwritten": overwritten,
        "stray": stray,
        "latency_ms_p50": _round(_percentile(latencies, 50)),
        "latency_ms_p99": _round(_percentile(latencies, 99)),
        "after_grace_ms_p50": _round(_percentile(after_grace, 50)),
        "after_grace_ms_p99": _round(_percentile(after_grace, 99)),
        "api_calls": dict(sorted(api_calls.items())),
    }


def _api_writes(p: dict[str, Any]) -> int:
    """Writes that reached the platform's wrap-up rules (a faulted or rate-limited call did not)."""
    return int(p.get("apiWrapupWrites", p.get("apiWrapupCalls", 0)))


def overwritten_by_api(p: dict[str, Any]) -> bool:
    """A ground-truth entry whose code history has an API code after the agent's own."""
    seen_agent = False
    for h in p.get("history") or []:
        if h.get("by") == "agent":
            seen_agent = True
        elif h.get("by") == "api" and seen_agent:
            return True
    return False


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def render(summary: dict[str, Any]) -> str:
    lines = ["", "wrapupd demo: summary (checked against the emulator's ground truth)", ""]
    for key, value in summary.items():
        if key == "api_calls":
            lines.append("  api calls by endpoint:")
            lines += [f"    {n:6d}  {endpoint}" for endpoint, n in value.items()]
        else:
            lines.append(f"  {key.replace('_', ' '):<24} {value}")
    verdict = all(summary[k] == 0 for k in ("missed", "doubled", "overwritten", "stray"))
    lines += [
        "",
        "  result: "
        + (
            "OK - nothing missed, doubled, overwritten or stray"
            if verdict
            else "PROBLEMS - see above"
        ),
        "",
    ]
    return "\n".join(lines)


# --- the run -------------------------------------------------------------------------------------


async def run_demo(*, duration: float, rate: float, as_json: bool, seed: int) -> int:
    logs.configure_logging(fmt="console", level="warning", stream=sys.stderr)
    with (
        emulator_process() as emulator,
        tempfile.TemporaryDirectory(prefix="wrapupd-demo-") as state,
    ):
        daemon = Daemon(demo_options(emulator, Path(state)), on_new_token=logs.add_secret)
        try:
            await daemon.start()
            watched_ids = set(daemon.codes.queue_ids)
            grace_by_queue = {e.queue_id: e.policy.grace_seconds for e in daemon.codes.entries()}
            _say(
                as_json,
                f"daemon ready: watching {len(watched_ids)} queues; metrics at http://{_addr(daemon)}/metrics",
            )
            await emulator.acontrol("POST", "/_emulator/traffic", _traffic(duration, rate, seed))
            await _progress(daemon, emulator, duration, as_json)
            await _settle(emulator, watched_ids, limit_s=45.0)
            truth = (await emulator.acontrol("GET", "/_emulator/ground-truth"))["participants"]
            calls = (await emulator.acontrol("GET", "/_emulator/calls"))["calls"]
        finally:
            await daemon.stop()
    summary = summarise(truth, calls, watched_ids, grace_by_queue)
    print(json.dumps(summary) if as_json else render(summary), flush=True)
    problems = summary["missed"] + summary["doubled"] + summary["overwritten"] + summary["stray"]
    return 0 if problems == 0 else 1


def _traffic(duration: float, rate: float, seed: int) -> dict[str, Any]:
    return {
        "rate_per_s": rate,
        "duration_s": duration,
        "mix": {"agent_codes": 0.35, "skip": 0.1, "nothing": 0.55},
        "talk_s": [1.0, 4.0],
        "agent_delay_s": [0.5, 6.0],
        "media": ["call", "chat", "email", "message", "callback"],
        "seed": seed,
    }


def _addr(daemon: Daemon) -> str:
    return (
        f"{daemon.health_address[0]}:{daemon.health_address[1]}" if daemon.health_address else "-"
    )


def _say(quiet: bool, text: str) -> None:
    print(text, file=sys.stderr if quiet else sys.stdout, flush=True)


async def _progress(daemon: Daemon, emulator: Emulator, duration: float, as_json: bool) -> None:
    elapsed = 0.0
    while elapsed < duration:
        await asyncio.sleep(1.0)
        elapsed += 1.0
        counts = daemon.ledger.outcome_counts() if daemon.ledger else {}
        pending = daemon.applier.pending_count if daemon.applier else 0
        sub = daemon.subscriber
        line = (
            f"[{elapsed:5.0f}s/{duration:.0f}s] socket={'up' if sub and sub.connected else 'DOWN'} "
            f"pending={pending} applied={counts.get(Outcome.APPLIED, 0)} "
            f"agent/coded={counts.get(Outcome.ALREADY_CODED, 0)} too_late={counts.get(Outcome.TOO_LATE, 0)} "
            f"failed={counts.get(Outcome.FAILED, 0)}"
        )
        _say(as_json, line)


async def _settle(emulator: Emulator, watched_ids: set[str], *, limit_s: float) -> None:
    """Wait until every ACW participant on a watched queue has a final state (or the timeout)."""
    waited = 0.0
    while waited < limit_s:
        truth = (await emulator.acontrol("GET", "/_emulator/ground-truth"))["participants"]
        open_ = [
            p
            for p in truth
            if p.get("queueId") in watched_ids and not (p.get("wrapup") or {}).get("by")
        ]
        if not open_:
            return
        await asyncio.sleep(0.5)
        waited += 0.5
