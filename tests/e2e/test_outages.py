"""Outages are waited out, not crashed through (issue 11 findings 7 and 9): the process stays up,
alive but not ready, and the watchdog proves the event loop alive, not the platform reachable."""

from __future__ import annotations

import asyncio

from e2e_harness import SUPPORT, DaemonFactory, eventually, rule

from genesys_emulator.testing import RunningEmulator


async def test_the_watchdog_proves_the_loop_alive_not_the_platform_reachable(
    emulator: RunningEmulator, start_daemon: DaemonFactory
) -> None:
    """No frame for far longer than any heartbeat limit (the platform is away): still healthy, so
    systemd does not kill a daemon that a restart could not help."""
    daemon = await start_daemon((rule(SUPPORT),))
    daemon.parts.subscriber.last_frame_at = daemon.clock.monotonic() - 100_000
    assert daemon.healthy()


async def test_an_unreachable_platform_at_start_is_waited_out_not_exited(
    emulator: RunningEmulator, start_daemon: DaemonFactory
) -> None:
    """Every API call fails at start-up for a while: no exit 69 (a restart loop under systemd's
    start limit); the daemon keeps trying and becomes ready once the platform answers."""
    emulator.fault(kind="http", path="/api/v2/**", status=503, count=6)
    daemon = await asyncio.wait_for(start_daemon((rule(SUPPORT),)), timeout=30)
    assert daemon.ready.is_set()
    calls = [c for c in emulator.calls() if c["status"] == 503]
    assert calls, "the platform did fail at start"
    await eventually(lambda: daemon.readiness()["codes"][0] or None, what="codes loaded")
