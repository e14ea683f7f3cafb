"""The core promises of wrapupd, end to end against the emulator."""

from __future__ import annotations

from genesys_emulator.testing import RunningEmulator

from e2e_harness import NO_CODE, SUPPORT, DaemonFactory, eventually, final_wrapup


async def test_uncoded_participant_on_watched_queue_gets_the_default_code(
    emulator: RunningEmulator, start_daemon: DaemonFactory
) -> None:
    await start_daemon()
    conv = emulator.start_conversation(queue=SUPPORT, media="call", talk_s=0.05, outcome="nothing")
    entry = await eventually(lambda: final_wrapup(emulator, conv["conversationId"]), what="a wrap-up")
    assert entry["wrapup"]["by"] == "api"
    assert entry["wrapup"]["name"] == NO_CODE
    assert entry["apiWrapupCalls"] == 1
