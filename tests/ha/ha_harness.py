"""Replicas sharing one PostgreSQL ledger against the emulator: in-process daemons (stopped as
SIGTERM would), or real processes (for SIGKILL); traffic on every demo queue; one score from the
emulator's ground truth (:mod:`groundtruth.score`, the scorer of the demo and the fault matrix).

Every interval is a small multiple of ``UNIT``; leases last ``10 * UNIT`` in process and one second
(the least the settings allow) in real processes, so a takeover plays out in about a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import CollectorRegistry

from genesys_emulator.testing import RunningEmulator
from groundtruth.score import Score, score, unresolved
from postgres import PostgresDatabase
from wrapupd.events import QueuePolicy
from wrapupd.options import local_options
from wrapupd.reconciler import ReconcilerConfig
from wrapupd.replicas import ReplicaConfig
from wrapupd.sdnotify import Notifier
from wrapupd.service import Daemon

UNIT = 0.05
CODES = {
    "Support": "No code selected",  # MANDATORY
    "Sales": "No code selected",  # OPTIONAL
    "Billing": "No code selected",  # MANDATORY_TIMEOUT
    "Retention": "No code selected",  # MANDATORY_FORCED_TIMEOUT
    "Callbacks": "No answer",  # AGENT_REQUESTED
}
UNWATCHED = "Unwatched Queue"
GRACE = 5 * UNIT
# The demo org's queues with second-long ACW timeouts (the fault matrix's org), so traffic ends.
FAULTS_ORG = str(Path(__file__).parents[1] / "faults" / "faults_org.toml")
EMULATOR_OPTIONS: dict[str, Any] = {
    "org": FAULTS_ORG,
    "heartbeat_interval_s": 4 * UNIT,
    "token_lifetime_s": 3600,
    "channel_lifetime_s": 3600,
    "socket_closing_lead_s": 4 * UNIT,
    "rate_limit_per_window": 100_000,
    "rate_window_s": 60,
    "require_user_context": False,
    "overwrite_allowed": True,  # a second write would land: doubled or overwritten shows
}


def rules() -> tuple[QueuePolicy, ...]:
    return tuple(
        QueuePolicy(
            queue=q,
            default_code=c,
            grace_seconds=GRACE,
            timeout_margin_seconds=6 * UNIT,
            notes="wrapupd ha",
        )
        for q, c in CODES.items()
    )


def traffic(emu: RunningEmulator, count: int, rate: float, seed: int) -> str:
    """Generated conversations on every demo queue (the unwatched one too); their traffic id."""
    spec = {
        "count": count,
        "rate_per_s": rate,
        "queues": [*CODES, UNWATCHED],
        "mix": {"agent_codes": 0.4, "skip": 0.1, "nothing": 0.5},
        "talk_s": [UNIT, 6 * UNIT],
        # Agents act before the grace ends: an agent's code landing while a PATCH is on the wire
        # is a race no client can win (overwrite_allowed would count it), and one daemon has it
        # too; what these scenarios test is that failover never adds a write of its own.
        "agent_delay_s": [UNIT, 3 * UNIT],
        "seed": seed,
    }
    return str(emu.traffic(**spec)["trafficId"])


def watched_ids(emu: RunningEmulator) -> set[str]:
    org = emu.control("GET", "/_emulator/org")
    return {q["id"] for q in org["queues"] if q["name"] in CODES}


def channel_ids(emu: RunningEmulator) -> set[str]:
    return {c["id"] for c in emu.control("GET", "/_emulator/channels")["channels"]}


async def eventually(predicate: Callable[[], Any], *, timeout: float, what: str) -> Any:
    """Poll an observable fact (control-plane calls run in a thread), never a bare sleep."""
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not met within {timeout}s (last value: {value!r})")
        await asyncio.sleep(UNIT)


async def settle(emu: RunningEmulator, traffic_ids: list[str], timeout: float = 30.0) -> Score:
    """Wait for the traffic to end and every watched participant to have an outcome; score."""
    watched = watched_ids(emu)

    def done() -> bool:
        finished = all(emu.traffic_progress(t)["done"] for t in traffic_ids)
        return finished and unresolved(emu.ground_truth(), watched) == 0

    with contextlib.suppress(AssertionError):  # scored either way: the score says what is missing
        await eventually(done, timeout=timeout, what="traffic done and every participant resolved")
    return score(emu.ground_truth(), emu.calls(), watched)


HA_PROMISES = ("missed", "doubled", "overwritten", "stray")


def record(scenario: str, result: Score) -> None:
    """With ``HA_RELIABILITY_JSON=path``, append the scenario's row (for docs/RELIABILITY.md)."""
    target = os.environ.get("HA_RELIABILITY_JSON")
    if not target:
        return
    fields = ("conversations", "watched", "missed", "doubled", "overwritten", "stray", "late")
    row = {"scenario": scenario, **{name: getattr(result, name) for name in fields}}
    with Path(target).open("a") as out:
        out.write(json.dumps(row) + "\n")


