"""The commands as an operator runs them: real processes, real exit codes, readable messages."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from e2e_harness import SUPPORT, UNIT, eventually, final_wrapup

from genesys_emulator.testing import RunningEmulator
from wrapupd.clock import SystemClock
from wrapupd.commands.apply import apply_one
from wrapupd.events import Outcome
from wrapupd.settings import load_settings


def write_config(
    path: Path,
    emulator: RunningEmulator,
    queues: str,
    *,
    client: tuple[str, str] | None = None,
    extra: str = "",
) -> Path:
    client_id, secret = client or (emulator.client_id, emulator.client_secret)
    path.write_text(
        f"""
[genesys]
api_host = "{emulator.base_url}"
client_id = "{client_id}"
client_secret = "{secret}"

[defaults]
grace_seconds = 0
timeout_margin_seconds = 1
notes = "wrapupd cli test"

{queues}

[daemon]
state_dir = "{path.parent / "state"}"
{extra}

[log]
format = "json"
level = "info"
"""
    )
    return path


SUPPORT_QUEUE = '[[queues]]\nqueue = "Support"\ndefault_code = "No code selected"\n'


def wrapupd(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wrapupd", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_unknown_queue_fails_start_up_with_exit_78_and_lists_what_exists(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "w.toml",
        emulator,
        '[[queues]]\nqueue = "Suport"\ndefault_code = "No code selected"\n',
    )
    result = wrapupd("run", "--config", str(config))
    assert result.returncode == 78, result.stderr
    assert "'Suport' not found" in result.stderr and "'Support'" in result.stderr


def test_code_not_assigned_to_the_queue_fails_start_up_with_exit_78(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "w.toml",
        emulator,
        '[[queues]]\nqueue = "Support"\ndefault_code = "Sale closed"\n',
    )
    result = wrapupd("run", "--config", str(config))
    assert result.returncode == 78
    assert "'Sale closed' is not assigned to queue 'Support'" in result.stderr
    assert "'No code selected'" in result.stderr


def test_bad_setting_exits_78_naming_the_setting(tmp_path: Path) -> None:
    config = tmp_path / "w.toml"
    config.write_text(
        '[genesys]\nregion = "mypurecloud.ie"\nclient_id = "x"\nclient_secret = "s3cr3t-value"\n'
        '[[queues]]\nqueue = "Support"\ndefault_code = "x"\ngrace_seconds = -1\n'
    )
    result = wrapupd("check", "--config", str(config))
    assert result.returncode == 78
    assert "queues[0].grace_seconds" in result.stderr
    assert "s3cr3t-value" not in result.stderr + result.stdout


def test_unreachable_platform_at_start_is_waited_out_not_exited(tmp_path: Path) -> None:
    """Issue 11 finding 7: exiting 69 at start turned an outage into a restart loop that systemd's
    start limit ended for good. ``run`` stays up (alive, not ready), retries, and stops cleanly."""
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "w.toml"
    config.write_text(
        f'[genesys]\napi_host = "http://127.0.0.1:{port}"\nclient_id = "x"\nclient_secret = "y"\n'
        f'[[queues]]\nqueue = "Support"\ndefault_code = "x"\n[daemon]\nstate_dir = "{tmp_path}"\n'
        '[log]\nformat = "json"\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "wrapupd", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        waiting = _lines_until(proc.stdout, "startup_waiting", 60)
        assert any("startup_waiting" in line for line in waiting), waiting
        again = _lines_until(proc.stdout, "startup_waiting", 60)
        assert any("startup_waiting" in line for line in again), "it keeps trying"
        assert proc.poll() is None, "the daemon exited during the outage"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def _lines_until(stream: object, marker: str, timeout: float) -> list[str]:
    """Read lines until one holds ``marker`` (the second retry proves the daemon keeps trying)."""
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = stream.readline()  # type: ignore[attr-defined]
        if not line:
            break
        lines.append(line)
        if marker in line:
            break
    return lines


def test_wrong_secret_exits_78_without_printing_it(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "w.toml",
        emulator,
        SUPPORT_QUEUE,
        client=(emulator.client_id, "not-the-secret-42"),
    )
    result = wrapupd("run", "--config", str(config))
    assert result.returncode == 78
    assert "authentication failed" in result.stderr
    assert "not-the-secret-42" not in result.stderr + result.stdout


def test_check_prints_the_queue_table_and_exits_0(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    queues = SUPPORT_QUEUE + '[[queues]]\nqueue = "Callbacks"\ndefault_code = "No answer"\n'
    result = wrapupd("check", "--config", str(write_config(tmp_path / "w.toml", emulator, queues)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "Support" in result.stdout
        and "No code selected" in result.stdout
        and "No answer" in result.stdout
    )
    assert "all good" in result.stdout


def test_check_reports_a_rejected_topic_with_the_missing_permission(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    queues = SUPPORT_QUEUE + '[[queues]]\nqueue = "Sales"\ndefault_code = "No code selected"\n'
    config = write_config(
        tmp_path / "w.toml", emulator, queues, client=("support-only", "support-only-secret")
    )
    result = wrapupd("check", "--config", str(config))
    assert result.returncode == 78
    assert "Sales" in result.stdout and (
        "not found" in result.stdout or "rejected" in result.stdout
    )


def test_check_tries_the_reconciliation_query_and_names_its_permission(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    """Without analytics:conversationDetail:view the daemon runs but cannot recover what a socket
    gap hid: ``check`` says so before it matters."""
    fine = wrapupd(
        "check", "--config", str(write_config(tmp_path / "ok.toml", emulator, SUPPORT_QUEUE))
    )
    assert "(reconciliation)" in fine.stdout and fine.returncode == 0, fine.stdout
    config = write_config(
        tmp_path / "w.toml", emulator, SUPPORT_QUEUE, client=("no-analytics", "no-analytics-secret")
    )
    result = wrapupd("check", "--config", str(config))
    assert result.returncode == 78
    row = next(line for line in result.stdout.splitlines() if "(reconciliation)" in line)
    assert "analytics:conversationDetail:view" in row


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


async def test_run_applies_codes_and_sigterm_exits_0(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    port = free_port()
    config = write_config(
        tmp_path / "w.toml",
        emulator,
        SUPPORT_QUEUE,
        extra=f'\n[http]\nlisten = "127.0.0.1:{port}"\n',
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "wrapupd", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        await eventually(lambda: readyz(port) == 200 or None, timeout=30, what="/readyz 200")
        conv = emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="nothing")
        entry = await eventually(
            lambda: final_wrapup(emulator, conv["conversationId"]), what="a wrap-up"
        )
        assert entry["wrapup"]["by"] == "api"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert '"event": "stopped"' in out or '"event":"stopped"' in out
    assert emulator.client_secret not in out + err


@pytest.fixture
def apply_settings(emulator: RunningEmulator, tmp_path: Path):  # type: ignore[no-untyped-def]
    def make(client: tuple[str, str] | None = None):  # type: ignore[no-untyped-def]
        return load_settings(
            write_config(tmp_path / "w.toml", emulator, SUPPORT_QUEUE, client=client), env={}
        )

    return make


async def in_acw(emulator: RunningEmulator, **kw: object) -> dict[str, str]:
    conv = emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="nothing", **kw)
    await eventually(
        lambda: [
            e for e in emulator.ground_truth() if e["conversationId"] == conv["conversationId"]
        ],
        what="ACW",
    )
    return conv


async def test_apply_one_shot_outcomes(emulator: RunningEmulator, apply_settings) -> None:  # type: ignore[no-untyped-def]
    settings = apply_settings()

    async def apply(conv: dict[str, str], code: str = "Resolved", s=settings):  # type: ignore[no-untyped-def]
        return await apply_one(
            s,
            conversation_id=conv["conversationId"],
            participant_id=conv["participantId"],
            code_ref=code,
            notes=None,
            dry_run=False,
            clock=SystemClock(),
        )

    fresh = await in_acw(emulator)
    assert (await apply(fresh)).outcome is Outcome.APPLIED
    assert (await apply(fresh)).outcome is Outcome.ALREADY_CODED

    invalid = await in_acw(emulator)
    result = await apply(invalid, code="Sale closed")
    assert result.outcome is Outcome.INVALID_CODE and "Resolved" in result.detail

    ended = await in_acw(emulator)
    emulator.action(ended["conversationId"], action="end_acw")
    assert (await apply(ended)).outcome is Outcome.TOO_LATE

    forbidden = await apply(
        await in_acw(emulator), s=apply_settings(("no-wrapup", "no-wrapup-secret"))
    )
    assert (
        forbidden.outcome is Outcome.FORBIDDEN
        and "conversation:participant:wrapup" in forbidden.detail
    )
    assert forbidden.exit_code == 13

    limited = await in_acw(emulator)
    emulator.fault(
        kind="http",
        method="PATCH",
        path="/api/v2/conversations/*/participants/*",
        status=429,
        retry_after=0,
        count=2,
    )
    assert (await apply(limited)).outcome is Outcome.APPLIED
    assert [e for e in emulator.ground_truth() if e["conversationId"] == limited["conversationId"]][
        0
    ]["wrapup"]["by"] == "api"


def test_apply_command_prints_one_line_and_exits_with_the_outcome_code(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    conv = emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="nothing")
    deadline = time.monotonic() + 5
    while not [e for e in emulator.ground_truth() if e["conversationId"] == conv["conversationId"]]:
        assert time.monotonic() < deadline
        time.sleep(UNIT / 5)
    config = write_config(tmp_path / "w.toml", emulator, SUPPORT_QUEUE)
    args = (
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
    first = wrapupd(*args)
    assert first.returncode == 0 and first.stdout.startswith("applied:"), first.stderr
    second = wrapupd(*args)
    assert second.returncode == 10 and second.stdout.startswith("already_coded:")


def test_demo_runs_against_the_simulated_org_and_reports_ground_truth_figures() -> None:
    result = wrapupd("demo", "--duration", "3", "--rate", "4", "--json", timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    expected = {
        "conversations",
        "acw_without_code",
        "applied",
        "agent_coded_untouched",
        "missed",
        "doubled",
        "overwritten",
        "latency_ms_p50",
        "latency_ms_p99",
        "api_calls",
    }
    assert expected <= set(summary)
    assert summary["conversations"] > 0 and summary["applied"] > 0
    assert summary["missed"] == summary["doubled"] == summary["overwritten"] == 0
    assert (
        summary["api_calls"]["PATCH /api/v2/conversations/{id}/participants/{pid}"]
        == summary["applied"]
    )
