"""``wrapupd status`` as an operator runs it in an ssh session, against a running daemon."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

from e2e_harness import SUPPORT, UNIT, DaemonFactory, eventually, rule

from genesys_emulator.testing import RunningEmulator
from wrapupd.events import Outcome


async def wrapupd(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "wrapupd", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_status_prints_the_running_daemons_facts_and_exits_0_when_ready(
    emulator: RunningEmulator, start_daemon: DaemonFactory, tmp_path: Path
) -> None:
    daemon = await start_daemon((rule(SUPPORT),), listen=("127.0.0.1", 0))
    conv = emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="nothing")
    await eventually(
        lambda: daemon.parts.ledger.outcome_counts()[Outcome.APPLIED] == 1 or None,
        what="applied",
        blocking=False,
    )
    assert daemon.status_address is not None
    host, port = daemon.status_address
    config = tmp_path / "wrapupd.toml"
    config.write_text(
        '[genesys]\nregion = "mypurecloud.ie"\nclient_id = "x"\nclient_secret = "y"\n'
        '[[queues]]\nqueue = "Support"\ndefault_code = "x"\n'
        f'[http]\nlisten = "0.0.0.0:{port}"\n'
    )

    by_url = await wrapupd("status", "--url", f"http://{host}:{port}")
    by_config = await wrapupd("status", "--config", str(config))

    for result in (by_url, by_config):
        assert result.returncode == 0, result.stderr
        assert "READY" in result.stdout and "NOT READY" not in result.stdout
        support = next(
            line for line in result.stdout.splitlines() if line.strip().startswith(SUPPORT)
        )
        assert support.split()[-5:-3] == ["0", "1"]  # pending, applied today
        assert conv["conversationId"] in result.stdout


async def test_status_exits_69_when_no_daemon_answers_and_78_when_the_port_is_unknown(
    tmp_path: Path,
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    nobody = await wrapupd("status", "--url", f"http://127.0.0.1:{port}")
    assert nobody.returncode == 69 and "unreachable" in nobody.stderr
    config = tmp_path / "wrapupd.toml"
    config.write_text(
        '[genesys]\nregion = "mypurecloud.ie"\nclient_id = "x"\nclient_secret = "y"\n'
        '[[queues]]\nqueue = "Support"\ndefault_code = "x"\n[http]\nlisten = "127.0.0.1:0"\n'
    )
    unknown = await wrapupd("status", "--config", str(config))
    assert unknown.returncode == 78 and "--url" in unknown.stderr
