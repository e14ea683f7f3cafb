"""The core promises of wrapupd, end to end: the real daemon, the real SDK, the emulator over
HTTP and WebSocket on loopback."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from e2e_harness import (
    BILLING,
    CALLBACKS,
    NO_CODE,
    RETENTION,
    SALES,
    SUPPORT,
    UNIT,
    UNWATCHED,
    DaemonFactory,
    eventually,
    final_wrapup,
    rule,
    sweeps,
    truth_for,
)

from genesys_emulator.testing import RunningEmulator
from wrapupd.events import Outcome
from wrapupd.reconciler import ReconcilerConfig
from wrapupd.service import Daemon


def outcome_of(daemon: Daemon, conversation_id: str, participant_id: str) -> Outcome | None:
    item = daemon.parts.ledger.get((conversation_id, participant_id))
    return item.outcome if item else None


@pytest.mark.parametrize(
    ("queue", "media", "code"),
    [
        (SUPPORT, "call", NO_CODE),
        (SALES, "chat", NO_CODE),
        (BILLING, "email", NO_CODE),
        (RETENTION, "message", NO_CODE),
        (CALLBACKS, "callback", "No answer"),
    ],
)
async def test_every_uncoded_participant_on_a_watched_queue_gets_its_queue_default(
    emulator: RunningEmulator, start_daemon: DaemonFactory, queue: str, media: str, code: str
) -> None:
    daemon = await start_daemon()
    conv = emulator.start_conversation(queue=queue, media=media, talk_s=UNIT, outcome="nothing")
    entry = await eventually(
        lambda: final_wrapup(emulator, conv["conversationId"]), what="a wrap-up"
    )
    assert entry["wrapup"]["by"] == "api"
    assert entry["wrapup"]["name"] == code
    assert entry["apiWrapupCalls"] == 1
    assert outcome_of(daemon, conv["conversationId"], conv["participantId"]) is Outcome.APPLIED


@pytest.mark.parametrize(
    "agent_delay_s", [0.0, 2 * UNIT], ids=["coded-at-once", "coded-during-grace"]
)
async def test_agent_chosen_code_is_never_overwritten(
    emulator: RunningEmulator, start_daemon: DaemonFactory, agent_delay_s: float
) -> None:
    daemon = await start_daemon((rule(SUPPORT, grace=10 * UNIT),))
    conv = emulator.start_conversation(
        queue=SUPPORT,
        talk_s=UNIT,
        outcome="agent_codes",
        agent_delay_s=agent_delay_s,
        code="Escalated",
    )
    cid, pid = conv["conversationId"], conv["participantId"]
    await eventually(
        lambda: outcome_of(daemon, cid, pid) is not None or None, what="an outcome", blocking=False
    )
    entry = truth_for(emulator, cid)[0]
    assert entry["wrapup"]["by"] == "agent"
    assert entry["wrapup"]["name"] == "Escalated"
    assert entry["apiWrapupCalls"] == 0
    assert outcome_of(daemon, cid, pid) is Outcome.ALREADY_CODED


async def test_unwatched_queues_and_non_agent_participants_are_never_touched(
    emulator: RunningEmulator, start_daemon: DaemonFactory
) -> None:
    await start_daemon((rule(SUPPORT),))
    unwatched = emulator.start_conversation(queue=UNWATCHED, talk_s=UNIT, outcome="nothing")
    mixed = emulator.start_conversation(
        queue=SUPPORT,
        talk_s=UNIT,
        outcome="nothing",
        extra_agents=[{"queue": UNWATCHED, "outcome": "nothing"}],
    )
    # The watched agent of the mixed conversation being coded proves the daemon saw both conversations' era.
    await eventually(
        lambda: final_wrapup(emulator, mixed["conversationId"]), what="the watched agent coded"
    )
    entries = {e["participantId"]: e for e in emulator.ground_truth()}
    watched_pid = mixed["participantId"]
    assert entries[watched_pid]["wrapup"]["by"] == "api"
    others = [e for pid, e in entries.items() if pid != watched_pid]
    assert {e["conversationId"] for e in others} >= {
        unwatched["conversationId"],
        mixed["conversationId"],
    }
    assert all(e["apiWrapupCalls"] == 0 and (e["wrapup"] or {}).get("by") is None for e in others)
    assert not [c for c in emulator.calls() if c["method"] == "PATCH" and c["count"] > 1]


@pytest.mark.parametrize("queue", ["Fast Timeout", "Fast Forced"])
async def test_time_boxed_queue_gets_the_default_before_the_platform_timeout(
    emulator: RunningEmulator, start_daemon: DaemonFactory, queue: str
) -> None:
    emulator.reset(org="test")
    await start_daemon(
        (rule(queue, grace=3600, margin=3 * UNIT),),
        client_id="test-client",
        client_secret="test-secret",
    )
    conv = emulator.start_conversation(queue=queue, talk_s=UNIT, outcome="nothing")
    entry = await eventually(
        lambda: final_wrapup(emulator, conv["conversationId"]), what="a wrap-up"
    )
    assert entry["wrapup"]["by"] == "api", "the platform's ININ-WRAP-UP-TIMEOUT won"
    assert entry["wrapup"]["name"] == NO_CODE


async def test_dry_run_writes_nothing(
    emulator: RunningEmulator, start_daemon: DaemonFactory
) -> None:
    from wrapupd.applier import ApplierConfig

    daemon = await start_daemon(applier=ApplierConfig(workers=2, dry_run=True))
    assert daemon.options.dry_run  # one setting: the applier's
    conv = emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="nothing")
    cid, pid = conv["conversationId"], conv["participantId"]
    await eventually(
        lambda: outcome_of(daemon, cid, pid) is Outcome.DRY_RUN or None,
        what="a dry-run outcome",
        blocking=False,
    )
    assert truth_for(emulator, cid)[0]["apiWrapupCalls"] == 0
    assert not [c for c in emulator.calls() if c["method"] == "PATCH"]


async def test_restart_mid_grace_resumes_without_loss_or_double_write(
    emulator: RunningEmulator, start_daemon: DaemonFactory, tmp_path: Path
) -> None:
    state = tmp_path / "shared-state"
    first = await start_daemon((rule(SUPPORT, grace=20 * UNIT),), state_dir=state)
    conv = emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="nothing")
    cid, pid = conv["conversationId"], conv["participantId"]
    await eventually(
        lambda: first.parts.ledger.get((cid, pid)) is not None or None,
        what="a pending item",
        blocking=False,
    )  # type: ignore[union-attr]
    await start_daemon.stop(first)
    assert truth_for(emulator, cid)[0]["apiWrapupCalls"] == 0, "the grace period had not passed"

    second = await start_daemon((rule(SUPPORT, grace=20 * UNIT),), state_dir=state)
    entry = await eventually(lambda: final_wrapup(emulator, cid), what="the resumed write")
    assert entry["wrapup"]["by"] == "api" and entry["apiWrapupCalls"] == 1
    # the platform saw the write before the daemon read its answer: wait for the record
    await eventually(
        lambda: outcome_of(second, cid, pid) is Outcome.APPLIED or None,
        what="the outcome recorded",
        blocking=False,
    )


async def test_write_that_landed_before_a_crash_is_not_repeated(
    emulator: RunningEmulator, start_daemon: DaemonFactory, tmp_path: Path
) -> None:
    state = tmp_path / "shared-state"
    first = await start_daemon((rule(SUPPORT),), state_dir=state)
    conv = emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="nothing")
    cid, pid = conv["conversationId"], conv["participantId"]
    await eventually(
        lambda: outcome_of(first, cid, pid) is Outcome.APPLIED or None,
        what="applied",
        blocking=False,
    )
    await start_daemon.stop(first)
    # Make the ledger look as if the process died between the PATCH landing and recording it.
    with sqlite3.connect(state / "wrapupd.sqlite3") as db:
        db.execute(
            "UPDATE work_items SET state='writing', outcome=NULL WHERE conversation_id=?", (cid,)
        )
    second = await start_daemon((rule(SUPPORT),), state_dir=state)
    await eventually(
        lambda: outcome_of(second, cid, pid) is Outcome.APPLIED or None,
        what="recovered outcome",
        blocking=False,
    )
    assert truth_for(emulator, cid)[0]["apiWrapupCalls"] == 1


async def test_missed_event_is_found_by_the_reconciler(
    emulator: RunningEmulator, start_daemon: DaemonFactory
) -> None:
    daemon = await start_daemon(
        reconciler=ReconcilerConfig(interval=4 * UNIT, end_lag=0.0, retry_delay=UNIT)
    )
    conv = emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="nothing", silent=True)
    entry = await eventually(
        lambda: final_wrapup(emulator, conv["conversationId"]), what="a reconciled wrap-up"
    )
    assert entry["wrapup"]["by"] == "api" and entry["apiWrapupCalls"] == 1
    assert sweeps(daemon) >= 1


async def test_dropped_socket_loses_nothing(
    emulator: RunningEmulator, start_daemon: DaemonFactory
) -> None:
    daemon = await start_daemon()
    convs = []
    for _ in range(3):
        emulator.fault(kind="drop_sockets")
        convs.append(emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="nothing"))
    for conv in convs:
        entry = await eventually(
            lambda c=conv: final_wrapup(emulator, c["conversationId"]), what="a wrap-up"
        )
        assert entry["wrapup"]["by"] == "api" and entry["apiWrapupCalls"] == 1
    assert daemon.parts.subscriber.epoch >= 1


async def test_missing_read_permission_is_reported_not_retried_and_nothing_is_written_blind(
    emulator: RunningEmulator, start_daemon: DaemonFactory
) -> None:
    """The `no-analytics` client may write codes but not read conversations: after a socket gap the
    state cannot be checked, so the item ends `forbidden` naming the permission, without a blind write."""
    daemon = await start_daemon(
        (rule(SUPPORT, grace=10 * UNIT),),
        client_id="no-analytics",
        client_secret="no-analytics-secret",
    )
    conv = emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="nothing")
    cid, pid = conv["conversationId"], conv["participantId"]
    await eventually(
        lambda: daemon.parts.ledger.get((cid, pid)) is not None or None,
        what="pending",
        blocking=False,
    )  # type: ignore[union-attr]
    emulator.fault(kind="drop_sockets")
    await eventually(
        lambda: outcome_of(daemon, cid, pid) is not None or None, what="an outcome", blocking=False
    )
    item = daemon.parts.ledger.get((cid, pid))
    assert item is not None and item.outcome is Outcome.FORBIDDEN
    assert "conversation:communication:view" in (item.detail or "")
    assert truth_for(emulator, cid)[0]["apiWrapupCalls"] == 0
    gets = sum(
        c["count"]
        for c in emulator.calls()
        if c["method"] == "GET" and c["path"] == "/api/v2/conversations/{id}"
    )
    assert gets == 1


async def test_a_burst_above_the_platform_window_is_paced_without_a_single_429(
    emulator: RunningEmulator, start_daemon: DaemonFactory
) -> None:
    """The bucket alone would burst into a fixed window the daemon already spent; the platform's
    inin-ratelimit-* headers keep it inside the window."""
    emulator.reset(rate_limit_per_window=20, rate_window_s=1.0)
    daemon = await start_daemon(
        (rule(SUPPORT),), budget_per_minute=1200.0, rate_limit_per_minute=1200.0
    )
    convs = [
        emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="nothing")
        for _ in range(40)
    ]

    def all_coded() -> bool:
        return all(final_wrapup(emulator, c["conversationId"]) for c in convs)

    await eventually(all_coded, timeout=20, what="every participant coded")
    assert not [c for c in emulator.calls() if c["status"] == 429]
    assert daemon.parts.metrics.registry.get_sample_value("wrapupd_rate_limited_total") == 0


async def test_a_write_that_lands_after_its_client_gave_up_is_ours_and_never_sent_twice(
    emulator: RunningEmulator, start_daemon: DaemonFactory
) -> None:
    """The platform applies our PATCH but its answer comes after the read timeout: the daemon must
    not write again, and the ledger must say the code is ours, not an agent's."""
    daemon = await start_daemon(read_timeout=1.0)
    emulator.fault(
        kind="late_answer",
        method="PATCH",
        path="/api/v2/conversations/*/participants/*",
        seconds=2.0,
        count=1,
    )
    conv = emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="nothing")
    cid, pid = conv["conversationId"], conv["participantId"]
    await eventually(
        lambda: outcome_of(daemon, cid, pid) is not None or None,
        timeout=10,
        what="an outcome",
        blocking=False,
    )

    item = daemon.parts.ledger.get((cid, pid))
    assert item is not None and item.outcome is Outcome.APPLIED, item
    entry = final_wrapup(emulator, cid)
    assert entry is not None and entry["wrapup"]["by"] == "api" and entry["apiWrapupCalls"] == 1
    assert item.code_id == entry["wrapup"]["code"]
    retries = daemon.parts.metrics.registry.get_sample_value(
        "wrapupd_retries_total", {"reason": "request_timeout"}
    )
    assert retries == 1  # the write timed out once: what was tested did happen
