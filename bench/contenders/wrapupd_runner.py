"""wrapupd as shipped, in-process on the bench's event loop (as ``wrapupd demo`` runs it).

Only what a deployment must set is set: the emulator's address and credentials, the watched
queues (grace 0 so latency is the daemon's own), the budget, a state directory, no health port.
Logging is on at ``info`` in JSON (to /dev/null), so its cost is part of the figures.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from bench.harness import Emulator, Setup
from wrapupd import logs
from wrapupd.events import QueuePolicy
from wrapupd.options import DaemonOptions, local_options
from wrapupd.service import Daemon

_devnull: Any = None


def quiet_logs(level: str = "info") -> None:
    global _devnull
    if _devnull is None:
        _devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
        atexit.register(_devnull.close)
    logs.configure_logging(fmt="json", level=level, stream=_devnull)


def options_for(
    emu: Emulator, setup: Setup, state_dir: Path, *, grace: float = 0.0
) -> DaemonOptions:
    """The daemon's own defaults (no ``unit``): the benchmarks measure wrapupd as shipped."""
    policies = (
        QueuePolicy(queue, code, grace, 2.0, "Default applied by wrapupd (bench)")
        for queue, code in setup.watched
    )
    return local_options(
        api_host=emu.base_url,
        client_id=emu.client_id,
        client_secret=emu.client_secret,
        policies=policies,
        state_dir=state_dir,
        budget_per_minute=setup.budget_per_minute,
    )


class WrapupdContender:
    """The daemon as shipped, in-process (its own start-up freezes the start-up heap: gc.freeze)."""

    def __init__(self, grace: float = 0.0) -> None:
        self.grace = grace
        self.name = "wrapupd"
        self.daemon: Daemon | None = None
        self._state: tempfile.TemporaryDirectory[str] | None = None
        self._running = contextlib.AsyncExitStack()

    async def start(self, emu: Emulator, setup: Setup) -> None:
        quiet_logs()
        self._state = tempfile.TemporaryDirectory(prefix="wrapupd-bench-")
        options = options_for(emu, setup, Path(self._state.name), grace=self.grace)
        self.daemon = Daemon(options, registry=CollectorRegistry())
        await self._running.enter_async_context(self.daemon.running())

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self._running.aclose()
        if self._state is not None:
            self._state.cleanup()
