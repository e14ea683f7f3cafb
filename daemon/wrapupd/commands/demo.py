"""``wrapupd demo``: the daemon against the built-in simulated org, checked against ground truth.

The emulator runs as a child process (``python -m genesys_emulator``); wrapupd talks to it only over
HTTP and WebSocket on loopback, exactly as it talks to Genesys Cloud. The traffic is played and the
result scored through the emulator's control plane, by :mod:`groundtruth`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from groundtruth.emulator import Emulator, emulator_process
from groundtruth.score import Score, percentile, score, unresolved
from wrapupd import logs
from wrapupd.applier import ApplierConfig
from wrapupd.commands import EX_FAILURE, EX_OK
from wrapupd.commands.demo_replicas import applied_by_replica, replica_options, running_replicas
from wrapupd.events import Outcome, QueuePolicy
from wrapupd.options import DaemonOptions, local_options
from wrapupd.parts import Parts
from wrapupd.reconciler import ReconcilerConfig
from wrapupd.service import Daemon
from wrapupd.subscriber import SubscriberConfig

# (queue, default code, grace seconds): the demo org's watched queues; "Unwatched Queue" is left alone.
WATCHED: tuple[tuple[str, str, float], ...] = (
    ("Support", "No code selected", 0.0),
    ("Sales", "No code selected", 3.0),
    ("Billing", "No code selected", 3.0),
    ("Retention", "No code selected", 3.0),
    ("Callbacks", "No answer", 3.0),
)
SETTLE_LIMIT_SECONDS = 45.0
POLL_SECONDS = 0.5


async def command(args: argparse.Namespace) -> int:
    """``wrapupd demo``: traffic for ``--duration`` seconds, then the summary; exit 1 on a broken promise."""
    logs.configure_logging(fmt="console", level="warning", stream=sys.stderr)
    with (
        emulator_process() as emulator,
        tempfile.TemporaryDirectory(prefix="wrapupd-demo-") as state,
    ):
        options = replica_options(demo_options(emulator, Path(state)), args.replicas, args.ledger)
        async with running_replicas(options, logs.add_secret) as replicas:
            daemon, parts = replicas[0]
            result = await _play(daemon, parts, emulator, args)
            shares = await applied_by_replica(replicas) if len(replicas) > 1 else None
    summary = summarise(result) | ({"applied_by_replica": shares} if shares else {})
    print(json.dumps(summary) if args.json else render(summary), flush=True)
    return EX_FAILURE if result.broken() else EX_OK


def demo_options(emulator: Emulator, state_dir: Path) -> DaemonOptions:
    """The daemon's options for the demo org: its queues, a status page on any free port."""
    policies = (
        QueuePolicy(name, code, grace, 2.0, "Default applied by wrapupd (demo)")
        for name, code, grace in WATCHED
    )
    return local_options(
        api_host=emulator.base_url,
        client_id=emulator.client_id,
        client_secret=emulator.client_secret,
        policies=policies,
        state_dir=state_dir,
        listen=("127.0.0.1", 0),
        subscriber=SubscriberConfig(heartbeat_timeout=15.0, ping_timeout=5.0, min_session=2.0),
        applier=ApplierConfig(workers=4),
        reconciler=ReconcilerConfig(interval=30.0, end_lag=0.0),
    )


async def _play(
    daemon: Daemon, parts: Parts, emulator: Emulator, args: argparse.Namespace
) -> Score:
    watched_ids = set(parts.codes.queue_ids)
    grace = {e.queue_id: e.policy.grace_seconds for e in parts.codes.entries()}
    address = daemon.status_address
    where = f"{address[0]}:{address[1]}" if address else "-"
    _say(
        args.json,
        f"daemon ready: watching {len(watched_ids)} queues; status page at http://{where}/"
        f" (metrics at /metrics)",
    )
    await emulator.acontrol(
        "POST", "/_emulator/traffic", _traffic(args.duration, args.rate, args.seed)
    )
    await _progress(parts, args.duration, args.json)
    await _settle(emulator, watched_ids)
    truth, calls = await emulator.truth_and_calls()
    return score(truth, calls, watched_ids, grace_by_queue=grace)


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


