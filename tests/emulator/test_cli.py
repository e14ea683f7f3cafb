"""``python -m genesys_emulator``: one ready line, loopback only, clean stop on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request


def test_ready_line_then_clean_sigterm() -> None:
    command = [
        sys.executable,
        "-m",
        "genesys_emulator",
        "--port",
        "0",
        "--org",
        "demo",
        "--heartbeat",
        "0.5",
        "--traffic-rate",
        "5",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["ready"] is True
        assert ready["base_url"].startswith("http://127.0.0.1:")
        assert ready["client_id"] == "wrapupd-demo" and ready["client_secret"]
        with urllib.request.urlopen(ready["base_url"] + "/_emulator/org", timeout=5) as resp:
            assert len(json.load(resp)["queues"]) == 6
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stdout.read() == ""  # exactly one line on stdout
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_unknown_org_exits_78() -> None:
    command = [sys.executable, "-m", "genesys_emulator", "--org", "no-such-org"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=20)
    assert proc.returncode == 78 and "no-such-org" in proc.stderr


def test_every_option_flag_sets_its_option() -> None:
    from genesys_emulator.__main__ import options_from, parse_args

    args = parse_args(
        [
            "--overwrite-allowed",
            "--idle-close",
            "2.5",
            "--require-user-context",
            "--user-context-status",
            "403",
            "--wrapup-own-participant-only",
            "--refresh-token-lifetime",
            "60",
            "--keep-refresh-tokens",
            "--extra-queues",
            "100",
        ]
    )
    options = options_from(args)
    assert options.overwrite_allowed and options.require_user_context
    assert options.wrapup_own_participant_only and options.keep_refresh_tokens
    assert (options.idle_close_s, options.user_context_status) == (2.5, 403)
    assert (options.refresh_token_lifetime_s, options.extra_queues) == (60.0, 100)
    untouched = options_from(parse_args([]))
    assert not untouched.overwrite_allowed and untouched.user_context_status == 400
