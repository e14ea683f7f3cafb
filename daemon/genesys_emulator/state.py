"""The whole emulated org at run time, and the operations handlers and the control plane share."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from . import stray
from .auth import Token, TokenStore
from .calllog import CallLog
from .channels import ChannelRegistry, SocketPolicy
from .clock import Clock, SystemClock
from .conversation import Conversation, Participant
from .faults import FaultQueue
from .limits import RateLimiter
from .oauth_code import CodeGrant
from .options import Options
from .org import OrgDefinition, load_org, with_extra_queues
from .scenario import Engine
from .views import event_json

log = logging.getLogger("genesys_emulator.state")


class Emulator:
    def __init__(self, options: Options, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self.options = options
        self.startup_options = options
        self.org: OrgDefinition = with_extra_queues(load_org(options.org), options.extra_queues)
        self.org_edited = False  # queues created or renamed through the control plane
        self.base_url = ""
        self.conversations: dict[str, Conversation] = {}
        self.tokens = TokenStore()
        self.code_grant = CodeGrant()
        self.call_log = CallLog()
        self.faults = FaultQueue()
        self._build_parts()
        self._sweeper: asyncio.Task[None] | None = None
        self._timers: set[asyncio.Task[None]] = set()

    def _build_parts(self) -> None:
        opts = self.options
        policy = SocketPolicy(opts.channel_gone_frames, opts.idle_close_s)
        self.channels = ChannelRegistry(
            opts.channel_lifetime_s, opts.max_channels_per_client, policy
        )
        self.channels.now = self.now
        self.limiter = RateLimiter(opts.rate_limit_per_window, opts.rate_window_s)
        self.engine = Engine(self.org, self.clock, self.conversations, self.changed)

    def now(self) -> float:
        return self.clock.now()

    # --- events ------------------------------------------------------------------------------

    def changed(self, conv: Conversation) -> None:
        """Every change: maybe end the conversation, then publish the full snapshot."""
        from .conversation import conversation_finished

        if conv.end is None and conversation_finished(conv):
            conv.end = self.now()
        if conv.silent:
            return
        body = event_json(conv, self.org)
        if self.options.capture_stray_keys:
            stray.add_to_conversation(body)
        for queue_id in conv.queue_ids():
            self.channels.publish(f"v2.routing.queues.{queue_id}.conversations", body)

    # --- tokens ------------------------------------------------------------------------------

    def valid_token(self, value: str) -> Token | None:
        token = self.tokens.get(value)
        return token if token is not None and token.valid(self.now()) else None

    def revoke_tokens(self) -> int:
        revoked = self.tokens.revoke_all()
        for token in revoked:
            self.channels.revoke_token(token.value)
        return len(revoked)

    # --- wrap-up write accounting ------------------------------------------------------------

    def count_wrapup_call(self, conversation_id: str, participant_id: str) -> None:
        conv = self.conversations.get(conversation_id)
        p: Participant | None = conv.participant(participant_id) if conv else None
        if p is not None:
            p.api_wrapup_calls += 1

    # --- background --------------------------------------------------------------------------

    async def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.options.sweep_interval_s)
            try:
                now = self.now()
                alive = {t.value: t.valid(now) for t in self.tokens.tokens.values()}
                self.channels.sweep(now, alive)
            except Exception:  # a sweeper must never die
                log.exception("sweep failed")

    def later(self, delay_s: float, action: Any) -> None:
        async def run() -> None:
            await asyncio.sleep(delay_s)
            action()

        task = asyncio.create_task(run())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.clear_runtime()

    async def clear_runtime(self) -> None:
        for timer in list(self._timers):
            timer.cancel()
        await self.engine.shutdown()
        await self.channels.shutdown()

    async def reset(self, changes: dict[str, Any]) -> None:
        """Back to the options the server started with, plus ``changes``."""
        new_options = self.startup_options.with_changes(changes)
        same = not self.org_edited and (new_options.org, new_options.extra_queues) == (
            self.options.org,
            self.options.extra_queues,
        )
        new_org = (
            self.org
            if same
            else with_extra_queues(load_org(new_options.org), new_options.extra_queues)
        )
        await self.clear_runtime()
        self.options, self.org = new_options, new_org
        self.org_edited = False
        self.conversations.clear()
        self.tokens.clear()
        self.code_grant = CodeGrant()
        self.call_log = CallLog()  # a request still held from before keeps the old one
        self.faults.clear()
        self._build_parts()
