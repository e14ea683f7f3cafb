"""The fault matrix harness: generated traffic, faults, and a score computed from the emulator's
ground truth alone (never from what the daemon says about itself).

Every interval is a small multiple of ``UNIT``; the traffic size is multiplied by ``--scale``.
Scoring is :func:`groundtruth.score.score`, the one scorer the demo and the benchmarks use too
(its docstring defines missed, late, doubled, overwritten and stray); this harness only says which
timeout stamps are excused (the daemon was down, or the rate budget could not fit them).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, generate_latest

from genesys_emulator.testing import RunningEmulator
from groundtruth.score import Excuses, Score, unresolved
from groundtruth.score import score as score_truth
from wrapupd import logs
from wrapupd.applier import ApplierConfig
from wrapupd.events import QueuePolicy
from wrapupd.options import DaemonOptions, local_options
from wrapupd.reconciler import ReconcilerConfig
from wrapupd.service import Daemon
from wrapupd.subscriber import SubscriberConfig

UNIT = 0.05  # seconds
FAULTS_ORG = str(Path(__file__).with_name("faults_org.toml"))
EMULATOR_OPTIONS: dict[str, Any] = {
    "org": FAULTS_ORG,
    "heartbeat_interval_s": 4 * UNIT,
    "token_lifetime_s": 3600,
    "channel_lifetime_s": 3600,
    "socket_closing_lead_s": 4 * UNIT,
    "rate_limit_per_window": 100_000,
    "rate_window_s": 60,
    "require_user_context": False,
    # The platform accepts any write, a code over a code included: whether the real one refuses
    # is unverified, so the daemon must not lean on it. An overwrite shows in the ground truth.
    "overwrite_allowed": True,
}

WATCHED_CODES = {
    "Support": "No code selected",  # MANDATORY
    "Sales": "No code selected",  # OPTIONAL
    "Billing": "No code selected",  # MANDATORY_TIMEOUT 2.5 s
    "Retention": "No code selected",  # MANDATORY_FORCED_TIMEOUT 2 s
    "Callbacks": "No answer",  # AGENT_REQUESTED
}
UNWATCHED = "Unwatched Queue"
GRACE = 5 * UNIT
# An agent who codes between our state check and our write's arrival (a few ms on loopback) is
# overwritten by a write no client can hold back (the platform has no conditional write): such an
# overwrite is scored *raced*, anything wider *overwritten* (a write on a stale proof, as issue 11
# found, was 300 ms and more).
RACE_WINDOW_S = 0.1
MARGIN = 6 * UNIT
BASE_CONVERSATIONS = 100
BASE_RATE = 60.0  # conversations per second at scale 1


def rules(grace: float = GRACE, margin: float = MARGIN) -> tuple[QueuePolicy, ...]:
    return tuple(
        QueuePolicy(
            queue=q,
            default_code=c,
            grace_seconds=grace,
            timeout_margin_seconds=margin,
            notes="wrapupd fault matrix",
        )
        for q, c in WATCHED_CODES.items()
    )


def daemon_options(emu: RunningEmulator, state_dir: Path, **changes: Any) -> DaemonOptions:
    """The one options builder at this matrix's time unit, with its own budget and proportions."""
    base: dict[str, Any] = {
        "budget_per_minute": 12_000.0,
        "drain_seconds": 40 * UNIT,
        "subscriber": SubscriberConfig(
            heartbeat_timeout=10 * UNIT,
            ping_timeout=6 * UNIT,
            min_session=UNIT,
            backoff_initial=UNIT / 5,
            backoff_max=2 * UNIT,
            open_timeout=2.0,
        ),
        "applier": ApplierConfig(retry_initial_seconds=UNIT / 5, retry_max_seconds=4 * UNIT),
        # Production proportions (300 s sweeps, 60 s analytics lag) shrunk to the test's time.
        "reconciler": ReconcilerConfig(interval=60 * UNIT, end_lag=10 * UNIT, retry_delay=UNIT),
    }
    return local_options(
        api_host=emu.base_url,
        client_id=changes.pop("client_id", emu.client_id),
        client_secret=changes.pop("client_secret", emu.client_secret),
        policies=rules(),
        state_dir=state_dir,
        unit=UNIT,
        **{**base, **changes},
    )


