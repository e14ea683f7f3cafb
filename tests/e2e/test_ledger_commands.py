"""``wrapupd ledger`` as an operator runs it (a real process) beside a real daemon that filled the
ledger against the emulator: the export matches the emulator's ground truth, and a redrive of a
failed item ends in exactly one applied code once the cause is gone."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from e2e_harness import (
    CALLBACKS,
    SALES,
    SUPPORT,
    UNIT,
    DaemonFactory,
    eventually,
    rule,
    truth_for,
)

from genesys_emulator.testing import RunningEmulator
from wrapupd.applier import ApplierConfig
from wrapupd.events import Outcome
from wrapupd.ledger import EXPORT_COLUMNS
from wrapupd.service import Daemon
from wrapupd.settings import load_settings

CONVERSATION_PATH = "/api/v2/conversations/*"


def write_config(tmp_path: Path, emulator: RunningEmulator) -> Path:
    """The settings file an operator has: the daemon's own (its state_dir holds the ledger)."""
    path = tmp_path / "wrapupd.toml"
    path.write_text(
        f'[genesys]\napi_host = "{emulator.base_url}"\nclient_id = "{emulator.client_id}"\n'
        f'client_secret = "{emulator.client_secret}"\n'
        '[[queues]]\nqueue = "Support"\ndefault_code = "No code selected"\n'
        f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n'
    )
    return path