def _say(quiet: bool, text: str) -> None:
    print(text, file=sys.stderr if quiet else sys.stdout, flush=True)


async def _progress(parts: Parts, duration: float, quiet: bool) -> None:
    """One progress line a second while the traffic plays."""
    elapsed = 0.0
    while elapsed < duration:
        await asyncio.sleep(1.0)
        elapsed += 1.0
        socket = "up" if parts.subscriber.connected else "DOWN"
        counts = parts.ledger.outcome_counts()
        head = f"[{elapsed:5.0f}s/{duration:.0f}s] socket={socket} pending={parts.applier.pending_count}"
        _say(quiet, f"{head} {live_counts(counts)}")


# The live line counts the daemon's own outcomes, named with the summary's words for the same
# thing: in the demo org an item that ends too_late is an agent who skipped the wrap-up.
LIVE_WORDS: tuple[tuple[Outcome, str], ...] = (
    (Outcome.APPLIED, "applied"),
    (Outcome.ALREADY_CODED, "agent_coded_untouched"),
    (Outcome.TOO_LATE, "agent_skipped"),
    (Outcome.FAILED, "failed"),
)


def live_counts(counts: dict[Outcome, int]) -> str:
    """The outcome part of the live line, e.g. ``applied 3 · agent coded untouched 1 · ...``."""
    return " · ".join(f"{_label(word)} {counts.get(outcome, 0)}" for outcome, word in LIVE_WORDS)


def _label(key: str) -> str:
    """A summary key as both the live line and the summary print it."""
    return key.replace("_", " ")


async def _settle(emulator: Emulator, watched_ids: set[str]) -> None:
    """Wait until every ACW participant on a watched queue has a final state (or the limit)."""
    waited = 0.0
    while waited < SETTLE_LIMIT_SECONDS:
        truth = (await emulator.acontrol("GET", "/_emulator/ground-truth"))["participants"]
        if not unresolved(truth, watched_ids):
            return
        await asyncio.sleep(POLL_SECONDS)
        waited += POLL_SECONDS


def summarise(result: Score) -> dict[str, Any]:
    """The figures the demo promises, in the order it prints them."""
    return {
        "conversations": result.conversations,
        "acw_without_code": result.watched - result.agent - result.skipped,
        "applied": result.applied,
        "agent_coded_untouched": result.agent_untouched,
        "agent_skipped": result.skipped,
        "missed": result.missed,
        "late": result.late,
        "platform_timeouts": result.timeout_stamped,
        "doubled": result.doubled,
        "overwritten": result.overwritten,
        "stray": result.stray,
        "writes_refused_after_acw": result.writes_after_acw,
        "latency_ms_p50": _round(percentile(result.latencies_ms, 50)),
        "latency_ms_p99": _round(percentile(result.latencies_ms, 99)),
        "after_grace_ms_p50": _round(percentile(result.after_grace_ms, 50)),
        "after_grace_ms_p99": _round(percentile(result.after_grace_ms, 99)),
        "api_calls": result.api_calls,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def render(summary: dict[str, Any]) -> str:
    """The summary as the demo prints it on a terminal."""
    lines = ["", "wrapupd demo: summary (checked against the emulator's ground truth)", ""]
    for key, value in summary.items():
        if key == "api_calls":
            lines.append("  api calls by endpoint:")
            lines += [f"    {n:6d}  {endpoint}" for endpoint, n in value.items()]
        else:
            lines.append(f"  {_label(key):<24} {value}")
    broken = [k for k in ("missed", "late", "doubled", "overwritten", "stray") if summary[k]]
    verdict = (
        "PROBLEMS - see above"
        if broken
        else "OK - nothing missed, late, doubled, overwritten or stray"
    )
    lines += ["", f"  result: {verdict}", ""]
    return "\n".join(lines)