def traffic_spec(count: int, rate: float, seed: int, **changes: Any) -> dict[str, Any]:
    return {
        "count": count,
        "rate_per_s": rate,
        "queues": [*WATCHED_CODES, UNWATCHED],
        "mix": {"agent_codes": 0.4, "skip": 0.1, "nothing": 0.5},
        "talk_s": [UNIT, 6 * UNIT],
        "agent_delay_s": [UNIT, 16 * UNIT],
        "seed": seed,
        **changes,
    }


# --- scoring ---------------------------------------------------------------------------------


def score(
    emu: RunningEmulator,
    *,
    down: Iterable[tuple[datetime, datetime]] = (),
    budget_excused: int = 0,
    margin: float = MARGIN,
    grace: float = GRACE,
) -> Score:
    """The scenario's score from the emulator's ground truth and call log."""
    queues = emu.control("GET", "/_emulator/org")["queues"]
    excuses = Excuses(
        down=[(a.timestamp(), b.timestamp()) for a, b in down],
        budget=budget_excused,
        acw_timeout_s={q["id"]: (q["timeoutMs"] or 0) / 1000 for q in queues},
        grace=grace,
        margin=margin,
        race_window_s=RACE_WINDOW_S,
    )
    return score_truth(emu.ground_truth(), emu.calls(), watched_ids(emu), excuses=excuses)


def watched_ids(emu: RunningEmulator) -> set[str]:
    org = emu.control("GET", "/_emulator/org")
    return {q["id"] for q in org["queues"] if q["name"] in WATCHED_CODES}


def watched_unresolved(emu: RunningEmulator) -> int:
    """Watched entries still without any outcome (the daemon still owes them a code)."""
    return unresolved(emu.ground_truth(), watched_ids(emu))


def row(name: str, result: Score) -> dict[str, Any]:
    """One row of docs/RELIABILITY.md's table."""
    latency = max(result.latencies_ms, default=None)
    return {
        "scenario": name,
        "conversations": result.conversations,
        "watched": result.watched,
        "missed": result.missed,
        "doubled": result.doubled,
        "overwritten": result.overwritten,
        "raced": result.raced,
        "late": result.late,
        "excused": result.timeout_stamped - result.late,
        "stray": result.stray,
        "applied": result.applied,
        "agent": result.agent,
        "skipped": result.skipped,
        "writes_after_acw": result.writes_after_acw,
        "max_latency_s": None if latency is None else round(latency / 1000, 3),
    }


# --- waiting ---------------------------------------------------------------------------------


async def eventually(
    predicate: Callable[[], Any], *, timeout: float, what: str, blocking: bool = True
) -> Any:
    """Poll an observable fact; blocking predicates (control-plane HTTP) run in a thread."""
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(predicate) if blocking else predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not met within {timeout}s (last value: {value!r})")
        await asyncio.sleep(UNIT / 5)


def traffic_done(emu: RunningEmulator, traffic_ids: Iterable[str]) -> bool:
    return all(emu.traffic_progress(t)["done"] for t in traffic_ids)


# --- capturing everything the daemon says ----------------------------------------------------


class Transcript:
    """Everything a scenario's daemons wrote (logs, metrics, process output), for the secrets check."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.texts: list[str] = []

    def add(self, text: str) -> None:
        self.texts.append(text)

    def everything(self) -> str:
        return self.stream.getvalue() + "\n".join(self.texts)


def capture_logs_into(transcript: Transcript, secret: str) -> None:
    """The daemon's real logging set-up (JSON, debug, redaction) writing into the transcript."""
    logs.configure_logging(fmt="json", level="debug", secrets=[secret], stream=transcript.stream)


def restore_logging() -> None:
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if type(h).__name__ == "_WrapupdHandler"]:
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    logging.captureWarnings(False)


def issued_tokens(emu: RunningEmulator) -> list[str]:
    return [t["value"] for t in emu.control("GET", "/_emulator/tokens")["tokens"]]


def created_channels(emu: RunningEmulator) -> list[str]:
    """The ids of the notification channels the emulator holds now (each is a credential)."""
    return [c["id"] for c in emu.control("GET", "/_emulator/channels")["channels"]]


def leaked(text: str, secrets: Iterable[str]) -> list[str]:
    return [s[:6] + "…" for s in secrets if s and s in text]


