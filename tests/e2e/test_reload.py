"""Reload (SIGHUP, ``systemctl reload``): what can change safely is put in force at once (dry_run
first), everything else is kept and named as needing a restart, a bad file changes nothing, and the
``reloaded`` line says exactly what changed with no secret in it."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from e2e_harness import SUPPORT, UNIT, DaemonFactory, eventually, final_wrapup, rule, truth_for
from structlog.testing import capture_logs
from test_lifecycle import free_port, readyz

from genesys_emulator.testing import RunningEmulator
from wrapupd.commands import run
from wrapupd.errors import ConfigError
from wrapupd.events import Outcome
from wrapupd.ledger import ledger_path
from wrapupd.service import Daemon

NEW_SECRET = "a-new-client-secret-never-printed"


def outcome_of(daemon: Daemon, conversation: dict[str, Any]) -> Outcome | None:
    item = daemon.parts.ledger.get((conversation["conversationId"], conversation["participantId"]))
    return item.outcome if item else None


async def settled(daemon: Daemon, conversation: dict[str, Any]) -> Outcome:
    outcome: Outcome = await eventually(
        lambda: outcome_of(daemon, conversation), what="an outcome", blocking=False
    )
    return outcome


def patches(emulator: RunningEmulator) -> int:
    return len([c for c in emulator.calls() if c["method"] == "PATCH"])


def with_dry_run(daemon: Daemon, dry_run: bool) -> Any:
    options = daemon.options
    return replace(options, applier=replace(options.applier, dry_run=dry_run))


def reloaded_lines(captured: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in captured if e["event"] == "reloaded"]


async def test_after_a_reload_to_dry_run_nothing_is_written_and_back_writes_resume(
    emulator: RunningEmulator, start_daemon: DaemonFactory
) -> None:
    daemon = await start_daemon((rule(SUPPORT),))
    with capture_logs() as captured:
        await daemon.reload(with_dry_run(daemon, True))
    assert reloaded_lines(captured)[0]["changed"] == {"dry_run": [False, True]}
    assert daemon.options.dry_run
    assert (await daemon.status.status_report()).dry_run, "the status page says so too"

    dry = emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="nothing")
    assert await settled(daemon, dry) is Outcome.DRY_RUN
    assert truth_for(emulator, dry["conversationId"])[0]["apiWrapupCalls"] == 0
    assert patches(emulator) == 0

    await daemon.reload(with_dry_run(daemon, False))
    wet = emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="nothing")
    assert await settled(daemon, wet) is Outcome.APPLIED
    entry = final_wrapup(emulator, wet["conversationId"])
    assert entry is not None and entry["wrapup"]["by"] == "api" and entry["apiWrapupCalls"] == 1


async def test_a_reloaded_budget_is_the_rate_limiters_rate(start_daemon: DaemonFactory) -> None:
    daemon = await start_daemon((rule(SUPPORT),))
    with capture_logs() as captured:
        await daemon.reload(replace(daemon.options, budget_per_minute=120.0))
    assert daemon.parts.limiter.rate_per_minute == pytest.approx(120.0)
    assert (await daemon.status.status_report()).budget.per_minute == 120.0
    assert daemon.options.budget_per_minute == 120.0
    assert reloaded_lines(captured)[0]["changed"] == {"budget_per_minute": [6000.0, 120.0]}


async def test_a_setting_that_needs_a_restart_is_named_and_not_applied(
    emulator: RunningEmulator, start_daemon: DaemonFactory
) -> None:
    daemon = await start_daemon((rule(SUPPORT),))
    before = daemon.options
    wanted = replace(
        before,
        api_host="https://api.elsewhere.test",
        client_secret=NEW_SECRET,
        applier=replace(before.applier, workers=9, dry_run=True),
    )
    with capture_logs() as captured:
        await daemon.reload(wanted)
    refused = [e for e in captured if e["event"] == "setting_needs_restart"]
    assert [e["setting"] for e in refused] == ["api_host", "client_secret", "applier.workers"]
    assert all(e["log_level"] == "warning" and "restart" in e["hint"] for e in refused)
    line = reloaded_lines(captured)[0]
    assert line["restart_needed"] == ["api_host", "client_secret", "applier.workers"]
    assert line["changed"] == {"dry_run": [False, True]}
    assert NEW_SECRET not in json.dumps(captured, default=str)
    kept = daemon.options
    assert (kept.api_host, kept.client_secret, kept.applier.workers) == (
        before.api_host,
        before.client_secret,
        before.applier.workers,
    )
    conv = emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="nothing")
    assert await settled(daemon, conv) is Outcome.DRY_RUN  # what could change did


async def test_a_reload_with_a_bad_queue_table_changes_nothing(
    emulator: RunningEmulator, start_daemon: DaemonFactory
) -> None:
    daemon = await start_daemon((rule(SUPPORT),))
    bad = replace(with_dry_run(daemon, True), policies=(rule(SUPPORT, code="Not A Code"),))
    with capture_logs() as captured, pytest.raises(ConfigError, match="Not A Code"):
        await daemon.reload(bad)
    assert not reloaded_lines(captured)
    assert not daemon.options.dry_run
    conv = emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="nothing")
    assert await settled(daemon, conv) is Outcome.APPLIED


async def test_an_invalid_settings_file_is_rejected_and_the_daemon_keeps_serving(
    emulator: RunningEmulator, start_daemon: DaemonFactory, tmp_path: Path
) -> None:
    daemon = await start_daemon((rule(SUPPORT),))
    config = tmp_path / "wrapupd.toml"
    config.write_text('[daemon]\ndry_run = "sometimes"\n')
    with capture_logs() as captured:
        await run.reload_settings(daemon, config)
    rejected = [e for e in captured if e["event"] == "reload_rejected"]
    assert rejected and "dry_run" in rejected[0]["error"] and rejected[0]["log_level"] == "error"
    assert not daemon.options.dry_run
    conv = emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="nothing")
    assert await settled(daemon, conv) is Outcome.APPLIED


# --- SIGHUP, on a real process ---------------------------------------------------------------------


def config_text(
    emulator: RunningEmulator,
    state: Path,
    port: int,
    *,
    secret: str,
    extra: str = "",
    level: str = "info",
) -> str:
    return f"""