async def wrapupd(*args: str) -> subprocess.CompletedProcess[str]:
    """The command in its own process, while the daemon keeps serving on this loop."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "wrapupd", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def applied_by_api(emulator: RunningEmulator) -> dict[tuple[str, str], dict[str, Any]]:
    """Every participant the ground truth says wrapupd coded."""
    return {
        (e["conversationId"], e["participantId"]): e
        for e in emulator.ground_truth()
        if (e.get("wrapup") or {}).get("by") == "api"
    }


async def settled(daemon: Daemon, emulator: RunningEmulator, expected: int) -> None:
    """Wait until the emulator shows ``expected`` codes by wrapupd and the ledger has them on disk."""
    await eventually(lambda: len(applied_by_api(emulator)) >= expected or None, what="codes")
    await eventually(
        lambda: daemon.parts.ledger.outcome_counts()[Outcome.APPLIED] >= expected or None,
        what="applied outcomes in the ledger",
        blocking=False,
    )
    await daemon.parts.ledger.flush()


async def test_export_has_one_record_per_code_the_ground_truth_says_wrapupd_applied(
    emulator: RunningEmulator, start_daemon: DaemonFactory, tmp_path: Path
) -> None:
    daemon = await start_daemon((rule(SUPPORT), rule(SALES), rule(CALLBACKS, code="No answer")))
    config = write_config(tmp_path, emulator)
    for queue in (SUPPORT, SALES, CALLBACKS, SUPPORT):
        emulator.start_conversation(queue=queue, talk_s=UNIT, outcome="nothing")
    coded = emulator.start_conversation(
        queue=SUPPORT, talk_s=UNIT, outcome="agent_codes", agent_delay_s=0.0
    )
    await settled(daemon, emulator, 4)

    result = await wrapupd("ledger", "export", "--format", "csv", "--config", str(config))
    assert result.returncode == 0, result.stderr
    records = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(records[0]) == list(EXPORT_COLUMNS)
    truth = applied_by_api(emulator)
    assert len(records) == len(truth) == 4
    by_key = {(r["conversation_id"], r["participant_id"]): r for r in records}
    assert set(by_key) == set(truth)  # one record per code applied, none for the agent's own
    assert coded["conversationId"] not in {key[0] for key in by_key}
    for key, record in by_key.items():
        entry = truth[key]
        assert record["code_id"] == entry["wrapup"]["code"]
        assert record["code_name"] == entry["wrapup"]["name"]
        assert record["queue_id"] == entry["queueId"]
        assert record["user_id"] == entry["userId"]
        assert (record["outcome"], record["dry_run"]) == ("applied", "false")
        assert int(record["latency_ms"]) >= 0

    jsonl = await wrapupd("ledger", "export", "--format", "jsonl", "--config", str(config))
    lines = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [(j["conversation_id"], j["code_id"]) for j in lines] == [
        (r["conversation_id"], r["code_id"]) for r in records
    ]


async def test_list_and_show_read_the_running_daemons_ledger(
    emulator: RunningEmulator, start_daemon: DaemonFactory, tmp_path: Path
) -> None:
    daemon = await start_daemon((rule(SUPPORT), rule(SALES)))
    config = write_config(tmp_path, emulator)
    applied = emulator.start_conversation(queue=SALES, talk_s=UNIT, outcome="nothing")
    coded = emulator.start_conversation(
        queue=SUPPORT, talk_s=UNIT, outcome="agent_codes", agent_delay_s=0.0
    )
    await settled(daemon, emulator, 1)
    await eventually(
        lambda: daemon.parts.ledger.outcome_counts()[Outcome.ALREADY_CODED] or None,
        what="the agent's own code noticed",
        blocking=False,
    )

    listing = await wrapupd("ledger", "list", "--state", "applied", "--config", str(config))
    assert listing.returncode == 0, listing.stderr
    assert applied["conversationId"] in listing.stdout
    assert coded["conversationId"] not in listing.stdout
    by_queue = await wrapupd("ledger", "list", "--queue", "support", "--config", str(config))
    assert coded["conversationId"] in by_queue.stdout
    assert applied["conversationId"] not in by_queue.stdout

    shown = await wrapupd("ledger", "show", applied["conversationId"], "--config", str(config))
    assert shown.returncode == 0, shown.stderr
    assert "state applied" in shown.stdout and "No code selected" in shown.stdout
    for event in ("seen", "write", "outcome"):
        assert event in shown.stdout, shown.stdout
    missing = await wrapupd("ledger", "show", "no-such-conversation", "--config", str(config))
    assert missing.returncode == 1
    assert "no work item for no-such-conversation" in missing.stderr


async def test_redrive_of_a_failed_item_applies_exactly_one_code_once_the_cause_is_removed(
    emulator: RunningEmulator, start_daemon: DaemonFactory, tmp_path: Path
) -> None:
    """Transient errors never end an item (they back off for as long as ACW can last), so the
    failure here is one the platform gives as final: the state check refused with 409 (a grace
    period, so that the write waits for a check: a sighting already due is its own proof)."""
    daemon = await start_daemon(
        (rule(SUPPORT, grace=UNIT),),
        applier=ApplierConfig(retry_initial_seconds=UNIT / 5, retry_max_seconds=UNIT),
    )
    config = write_config(tmp_path, emulator)
    emulator.fault(kind="http", method="GET", path=CONVERSATION_PATH, status=409, count=1000)
    conv = emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="nothing")
    key = (conv["conversationId"], conv["participantId"])
    await eventually(
        lambda: (daemon.parts.ledger.get(key) or _Nothing).outcome is Outcome.FAILED or None,
        what="the item failed",
        blocking=False,
    )
    await daemon.parts.ledger.flush()
    failed = await wrapupd("ledger", "list", "--state", "failed", "--config", str(config))
    assert conv["conversationId"] in failed.stdout

    emulator.control("DELETE", "/_emulator/faults")  # the cause is removed
    dry = await wrapupd("ledger", "redrive", "--dry-run", "--config", str(config))
    assert dry.returncode == 0 and "1 item(s) would redrive" in dry.stdout
    assert daemon.parts.ledger.get(key).outcome is Outcome.FAILED  # type: ignore[union-attr]

    redriven = await wrapupd("ledger", "redrive", "--state", "failed", "--config", str(config))
    assert redriven.returncode == 0, redriven.stderr
    assert conv["conversationId"] in redriven.stdout and "1 item(s) redriven" in redriven.stdout
    await eventually(
        lambda: (daemon.parts.ledger.get(key) or _Nothing).outcome is Outcome.APPLIED or None,
        what="applied after the redrive",
        blocking=False,
    )
    (entry,) = truth_for(emulator, conv["conversationId"])
    assert entry["wrapup"]["by"] == "api"
    assert entry["apiWrapupWrites"] == 1  # the failed item never wrote before its redrive
    assert [h["by"] for h in entry["history"]] == ["api"]
    again = await wrapupd("ledger", "redrive", "--config", str(config))
    assert "0 item(s) redriven" in again.stdout
    export = await wrapupd("ledger", "export", "--config", str(config))
    assert export.stdout.count(conv["conversationId"]) == 1


async def test_ledger_commands_explain_a_missing_ledger_and_bad_input(tmp_path: Path) -> None:
    config = tmp_path / "wrapupd.toml"
    config.write_text(
        '[genesys]\napi_host = "http://127.0.0.1:9"\nclient_id = "x"\nclient_secret = "y"\n'
        '[[queues]]\nqueue = "Support"\ndefault_code = "x"\n'
        f'[daemon]\nstate_dir = "{tmp_path / "nowhere"}"\n'
    )
    missing = await wrapupd("ledger", "list", "--config", str(config))
    assert missing.returncode == 78
    assert "no ledger at" in missing.stderr and "state_dir" in missing.stderr
    bad_since = await wrapupd("ledger", "export", "--since", "last week", "--config", str(config))
    assert bad_since.returncode == 2 and "ISO-8601" in bad_since.stderr
    bad_state = await wrapupd("ledger", "redrive", "--state", "applied", "--config", str(config))
    assert bad_state.returncode == 2 and "invalid choice" in bad_state.stderr


class _Nothing:
    outcome = None


async def test_retention_days_0_keeps_every_finished_item_across_restarts(
    emulator: RunningEmulator, start_daemon: DaemonFactory, tmp_path: Path
) -> None:
    """Sites that must keep the audit trail set ``retention_days = 0``: nothing is purged."""
    config = write_config(tmp_path, emulator)
    config.write_text(config.read_text() + "retention_days = 0\n")
    assert load_settings(config).daemon_options().retention_days == 0
    daemon = await start_daemon((rule(SUPPORT),), retention_days=0)
    conv = emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="nothing")
    await settled(daemon, emulator, 1)
    await start_daemon.stop(daemon)

    restarted = await start_daemon((rule(SUPPORT),), retention_days=0)  # purges at start-up

    item = restarted.parts.ledger.get((conv["conversationId"], conv["participantId"]))
    assert item is not None and item.outcome is Outcome.APPLIED
