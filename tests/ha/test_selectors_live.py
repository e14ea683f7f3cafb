"""Queues created or renamed while the daemon runs are picked up at the code refresh: a new queue
matching the selector is subscribed and served, a renamed one that no longer matches is
unsubscribed and left alone, all without a restart (the emulator's control plane changes the org)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from ha_harness import UNIT, eventually
from prometheus_client import CollectorRegistry

from genesys_emulator.testing import RunningEmulator
from wrapupd.events import QueuePolicy
from wrapupd.options import local_options
from wrapupd.sdnotify import Notifier
from wrapupd.service import Daemon


def subscribed(emu: RunningEmulator) -> set[str]:
    channels = emu.control("GET", "/_emulator/channels")["channels"]
    return {t.split(".")[3] for c in channels if c["connected"] for t in c["topics"]}


def coded_by_api(emu: RunningEmulator, conversation_id: str) -> bool:
    return any(
        e["conversationId"] == conversation_id and (e.get("wrapup") or {}).get("by") == "api"
        for e in emu.ground_truth()
    )


def api_calls(emu: RunningEmulator, conversation_id: str) -> int:
    return sum(
        e.get("apiWrapupCalls", 0)
        for e in emu.ground_truth()
        if e["conversationId"] == conversation_id
    )


async def test_a_queue_added_and_one_renamed_while_running_are_followed(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    selector = QueuePolicy("", "No code selected", 0.0, 0.1, "live", match="support*")
    options = local_options(
        api_host=emulator.base_url,
        client_id=emulator.client_id,
        client_secret=emulator.client_secret,
        policies=(selector,),
        state_dir=tmp_path,
        unit=UNIT,
        code_refresh_seconds=4 * UNIT,
    )
    daemon = Daemon(options, registry=CollectorRegistry(), notifier=Notifier({}))
    support = emulator.control("GET", "/_emulator/org")["queues"]
    support_id = next(q["id"] for q in support if q["name"] == "Support")
    async with contextlib.AsyncExitStack() as stack:
        await asyncio.wait_for(stack.enter_async_context(daemon.running()), 20)
        assert subscribed(emulator) == {support_id}
        new = emulator.control("POST", "/_emulator/queues", {"name": "Support EU"})
        renamed = emulator.control("PATCH", f"/_emulator/queues/{support_id}", {"name": "Helpdesk"})
        assert renamed["name"] == "Helpdesk"
        await eventually(
            lambda: subscribed(emulator) == {new["id"]}, timeout=10, what="topics followed"
        )
        left_alone = emulator.start_conversation(queue=support_id, talk_s=UNIT, outcome="nothing")
        served = emulator.start_conversation(queue=new["id"], talk_s=UNIT, outcome="nothing")
        await eventually(
            lambda: coded_by_api(emulator, served["conversationId"]),
            timeout=10,
            what="the new queue served",
        )
    assert api_calls(emulator, left_alone["conversationId"]) == 0