def assert_promises(result: Score, scenario: str) -> None:
    """0 missed, doubled, overwritten, stray (a takeover may let a timeout stamp first: late is
    reported in docs/RELIABILITY.md, not a broken promise here)."""
    record(scenario, result)
    assert result.watched > 0, "the scenario watched nothing"
    assert result.applied > 0, "the replicas applied nothing"
    broken = {k: v for k, v in result.broken().items() if k in HA_PROMISES}
    assert broken == {}, {k: result.offenders[k] for k in broken}


@dataclass
class Fleet:
    """In-process replicas on one emulator and one PostgreSQL ledger, each with its own name."""

    emu: RunningEmulator
    db: PostgresDatabase
    tmp_path: Path
    running: dict[str, tuple[Daemon, contextlib.AsyncExitStack]] = field(default_factory=dict)
    channels: dict[str, set[str]] = field(default_factory=dict)

    async def start(self, name: str, lease_seconds: float = 10 * UNIT, **changes: Any) -> Daemon:
        """A replica on the shared ledger; ``lease_seconds`` short (the default) so that a dead
        replica's items are taken over within the test, long where no replica is to lose one."""
        before = channel_ids(self.emu)
        options = local_options(
            api_host=self.emu.base_url,
            client_id=self.emu.client_id,
            client_secret=self.emu.client_secret,
            policies=rules(),
            state_dir=self.tmp_path / name,
            unit=UNIT,
            budget_per_minute=12_000.0,
            reconciler=ReconcilerConfig(interval=60 * UNIT, end_lag=10 * UNIT, retry_delay=UNIT),
            ledger_url=self.db.url,
            ledger_password=self.db.password,
            replicas=ReplicaConfig(lease_seconds, heartbeat_seconds=2 * UNIT, name=name),
            **changes,
        )
        daemon = Daemon(options, registry=CollectorRegistry(), notifier=Notifier({}))
        stack = contextlib.AsyncExitStack()
        # The replica's tasks inherit its name: each captured log line says which replica spoke.
        with structlog.contextvars.bound_contextvars(replica=name):
            await asyncio.wait_for(stack.enter_async_context(daemon.running()), timeout=20)
        self.running[name] = (daemon, stack)
        self.channels[name] = channel_ids(self.emu) - before
        return daemon

    async def stop(self, name: str) -> None:
        """Shut one replica down as SIGTERM would (drain, give leases back, retire)."""
        _, stack = self.running.pop(name)
        await stack.aclose()

    async def stop_all(self) -> None:
        for name in list(self.running):
            await self.stop(name)


@dataclass
class ProcessReplica:
    """``wrapupd run`` in its own process, on the shared ledger (for SIGKILL)."""

    config: Path
    password: str
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def write(
        cls,
        emu: RunningEmulator,
        db: PostgresDatabase,
        directory: Path,
        *,
        grace: float = GRACE,
        margin: float = 6 * UNIT,
    ) -> ProcessReplica:
        directory.mkdir(parents=True, exist_ok=True)
        queues = "".join(
            f'[[queues]]\nqueue = "{q}"\ndefault_code = "{c}"\n' for q, c in CODES.items()
        )
        config = directory / "wrapupd.toml"
        config.write_text(
            f"""
[genesys]
api_host = "{emu.base_url}"
client_id = "{emu.client_id}"
client_secret = "{emu.client_secret}"
rate_limit_per_minute = 100000
rate_reserve_per_minute = 0

[defaults]
grace_seconds = {grace}
timeout_margin_seconds = {margin}

{queues}
[daemon]
state_dir = "{directory / "state"}"
heartbeat_timeout_seconds = 2
reconcile_interval_seconds = 3

[ledger]
url = "{db.url}"
lease_seconds = 1
heartbeat_seconds = 0.3

[http]
listen = "127.0.0.1:0"

[log]
format = "json"
"""
        )
        return cls(config, db.password)

    @property
    def log_path(self) -> Path:
        return self.config.with_name("wrapupd.log")

    def start(self) -> None:
        env = {**os.environ, "WRAPUPD_LEDGER__PASSWORD": self.password}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "wrapupd", "run", "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )

    async def ready(self, timeout: float = 60) -> None:
        """Wait for the ``ready`` log line."""

        def is_ready() -> bool:
            text = self.log_path.read_text()
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"the replica ended ({self.process.returncode}):\n{text}")
            return '"event": "ready"' in text or '"event":"ready"' in text

        await eventually(is_ready, timeout=timeout, what="the replica ready")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.terminate()
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
