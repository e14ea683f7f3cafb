"""Two processes on one SQLite ledger (two replicas on one volume) never both write: the second one
exits 78 and says why, while the first keeps serving."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from genesys_emulator.testing import RunningEmulator


def config(path: Path, emulator: RunningEmulator) -> Path:
    path.write_text(
        f"""
[genesys]
api_host = "{emulator.base_url}"
client_id = "{emulator.client_id}"
client_secret = "{emulator.client_secret}"

[[queues]]
queue = "Support"
default_code = "No code selected"

[daemon]
state_dir = "{path.parent / "state"}"

[http]
listen = "127.0.0.1:0"

[log]
format = "json"
"""
    )
    return path


def wait_for_line(process: subprocess.Popen[str], needle: str, timeout: float = 60) -> None:
    """Read the process's log until ``needle`` appears (it logs each start-up step)."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if needle in line:
            return
        if not line and process.poll() is not None:
            raise AssertionError(f"the first process ended ({process.returncode}) before {needle}")
    raise AssertionError(f"no {needle!r} within {timeout} s")


def test_a_second_process_on_one_sqlite_ledger_exits_78_with_the_reason(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    settings = config(tmp_path / "wrapupd.toml", emulator)
    command = [sys.executable, "-m", "wrapupd", "run", "--config", str(settings)]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_line(first, '"ready"')
        second = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert second.returncode == 78, second.stderr
        assert "two replicas on one SQLite ledger" in second.stderr
        assert str(first.pid) in second.stderr  # names the holder
        assert first.poll() is None  # the first one keeps serving
    finally:
        first.terminate()
        first.communicate(timeout=30)
    assert first.returncode == 0
