"""``wrapupd check`` tells what the org accepts: a harmless probe write on a conversation that does
not exist answers 404 for a grant that may write wrap-ups, and the user-context refusal otherwise."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from test_commands import SUPPORT_QUEUE, wrapupd, write_config
from test_user_context_grant import wrapupd_login

from genesys_emulator.testing import RunningEmulator


@pytest.mark.parametrize("status", [400, 403])
def test_check_with_client_credentials_exits_78_when_the_org_requires_a_user_context(
    emulator: RunningEmulator, tmp_path: Path, status: int
) -> None:
    emulator.reset(require_user_context=True, user_context_status=status)
    config = write_config(tmp_path / "w.toml", emulator, SUPPORT_QUEUE)
    result = wrapupd("check", "--config", str(config))
    assert result.returncode == 78, result.stdout + result.stderr
    assert "requires a user context" in result.stdout
    assert 'grant = "authorization_code"' in result.stdout and "wrapupd login" in result.stdout
    probes = [c for c in emulator.calls() if c.get("method") == "PATCH"]
    assert probes and all(c.get("status") == status for c in probes)
    assert emulator.ground_truth() == [], "the probe changed nothing"


def test_check_says_the_grant_may_write_wrapups_when_the_probe_answers_404(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "w.toml", emulator, SUPPORT_QUEUE)
    result = wrapupd("check", "--config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "wrap-up writes: accepted for this grant" in result.stdout


async def test_check_with_the_signed_in_user_says_writes_are_accepted(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    emulator.reset(require_user_context=True)
    await wrapupd_login(emulator, tmp_path)
    config = tmp_path / "w.toml"  # the login's settings: grant = "authorization_code"
    result = await asyncio.to_thread(wrapupd, "check", "--config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "wrap-up writes: accepted for this grant (authorization_code)" in result.stdout


def test_apply_with_client_credentials_on_a_user_context_org_names_the_remedy(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    emulator.reset(require_user_context=True)
    conv = emulator.start_conversation(queue="Support", talk_s=0.05, outcome="nothing")
    deadline = time.monotonic() + 5
    while not emulator.ground_truth():
        assert time.monotonic() < deadline, "never in ACW"
        time.sleep(0.01)
    config = write_config(tmp_path / "w.toml", emulator, SUPPORT_QUEUE)
    result = wrapupd(
        "apply",
        "--config",
        str(config),
        "--conversation",
        conv["conversationId"],
        "--participant",
        conv["participantId"],
        "--code",
        "Resolved",
    )
    assert result.returncode == 78
    assert "requires a user context" in result.stderr
    assert 'grant = "authorization_code"' in result.stderr and "wrapupd login" in result.stderr
    assert emulator.ground_truth()[0]["wrapup"]["by"] is None, "nothing written"
