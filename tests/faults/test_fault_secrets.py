"""No token and no channel id in any log line (issue 11): every line the daemon wrote during a row
with socket drops (so several channels), scanned for every token the emulator issued
(``/_emulator/tokens``) and every channel id it created (``/_emulator/channels``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from faults_harness import UNIT, InProcess, Scenario, assert_promises, created_channels
from test_fault_platform import run_matrix_row

from wrapupd.service import Daemon

InProcessFactory = Callable[[Scenario], InProcess]
ScenarioFactory = Callable[[str], Scenario]


async def test_no_token_or_channel_id_reaches_a_log_line(
    scenario: ScenarioFactory, in_process: InProcessFactory
) -> None:
    rows: list[Scenario] = []

    async def drops(s: Scenario, d: Daemon) -> None:
        rows.append(s)
        for _ in range(3):
            await asyncio.sleep(6 * UNIT)
            s.channel_ids.update(created_channels(s.emu))
            s.emu.fault(kind="drop_sockets")
            s.emu.fault(kind="expire_channels")

    result, _, _ = await run_matrix_row(
        scenario, in_process, "no token or channel id in any log line", drops
    )  # finish() asserts no token leaked (tokens: the harness's own scan)
    assert_promises(result)
    (s,) = rows
    assert len(s.channel_ids) >= 2, "the row created several channels"
    assert not s.channel_leaks, f"channel ids in the daemon's log lines: {s.channel_leaks}"
