"""The tutorial baseline: an honest, working version of the approach the public tutorials teach.

Subscribe to each watched queue's ``v2.routing.queues.{id}.conversations`` topic; for every event
that shows an agent in ACW without a code, list the queue's wrap-up codes to find the default by
name, then ``PATCH`` the participant. No cache, no memory of what it already did, one event at a
time in the socket's thread (the handler blocks, as in the tutorials).

429s: the issue asks for fixed exponential retries (1, 2, 4 s, then give up), so the SDK's silent
urllib3 retries are switched off and exactly those three retries are made. A tutorial that keeps
the SDK's default client would instead retry each 429 up to ten times after ``Retry-After``,
hidden from the code (see ``poller.py``, which keeps that default).
"""

from __future__ import annotations

import json
from typing import Any

from PureCloudPlatformClientV2 import (
    ConversationsApi,
    MediaParticipantRequest,
    NotificationsApi,
    RoutingApi,
    WrapupInput,
)
from PureCloudPlatformClientV2.rest import ApiException
from websockets.sync.client import connect

from bench.contenders.sdk import ThreadedContender, needs_code, queue_ids_by_name, sdk_client
from bench.harness import Emulator

RETRY_DELAYS = (1.0, 2.0, 4.0)


class TutorialContender(ThreadedContender):
    name = "tutorial"

    def body(self, emu: Emulator, watched: list[tuple[str, str]]) -> None:
        api = sdk_client(emu, silent_retries=False)
        ids = queue_ids_by_name(api, [q for q, _ in watched])
        default_name = {ids[q]: code for q, code in watched if q in ids}
        notifications = NotificationsApi(api)
        channel = notifications.post_notifications_channels()
        topics = [{"id": f"v2.routing.queues.{qid}.conversations"} for qid in default_name]
        notifications.put_notifications_channel_subscriptions(channel.id, topics)
        self.routing, self.conversations = RoutingApi(api), ConversationsApi(api)
        with connect(channel.connect_uri, max_size=None) as ws:
            self._ready.set()
            while not self._stop.is_set():
                try:
                    raw = ws.recv(timeout=0.2)
                except TimeoutError:
                    continue
                self.on_message(raw, default_name)

    def on_message(self, raw: str | bytes, default_name: dict[str, str]) -> None:
        event = json.loads(raw)
        if not str(event.get("topicName", "")).startswith("v2.routing.queues."):
            return
        body = event.get("eventBody") or {}
        for p in body.get("participants") or []:
            if needs_code(p, set(default_name)):
                self.apply_default(body["id"], p["id"], p["queueId"], default_name[p["queueId"]])

    def apply_default(
        self, conversation_id: str, participant_id: str, queue_id: str, name: str
    ) -> None:
        listing = self.with_retries(
            lambda: self.routing.get_routing_queue_wrapupcodes(queue_id, page_size=100)
        )
        code = (
            next((c for c in (listing.entities or []) if c.name == name), None) if listing else None
        )
        if code is None:
            self.count("gave_up")
            return
        request = MediaParticipantRequest()
        request.wrapup = WrapupInput()
        request.wrapup.code, request.wrapup.name = code.id, code.name
        self.with_retries(
            lambda: self.conversations.patch_conversation_participant(
                conversation_id, participant_id, request
            ),
            ok_statuses=(400,),  # already coded or ACW over: the tutorials log and move on
        )

    def with_retries(self, call: Any, ok_statuses: tuple[int, ...] = ()) -> Any:
        for delay in (*RETRY_DELAYS, None):
            try:
                return call()
            except ApiException as exc:
                if exc.status in ok_statuses:
                    self.count(f"refused_{exc.status}")
                    return None
                if exc.status != 429 or delay is None:
                    self.count("gave_up")
                    return None
                self.count("retried_429")
                if self.sleep_or_stop(delay):
                    return None
        return None