# --- the in-process daemon -------------------------------------------------------------------


class InProcess:
    """Starts and stops in-process daemons for one scenario, capturing their logs and metrics."""

    def __init__(self, emu: RunningEmulator, state_dir: Path, transcript: Transcript) -> None:
        self.emu = emu
        self.state_dir = state_dir
        self.transcript = transcript
        self.running: list[tuple[Daemon, CollectorRegistry, contextlib.AsyncExitStack]] = []

    async def start(self, **changes: Any) -> Daemon:
        registry = CollectorRegistry()
        options = daemon_options(self.emu, self.state_dir, **changes)
        daemon = Daemon(options, registry=registry, on_new_token=logs.add_secret)
        stack = contextlib.AsyncExitStack()
        await asyncio.wait_for(stack.enter_async_context(daemon.running()), timeout=20)
        self.running.append((daemon, registry, stack))
        return daemon

    async def stop(self, daemon: Daemon) -> None:
        for i, (d, registry, stack) in enumerate(self.running):
            if d is daemon:
                del self.running[i]
                await stack.aclose()
                self.transcript.add(generate_latest(registry).decode())
                return

    async def stop_all(self) -> None:
        for daemon, _, _ in list(self.running):
            await self.stop(daemon)


# --- the daemon as a process (SIGKILL, SIGTERM) ----------------------------------------------


def write_config(
    path: Path,
    emu: RunningEmulator,
    *,
    state_dir: Path,
    port: int,
    extra_daemon: str = "",
    grace: float = GRACE,
) -> Path:
    queues = "".join(
        f'[[queues]]\nqueue = "{q}"\ndefault_code = "{c}"\n\n' for q, c in WATCHED_CODES.items()
    )
    path.write_text(
        f"""[genesys]
api_host = "{emu.base_url}"
client_id = "{emu.client_id}"
client_secret = "{emu.client_secret}"
connect_timeout_seconds = 2
read_timeout_seconds = 2
rate_limit_per_minute = 20000
rate_reserve_per_minute = 0

[defaults]
grace_seconds = {grace}
timeout_margin_seconds = {MARGIN}
notes = "wrapupd fault matrix"

{queues}
[daemon]
state_dir = "{state_dir}"
heartbeat_timeout_seconds = {10 * UNIT}
reconcile_interval_seconds = {60 * UNIT}
drain_seconds = {40 * UNIT}
{extra_daemon}

[http]
listen = "127.0.0.1:{port}"

[log]
format = "json"
level = "debug"
"""
    )
    return path


