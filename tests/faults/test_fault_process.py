"""The fault matrix, host side: ``python -m wrapupd run`` as a real process, killed with SIGKILL
(in the grace period, during in-flight writes) or stopped with SIGTERM under load, then restarted
on the same state directory."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

from faults_harness import (
    UNIT,
    DaemonProcess,
    Scenario,
    assert_promises,
    eventually,
    free_port,
    now,
    write_config,
)

ScenarioFactory = Callable[[str], Scenario]
SLOW_PATCH = {"kind": "latency", "method": "PATCH", "path": "/api/v2/conversations/**"}
# With every write slowed to 0.3-0.5 s, four workers code ~10 participants a second against the
# ~34 the traffic brings: the backlog, not the restart, would make the 2 s queue late. Enough
# workers to keep pace keep these rows about the restart.
KEEP_PACE = "workers = 16"


def ledger_states(state_dir: Path) -> dict[str, int]:
    """Rows per state, read beside the running daemon (WAL allows a second reader)."""
    path = state_dir / "wrapupd.sqlite3"
    if not path.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return dict(
                db.execute("SELECT state, count(*) FROM work_items GROUP BY state").fetchall()
            )
    except sqlite3.Error:
        return {}


async def start_process(s: Scenario, *, grace: float, extra: str = "") -> DaemonProcess:
    """Start ``wrapupd run`` and return once it has caught up: a restart's outage (``s.down``, the
    excuse for ACWs that ran out meanwhile) lasts until the new process knows what the old one
    missed, which only its start-up sweep can tell it."""
    port = free_port()
    config = write_config(
        s.tmp_path / f"wrapupd-{port}.toml",
        s.emu,
        state_dir=s.state_dir,
        port=port,
        grace=grace,
        extra_daemon=extra,
    )
    process = DaemonProcess(config, port, s.transcript)
    process.start()
    try:
        await eventually(process.caught_up, timeout=30, what="/readyz 200, start-up sweep done")
    except AssertionError:
        process.cleanup()
        raise
    return process


async def kill_and_restart(
    s: Scenario, process: DaemonProcess, *, grace: float, heal: bool = False, extra: str = ""
) -> DaemonProcess:
    """SIGKILL, then start a new process on the same state; ``heal``: clear the platform's faults
    in between (a write slowed past the excused margin would make every later ACW late)."""
    down_from = now()
    s.transcript.add(await asyncio.to_thread(process.metrics))
    await asyncio.to_thread(process.kill)
    if heal:
        await asyncio.to_thread(s.emu.control, "DELETE", "/_emulator/faults")
    replacement = await start_process(s, grace=grace, extra=extra)
    s.down.append((down_from, now()))
    return replacement


async def finish_with(s: Scenario, process: DaemonProcess) -> None:
    await s.settle(timeout=20)
    s.transcript.add(await asyncio.to_thread(process.metrics))
    assert await asyncio.to_thread(process.terminate) == 0


async def test_sigkill_during_the_grace_period_then_restart(scenario: ScenarioFactory) -> None:
    s = scenario("SIGKILL during the grace period, restart")
    grace = 20 * UNIT
    process = await start_process(s, grace=grace)
    try:
        await s.traffic(rate=40)
        await eventually(
            lambda: ledger_states(s.state_dir).get("pending", 0) >= 5,
            timeout=10,
            what="work items waiting out their grace period",
        )
        process = await kill_and_restart(s, process, grace=grace)
        await finish_with(s, process)
    finally:
        process.cleanup()
    assert_promises(s.finish(grace=grace))


async def test_sigkill_during_in_flight_writes_then_restart(scenario: ScenarioFactory) -> None:
    s = scenario("SIGKILL during in-flight writes, restart")
    process = await start_process(s, grace=0.0, extra=KEEP_PACE)
    try:
        await s.fault(**SLOW_PATCH, seconds=10 * UNIT, count=10_000)
        await s.traffic(rate=40)
        await eventually(
            lambda: ledger_states(s.state_dir).get("writing", 0) >= 2,
            timeout=10,
            what="writes in flight",
        )
        process = await kill_and_restart(s, process, grace=0.0, heal=True, extra=KEEP_PACE)
        await finish_with(s, process)
    finally:
        process.cleanup()
    assert_promises(s.finish(grace=0.0))


async def test_sigterm_drains_in_flight_writes_under_load(scenario: ScenarioFactory) -> None:
    s = scenario("SIGTERM drain under load, restart")
    process = await start_process(s, grace=0.0, extra=KEEP_PACE)
    try:
        await s.fault(**SLOW_PATCH, seconds=6 * UNIT, count=10_000)
        await s.traffic(rate=40)
        await eventually(
            lambda: ledger_states(s.state_dir).get("writing", 0) >= 2,
            timeout=10,
            what="writes in flight",
        )
        down_from = now()
        s.transcript.add(await asyncio.to_thread(process.metrics))
        assert await asyncio.to_thread(process.terminate) == 0
        assert ledger_states(s.state_dir).get("writing", 0) == 0, "in-flight writes were drained"
        stopped = [line for line in s.transcript.texts[-2].splitlines() if '"stopped"' in line]
        assert stopped and '"drained": true' in stopped[-1]
        await asyncio.to_thread(s.emu.control, "DELETE", "/_emulator/faults")
        process = await start_process(s, grace=0.0, extra=KEEP_PACE)
        s.down.append((down_from, now()))
        await finish_with(s, process)
    finally:
        process.cleanup()
    assert_promises(s.finish(grace=0.0))
