"""In-socket control frames against the emulator: a dying channel's ``{"result": "404"}`` frame
replaces it at once and the gap is reconciled; an idle 1001 close is a routine reconnect."""

from __future__ import annotations

from e2e_harness import SUPPORT, UNIT, DaemonFactory, eventually, final_wrapup, rule

from genesys_emulator.testing import RunningEmulator
from wrapupd.service import Daemon


def reconnects(daemon: Daemon, reason: str) -> float:
    registry = daemon.parts.metrics.registry
    return registry.get_sample_value("wrapupd_reconnects_total", {"reason": reason}) or 0.0


def frames(daemon: Daemon, kind: str) -> float:
    registry = daemon.parts.metrics.registry
    return registry.get_sample_value("wrapupd_events_total", {"kind": kind}) or 0.0


async def test_a_channel_gone_frame_replaces_the_channel_and_the_work_goes_on(
    emulator: RunningEmulator, start_daemon: DaemonFactory
) -> None:
    daemon = await start_daemon((rule(SUPPORT),))
    before = {c["id"] for c in emulator.control("GET", "/_emulator/channels")["channels"]}
    emulator.fault(kind="expire_channels")
    await eventually(lambda: frames(daemon, "channel_gone") >= 1, what="the 404 frame")
    await eventually(lambda: reconnects(daemon, "channel_gone") >= 1, blocking=False)
    await eventually(lambda: daemon.parts.subscriber.connected, blocking=False)
    assert reconnects(daemon, "heartbeat_timeout") == 0, "no wait for the watchdog"
    listed = {c["id"] for c in emulator.control("GET", "/_emulator/channels")["channels"]}
    assert listed and not listed & before, "a new channel replaced the dead one"
    conv = emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="nothing")
    entry = await eventually(lambda: final_wrapup(emulator, conv["conversationId"]))
    assert entry["wrapup"]["by"] == "api"


async def test_an_idle_close_is_a_reconnect_on_the_same_channel(
    emulator: RunningEmulator, start_daemon: DaemonFactory
) -> None:
    daemon = await start_daemon((rule(SUPPORT),))
    channel = daemon.parts.subscriber._shards[0].channel
    emulator.fault(kind="idle_close")
    await eventually(lambda: reconnects(daemon, "closed_1001") >= 1, blocking=False)
    await eventually(lambda: daemon.parts.subscriber.connected, blocking=False)
    assert daemon.parts.subscriber._shards[0].channel == channel
    conv = emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="nothing")
    entry = await eventually(lambda: final_wrapup(emulator, conv["conversationId"]))
    assert entry["wrapup"]["by"] == "api"
