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


async def start_process(s: Scenario, *, grace: float) -> DaemonProcess:
    port = free_port()
    config = write_config(
        s.tmp_path / f"wrapupd-{port}.toml", s.emu, state_dir=s.state_dir, port=port, grace=grace
    )
    process = DaemonProcess(config, port, s.transcript)
    process.start()
    try:
        await eventually(process.ready, timeout=30, what="/readyz 200")
    except AssertionError:
        process.cleanup()
        raise
    return process


async def kill_and_restart(s: Scenario, process: DaemonProcess, *, grace: float) -> DaemonProcess:
    down_from = now()
    s.transcript.add(await asyncio.to_thread(process.metrics))
    await asyncio.to_thread(process.kill)
    replacement = await start_process(s, grace=grace)
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
    process = await start_process(s, grace=0.0)
    try:
        await s.fault(**SLOW_PATCH, seconds=10 * UNIT, count=10_000)
        await s.traffic(rate=40)
        await eventually(
            lambda: ledger_states(s.state_dir).get("writing", 0) >= 2,
            timeout=10,
            what="writes in flight",
        )
        process = await kill_and_restart(s, process, grace=0.0)
        await asyncio.to_thread(s.emu.control, "DELETE", "/_emulator/faults")
        await finish_with(s, process)
    finally:
        process.cleanup()
    assert_promises(s.finish(grace=0.0))


async def test_sigterm_drains_in_flight_writes_under_load(scenario: ScenarioFactory) -> None:
    s = scenario("SIGTERM drain under load, restart")
    process = await start_process(s, grace=0.0)
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
        process = await start_process(s, grace=0.0)
        s.down.append((down_from, now()))
        await finish_with(s, process)
    finally:
        process.cleanup()
    assert_promises(s.finish(grace=0.0))