[genesys]
api_host = "{emulator.base_url}"
client_id = "{emulator.client_id}"
client_secret = "{secret}"
[defaults]
grace_seconds = 0
[[queues]]
queue = "Support"
default_code = "No code selected"
[daemon]
state_dir = "{state}"
drain_seconds = 5
{extra}
[http]
listen = "127.0.0.1:{port}"
[log]
format = "json"
level = "{level}"
"""


def events_in(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


async def test_sighup_applies_dry_run_and_log_level_and_names_what_needs_a_restart(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    port, state, config = free_port(), tmp_path / "state", tmp_path / "wrapupd.toml"
    config.write_text(config_text(emulator, state, port, secret=emulator.client_secret))
    out_path, err_path = tmp_path / "out.log", tmp_path / "err.log"
    with out_path.open("w") as out, err_path.open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "wrapupd", "run", "--config", str(config)],
            stdout=out,
            stderr=err,
        )
    try:
        await eventually(lambda: _ready(port), timeout=30, what="ready")
        config.write_text(
            config_text(
                emulator,
                state,
                port,
                secret=NEW_SECRET,
                extra="dry_run = true\nworkers = 7",
                level="warning",
            )
        )
        process.send_signal(signal.SIGHUP)
        line = await eventually(
            lambda: next((e for e in events_in(out_path) if e["event"] == "reloaded"), None),
            what="the reloaded line",
        )
        assert line["changed"] == {"dry_run": [False, True], "log.level": ["info", "warning"]}
        assert line["restart_needed"] == ["client_secret", "applier.workers"]
        conv = emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="nothing")
        cid = conv["conversationId"]
        assert await eventually(lambda: ledger_outcome(state, cid), what="an outcome") == "dry_run"
        assert truth_for(emulator, cid)[0]["apiWrapupCalls"] == 0
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    assert process.returncode == 0, err_path.read_text()[-2000:]
    text = out_path.read_text() + err_path.read_text()
    assert NEW_SECRET not in text and emulator.client_secret not in text
    events = events_in(out_path)
    after = events[next(i for i, e in enumerate(events) if e["event"] == "reloaded") + 1 :]
    # the dry-run outcome, "stopping" and "stopped" happened after it: info lines, now filtered
    assert [e["event"] for e in after if e["level"] == "info"] == []


def ledger_outcome(state: Path, conversation_id: str) -> str | None:
    with contextlib.closing(sqlite3.connect(f"file:{ledger_path(state)}?mode=ro", uri=True)) as db:
        row = db.execute(
            "SELECT outcome FROM work_items WHERE conversation_id = ?", (conversation_id,)
        ).fetchone()
    return None if row is None else row[0]


def _ready(port: int) -> bool | None:
    try:
        return readyz(port)[0] == 200 or None
    except OSError:
        return None
