"""The poller baseline: every N seconds ask analytics which conversations may hold agents in ACW.

Each cycle: ``POST /api/v2/analytics/conversations/details/query`` (not ended, an agent segment on
a watched queue, from the start of the previous UTC day to now, all pages), then ``GET`` each
candidate conversation and ``PATCH`` every agent participant on a watched queue still in ACW
without a code. Queue ids and default code ids are looked up once at start (a poller would).
The SDK's default HTTP client is kept, with its silent retries after a 429's ``Retry-After``:
that is what a user of the SDK gets without changing anything.

The interval ends at *now*; the contract advises ending it a minute before now because analytics
results shift while the interval is live, which would add a minute to every latency here.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from PureCloudPlatformClientV2 import (
    AnalyticsApi,
    ConversationsApi,
    MediaParticipantRequest,
    RoutingApi,
    WrapupInput,
)
from PureCloudPlatformClientV2.rest import ApiException

from bench.contenders.sdk import ThreadedContender, queue_ids_by_name, sdk_client
from bench.harness import Emulator
from wrapupd.genesys.client import PAGE_SIZE, analytics_open_conversations_query

PAGE = PAGE_SIZE


class PollerContender(ThreadedContender):
    def __init__(self, interval_s: float) -> None:
        super().__init__()
        self.interval_s = interval_s
        self.name = f"poller-{interval_s:g}s"

    def body(self, emu: Emulator, watched: list[tuple[str, str]]) -> None:
        api = sdk_client(emu, silent_retries=True)
        ids = queue_ids_by_name(api, [q for q, _ in watched])
        routing = RoutingApi(api)
        self.defaults: dict[str, Any] = {}
        for queue, code_name in watched:
            codes = routing.get_routing_queue_wrapupcodes(ids[queue], page_size=100).entities
            self.defaults[ids[queue]] = next(c for c in codes if c.name == code_name)
        self.analytics, self.conversations = AnalyticsApi(api), ConversationsApi(api)
        self._ready.set()
        next_at = time.monotonic() + self.interval_s
        while not self.sleep_or_stop(max(0.0, next_at - time.monotonic())):
            next_at = time.monotonic() + self.interval_s
            try:
                self.cycle()
            except ApiException as exc:
                self.count(f"cycle_failed_{exc.status}")

    def cycle(self) -> None:
        for conversation_id in self.candidates():
            if self._stop.is_set():
                return
            try:
                conversation = self.conversations.get_conversation(conversation_id)
            except ApiException:
                continue
            for p in conversation.participants or []:
                if self.uncoded(p):
                    self.patch(conversation_id, p)

    def candidates(self) -> list[str]:
        now = datetime.now(UTC)
        start = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
        found: dict[str, None] = {}
        for page in range(1, 1001):
            # The same candidate query wrapupd's reconciler sends: the comparison is the loop.
            body = analytics_open_conversations_query(list(self.defaults), start, now, page)
            answer = self.analytics.post_analytics_conversations_details_query(body)
            conversations = answer.conversations or []
            found.update(dict.fromkeys(c.conversation_id for c in conversations))
            if len(conversations) < PAGE:
                break
        return list(found)

    def uncoded(self, p: Any) -> bool:
        return (
            p.purpose == "agent"
            and p.queue_id in self.defaults
            and p.start_acw_time is not None
            and p.end_acw_time is None
            and not (p.wrapup and p.wrapup.code)
        )

    def patch(self, conversation_id: str, p: Any) -> None:
        code = self.defaults[p.queue_id]
        request = MediaParticipantRequest()
        request.wrapup = WrapupInput()
        request.wrapup.code, request.wrapup.name = code.id, code.name
        try:
            self.conversations.patch_conversation_participant(conversation_id, p.id, request)
        except ApiException as exc:
            self.count(f"refused_{exc.status}")
