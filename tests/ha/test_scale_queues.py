"""More than 1,000 queues end to end: 5,000 queues picked by one selector are spread over five
channels of 1,000 topics; the daemon is ready, every topic is subscribed, and an event from a queue
on each channel is applied."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from ha_harness import UNIT, eventually
from prometheus_client import CollectorRegistry

from genesys_emulator.testing import RunningEmulator
from wrapupd.events import QueuePolicy
from wrapupd.options import local_options
from wrapupd.sdnotify import Notifier
from wrapupd.service import Daemon

QUEUES = 5_000
CONFTEST_OPTIONS = {
    "org": "demo",
    "heartbeat_interval_s": 0.2,
    "token_lifetime_s": 3600,
    "channel_lifetime_s": 3600,
    "rate_limit_per_window": 100_000,
    "rate_window_s": 60,
    "require_user_context": False,
}


def our_channels(emu: RunningEmulator) -> list[dict[str, object]]:
    channels = emu.control("GET", "/_emulator/channels")["channels"]
    return [c for c in channels if c["clientId"] == emu.client_id and c["topics"]]


@pytest.mark.slow
async def test_five_thousand_queues_on_five_channels_every_one_applied(
    emulator_server: RunningEmulator, tmp_path: Path
) -> None:
    emu = emulator_server
    emu.reset(**CONFTEST_OPTIONS, extra_queues=QUEUES)
    try:
        selector = QueuePolicy("", "No code selected", 0.0, 0.1, "scale", match="Scale Queue *")
        options = local_options(
            api_host=emu.base_url,
            client_id=emu.client_id,
            client_secret=emu.client_secret,
            policies=(selector,),
            state_dir=tmp_path,
            unit=UNIT,
            budget_per_minute=60_000.0,
        )
        daemon = Daemon(options, registry=CollectorRegistry(), notifier=Notifier({}))
        async with contextlib.AsyncExitStack() as stack:
            parts = await asyncio.wait_for(stack.enter_async_context(daemon.running()), 60)
            assert len(parts.codes.queue_ids) == QUEUES
            channels = our_channels(emu)
            assert len(channels) == 5
            assert sum(len(c["topics"]) for c in channels) == QUEUES  # type: ignore[arg-type]
            conversations = []
            for channel in channels:  # one queue on each channel
                queue_id = str(channel["topics"][0]).split(".")[3]  # type: ignore[index]
                conversations.append(
                    emu.start_conversation(queue=queue_id, talk_s=UNIT, outcome="nothing")
                )
            for conversation in conversations:
                await eventually(
                    lambda c=conversation: any(
                        e["conversationId"] == c["conversationId"]
                        and (e.get("wrapup") or {}).get("by") == "api"
                        for e in emu.ground_truth()
                    ),
                    timeout=30,
                    what="a default code from each channel's queue",
                )
    finally:
        emu.reset(**CONFTEST_OPTIONS)
