"""The daemon on the shapes of real captures (issue 12), driven through the emulator's script keys:
several agent legs of one user, legs that rang out, wrapupRequired while connected, a connected
communication in ACW, capture-shaped analytics and stray keys. Exactly the legs in ACW without a
code get the default, once; the others are never written."""

from __future__ import annotations

from typing import Any

import pytest
from e2e_harness import SUPPORT, UNIT, DaemonFactory, eventually, final_wrapup, rule

from genesys_emulator.testing import RunningEmulator
from groundtruth.score import score
from wrapupd.service import Daemon


def clean_score(emulator: RunningEmulator, daemon: Daemon) -> None:
    result = score(emulator.ground_truth(), emulator.calls(), set(daemon.parts.codes.queue_ids))
    assert result.broken() == {}, result.offenders


def wrapup_writes(emulator: RunningEmulator) -> int:
    """Every wrap-up PATCH the platform received (on any participant), from the call log."""
    return sum(c["count"] for c in emulator.calls() if c["method"] == "PATCH")


async def coded_by_api(emulator: RunningEmulator, conv: dict[str, Any]) -> dict[str, Any]:
    entry = await eventually(lambda: final_wrapup(emulator, conv["conversationId"]))
    assert entry["wrapup"]["by"] == "api", entry
    return entry


@pytest.mark.parametrize("same_user", [True, False])
async def test_only_the_answering_leg_is_coded_when_others_rang_out(
    emulator: RunningEmulator, start_daemon: DaemonFactory, same_user: bool
) -> None:
    emulator.reset(capture_stray_keys=True)
    daemon = await start_daemon((rule(SUPPORT),))
    conv = emulator.start_conversation(
        queue=SUPPORT, talk_s=UNIT, outcome="nothing", not_responding=2, same_user=same_user
    )
    entry = await coded_by_api(emulator, conv)
    assert entry["participantId"] == conv["participantId"]
    rang_out = [p["participantId"] for p in conv["participants"] if not p["responding"]]
    assert len(rang_out) == 2
    assert wrapup_writes(emulator) == entry["apiWrapupCalls"] == 1, "no leg that rang out"
    assert all(daemon.parts.ledger.get((conv["conversationId"], p)) is None for p in rang_out)
    clean_score(emulator, daemon)


async def test_wrapup_required_while_connected_waits_for_acw(
    emulator: RunningEmulator, start_daemon: DaemonFactory
) -> None:
    daemon = await start_daemon((rule(SUPPORT),))
    conv = emulator.start_conversation(
        queue=SUPPORT, talk_s=20 * UNIT, outcome="nothing", wrapup_required_while_connected=True
    )
    entry = await coded_by_api(emulator, conv)
    assert entry["wrapup"]["at"] >= entry["acwStartedAt"], "never written while connected"
    assert entry["apiWrapupCalls"] == 1
    clean_score(emulator, daemon)


async def test_a_communication_still_connected_in_acw_is_coded(
    emulator: RunningEmulator, start_daemon: DaemonFactory
) -> None:
    daemon = await start_daemon((rule(SUPPORT),))
    conv = emulator.start_conversation(
        queue=SUPPORT, talk_s=UNIT, outcome="nothing", connected_in_acw=True
    )
    entry = await coded_by_api(emulator, conv)
    assert entry["apiWrapupCalls"] == 1
    clean_score(emulator, daemon)


async def test_reconciliation_reads_capture_shaped_analytics_and_codes_only_the_acw_leg(
    emulator: RunningEmulator, start_daemon: DaemonFactory
) -> None:
    emulator.reset(analytics_capture_shapes=True, capture_stray_keys=True)
    conv = emulator.start_conversation(
        queue=SUPPORT,
        talk_s=UNIT,
        outcome="nothing",
        silent=True,  # no events: only the start-up sweep can find it
        not_responding=1,
        same_user=True,
    )
    await eventually(lambda: emulator.ground_truth(), what="the leg in ACW")
    daemon = await start_daemon((rule(SUPPORT),))
    entry = await coded_by_api(emulator, conv)
    assert entry["participantId"] == conv["participantId"]
    assert wrapup_writes(emulator) == entry["apiWrapupCalls"] == 1, "no leg that rang out"
    clean_score(emulator, daemon)
