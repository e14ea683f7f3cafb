"""End-to-end harness: the real daemon against the in-process emulator, over HTTP and WebSocket.

Every interval is a small multiple of one time unit so that reconnects, retries and grace periods
play out in milliseconds; tests wait on observable facts (ground truth, the ledger), never sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from genesys_emulator.testing import RunningEmulator
from wrapupd.events import QueuePolicy
from wrapupd.options import DaemonOptions, local_options
from wrapupd.reconciler import ReconcilerConfig
from wrapupd.sdnotify import Notifier
from wrapupd.service import Daemon

UNIT = 0.05  # seconds: every interval in these tests is a small multiple of it

SUPPORT = "Support"  # MANDATORY, no timeout
SALES = "Sales"  # OPTIONAL
BILLING = "Billing"  # MANDATORY_TIMEOUT
RETENTION = "Retention"  # MANDATORY_FORCED_TIMEOUT
CALLBACKS = "Callbacks"  # AGENT_REQUESTED
UNWATCHED = "Unwatched Queue"
NO_CODE = "No code selected"


def rule(
    queue: str, code: str = NO_CODE, grace: float = 0.0, margin: float = 2 * UNIT
) -> QueuePolicy:
    return QueuePolicy(
        queue=queue,
        default_code=code,
        grace_seconds=grace,
        timeout_margin_seconds=margin,
        notes="wrapupd test",
    )


def options_for(
    emulator: RunningEmulator, state_dir: Path, rules: tuple[QueuePolicy, ...], **changes: Any
) -> DaemonOptions:
    """The one options builder, at this suite's time unit; sweeps only on start-up and gaps."""
    changes.setdefault("budget_per_minute", 6000.0)
    changes.setdefault(
        "reconciler", ReconcilerConfig(interval=3600.0, end_lag=0.0, retry_delay=UNIT)
    )
    return local_options(
        api_host=emulator.base_url,
        client_id=changes.pop("client_id", emulator.client_id),
        client_secret=changes.pop("client_secret", emulator.client_secret),
        policies=rules,
        state_dir=state_dir,
        unit=UNIT,
        **changes,
    )


DEFAULT_RULES = (
    rule(SUPPORT),
    rule(SALES),
    rule(BILLING),
    rule(RETENTION),
    rule(CALLBACKS, code="No answer"),
)


class Daemons:
    """Starts daemons against the emulator (serving until stopped); the fixture stops the rest."""

    def __init__(self, emulator: RunningEmulator, tmp_path: Path) -> None:
        self.emulator = emulator
        self.tmp_path = tmp_path
        self.running: dict[Daemon, contextlib.AsyncExitStack] = {}

    async def __call__(
        self, rules: tuple[QueuePolicy, ...] = DEFAULT_RULES, **changes: Any
    ) -> Daemon:
        changes.setdefault("state_dir", self.tmp_path / "state")
        notifier = changes.pop("notifier", None) or Notifier({})
        daemon = Daemon(
            options_for(self.emulator, rules=rules, **changes),
            registry=CollectorRegistry(),
            notifier=notifier,
        )
        stack = contextlib.AsyncExitStack()
        await asyncio.wait_for(stack.enter_async_context(daemon.running()), timeout=10)
        self.running[daemon] = stack
        return daemon

    async def stop(self, daemon: Daemon) -> None:
        """Shut one daemon down (drain, close) as SIGTERM would."""
        await self.running.pop(daemon).aclose()

    async def stop_all(self) -> None:
        for daemon in list(self.running):
            await self.stop(daemon)


DaemonFactory = Daemons


@pytest.fixture
async def start_daemon(emulator: RunningEmulator, tmp_path: Path) -> AsyncIterator[Daemons]:
    """Start daemons against the emulator; every one still running is stopped after the test."""
    daemons = Daemons(emulator, tmp_path)
    yield daemons
    await daemons.stop_all()


async def eventually(
    predicate: Callable[[], Any],
    *,
    timeout: float = 5.0,
    what: str = "condition",
    blocking: bool = True,
) -> Any:
    """Poll an observable fact without blocking the event loop the daemon runs on.

    ``blocking`` predicates (HTTP calls to the emulator's control plane) run in a thread; the
    others (the daemon's own ledger, which sqlite ties to the loop's thread) run inline."""
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(predicate) if blocking else predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not met within {timeout}s (last value: {value!r})")
        await asyncio.sleep(UNIT / 5)


def truth_for(emulator: RunningEmulator, conversation_id: str) -> list[dict[str, Any]]:
    return [p for p in emulator.ground_truth() if p["conversationId"] == conversation_id]


def final_wrapup(emulator: RunningEmulator, conversation_id: str) -> dict[str, Any] | None:
    """The agent participant's wrap-up once it has one (by agent, api, timeout or skipped)."""
    entries = truth_for(emulator, conversation_id)
    if entries and (entries[0].get("wrapup") or {}).get("by"):
        return entries[0]
    return None


def sweeps(daemon: Daemon) -> float:
    """Reconciliation sweeps the daemon finished, from its own metric."""
    registry = daemon.parts.metrics.registry
    return registry.get_sample_value("wrapupd_reconcile_runs_total") or 0.0