class DaemonProcess:
    """``python -m wrapupd run --config …`` with its output collected for the transcript."""

    def __init__(self, config: Path, port: int, transcript: Transcript) -> None:
        self.config, self.port, self.transcript = config, port, transcript
        self.process: subprocess.Popen[str] | None = None
        self.exit_code: int | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("NOTIFY_SOCKET", None)
        # Files, not pipes: a debug-level daemon fills a pipe nobody reads and blocks on it.
        self.out_path = self.config.with_suffix(".out")
        self.err_path = self.config.with_suffix(".err")
        with self.out_path.open("w") as out, self.err_path.open("w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "wrapupd", "run", "--config", str(self.config)],
                stdout=out,
                stderr=err,
                text=True,
                env=env,
            )

    def ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(
                f"wrapupd exited {self.process.returncode}: {self.err_path.read_text()[-2000:]}"
            )
        return _http_status(self.port, "/readyz") == 200

    def caught_up(self) -> bool:
        """Ready, and its start-up sweep is done: what began while no process ran is known now
        (only that sweep can find it)."""
        if not self.ready():
            return False
        for line in self.metrics().splitlines():
            if line.startswith("wrapupd_reconcile_last_complete_timestamp_seconds "):
                return float(line.split()[1]) > 0
        return False

    def metrics(self) -> str:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
            return str(r.read().decode())

    def _collect(self) -> None:
        assert self.process is not None
        self.exit_code = self.process.wait(timeout=30)
        self.transcript.add(self.out_path.read_text())
        self.transcript.add(self.err_path.read_text())
        self.process = None

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self._collect()

    def terminate(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        self._collect()
        assert self.exit_code is not None
        return self.exit_code

    def cleanup(self) -> None:
        if self.process is not None:
            self.process.kill()
            self._collect()


def _http_status(port: int, path: str) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def now() -> datetime:
    return datetime.now(UTC)


# --- a scenario ------------------------------------------------------------------------------


@dataclass
class Scenario:
    """One row of the matrix: traffic, faults while it runs, settle, score, record."""

    name: str
    emu: RunningEmulator
    scale: float
    tmp_path: Path
    results: list[dict[str, Any]]
    command: str
    transcript: Transcript = field(default_factory=Transcript)
    down: list[tuple[datetime, datetime]] = field(default_factory=list)
    channel_ids: set[str] = field(default_factory=set)  # every channel seen during the row
    channel_leaks: list[str] = field(default_factory=list)
    traffic_ids: list[str] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)

    @property
    def state_dir(self) -> Path:
        return self.tmp_path / "state"

    def conversations(self, base: int = BASE_CONVERSATIONS) -> int:
        return max(10, round(base * self.scale))

    async def traffic(
        self, count: int | None = None, rate: float = BASE_RATE, seed: int = 1, **changes: Any
    ) -> str:
        spec = traffic_spec(count or self.conversations(), rate, seed, **changes)
        tid = (await asyncio.to_thread(self.emu.traffic, **spec))["trafficId"]
        self.traffic_ids.append(tid)
        return str(tid)

    async def fault(self, **spec: Any) -> dict[str, Any]:
        return await asyncio.to_thread(self.emu.fault, **spec)

    async def while_traffic(self, every: float, action: Callable[[], Awaitable[Any]]) -> int:
        """Repeat ``action`` every ``every`` seconds until the traffic has all started."""
        times = 0
        while not await asyncio.to_thread(self._all_started):
            await asyncio.sleep(every)
            await action()
            times += 1
        return times

    def _all_started(self) -> bool:
        runs = [self.emu.traffic_progress(t) for t in self.traffic_ids]
        return all(r["started"] >= (r["planned"] or 0) for r in runs)

    async def settle(self, timeout: float = 20.0, pending: Callable[[], int] | None = None) -> None:
        """Traffic finished, every watched entry has an outcome, the daemon owes nothing."""
        timeout = timeout + 0.05 * self.conversations()

        def done() -> bool:
            return traffic_done(self.emu, self.traffic_ids) and watched_unresolved(self.emu) == 0

        try:
            await eventually(done, timeout=timeout, what=f"{self.name}: every ACW resolved")
            if pending is not None:
                await eventually(
                    lambda: pending() == 0, timeout=10, what="daemon idle", blocking=False
                )
        except AssertionError:
            pass  # scored below: what is still unresolved counts as missed

    def finish(self, *, budget_excused: int = 0, grace: float = GRACE, **extra: Any) -> Score:
        result = score(self.emu, down=self.down, budget_excused=budget_excused, grace=grace)
        self.secrets.update(issued_tokens(self.emu))
        self.secrets.add(self.emu.client_secret)
        text = self.transcript.everything()
        dump = os.environ.get("RELIABILITY_TRANSCRIPTS")
        if dump:
            safe = re.sub(r"[^\w]+", "_", self.name).strip("_")
            Path(dump).mkdir(parents=True, exist_ok=True)
            (Path(dump) / f"{safe}.log").write_text(text)
            (Path(dump) / f"{safe}.truth.json").write_text(json.dumps(self.emu.ground_truth()))
        leaks = leaked(text, self.secrets)
        self.channel_ids.update(created_channels(self.emu))
        self.channel_leaks = leaked(text, self.channel_ids)
        record = {
            **row(self.name, result),
            "command": self.command,
            "scale": self.scale,
            "secrets_checked": len(self.secrets),
            "transcript_bytes": len(text),
            "leaks": len(leaks),
            "channel_id_leaks": len(self.channel_leaks),
            **extra,
        }
        self.results.append(record)
        assert not leaks, f"{self.name}: secrets in the daemon's output: {leaks}"
        assert not self.channel_leaks, (
            f"{self.name}: channel ids in the output: {self.channel_leaks}"
        )
        return result


def assert_promises(result: Score) -> None:
    broken = result.broken()
    assert not broken, f"{broken}\n" + json.dumps(result.offenders, indent=1)[:4000]
