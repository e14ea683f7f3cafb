"""End-to-end harness: the real daemon against the in-process emulator, over HTTP and WebSocket.

Every interval is a small multiple of one time unit so that reconnects, retries and grace periods
play out in milliseconds; tests wait on observable facts (ground truth, the ledger), never sleeps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from genesys_emulator.testing import RunningEmulator
from wrapupd.applier import ApplierConfig
from wrapupd.events import QueuePolicy
from wrapupd.reconciler import ReconcilerConfig
from wrapupd.sdnotify import Notifier
from wrapupd.service import Daemon, DaemonOptions
from wrapupd.subscriber import SubscriberConfig

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
    base = DaemonOptions(
        api_host=emulator.base_url,
        client_id=emulator.client_id,
        client_secret=emulator.client_secret,
        rules=rules,
        state_dir=state_dir,
        listen=None,
        connect_timeout=2.0,
        read_timeout=2.0,
        budget_per_minute=6000.0,
        drain_seconds=20 * UNIT,
        subscriber=SubscriberConfig(
            heartbeat_timeout=20 * UNIT,
            ping_timeout=10 * UNIT,
            min_session=UNIT,
            backoff_initial=UNIT / 5,
            backoff_max=2 * UNIT,
            open_timeout=2.0,
        ),
        applier=ApplierConfig(
            workers=4, retry_initial_seconds=UNIT / 5, retry_max_seconds=2 * UNIT
        ),
        reconciler=ReconcilerConfig(interval=3600.0, end_lag=0.0, retry_delay=UNIT),
    )
    return replace(base, **changes)


DEFAULT_RULES = (
    rule(SUPPORT),
    rule(SALES),
    rule(BILLING),
    rule(RETENTION),
    rule(CALLBACKS, code="No answer"),
)

DaemonFactory = Callable[..., Awaitable[Daemon]]


@pytest.fixture
async def start_daemon(emulator: RunningEmulator, tmp_path: Path) -> AsyncIterator[DaemonFactory]:
    """Start daemons against the emulator; every one still running is stopped after the test."""
    running: list[Daemon] = []

    async def start(rules: tuple[QueuePolicy, ...] = DEFAULT_RULES, **changes: Any) -> Daemon:
        changes.setdefault("state_dir", tmp_path / "state")
        notifier = changes.pop("notifier", None) or Notifier({})
        daemon = Daemon(
            options_for(emulator, rules=rules, **changes),
            registry=CollectorRegistry(),
            notifier=notifier,
        )
        running.append(daemon)
        await asyncio.wait_for(daemon.start(), timeout=10)
        return daemon

    yield start
    for daemon in running:
        if not getattr(daemon, "stopped", False):
            await daemon.stop()


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
