"""Notification channels: subscriptions, one WebSocket each, heartbeats, expiry and eviction.

Every outgoing frame goes through a per-socket queue and one writer task, so publishing never
blocks the engine and frames never interleave. Events for a channel without a socket are lost,
as on the real service.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

log = logging.getLogger("genesys_emulator.channels")

HEARTBEAT = json.dumps(
    {"topicName": "channel.metadata", "eventBody": {"message": "WebSocket Heartbeat"}}
)
PONG = json.dumps({"topicName": "channel.metadata", "eventBody": {"message": "pong"}})
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001


def envelope(topic: str, body: dict[str, Any]) -> str:
    return json.dumps(
        {
            "topicName": topic,
            "version": "2",
            "eventBody": body,
            "metadata": {"CorrelationId": str(uuid.uuid4())},
        }
    )


def system_event(channel_id: str, kind: str, message: str, reason: str | None = None) -> str:
    """A ``v2.system.*`` frame; its body uses only SDK ``SystemMessageSystemMessage`` fields."""
    topic = f"v2.system.{kind}" if kind == "socket_closing" else f"v2.system.{kind}.{channel_id}"
    body: dict[str, Any] = {"channelId": channel_id, "message": message}
    if kind != "socket_closing":  # the SDK's systemTopicType enum has no socket_closing
        body["systemTopicType"] = kind
    if reason is not None:
        body["reason"] = reason
    return envelope(topic, body)


class ChannelSocket:
    """One live WebSocket: an outgoing queue, a writer task and a heartbeat task."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, heartbeat_s: float) -> None:
        self.ws = ws
        self.request = request
        self.outbox: asyncio.Queue[str] = asyncio.Queue()
        self.tasks = [
            asyncio.create_task(self._write()),
            asyncio.create_task(self._heartbeat(heartbeat_s)),
        ]

    def send(self, text: str) -> None:
        self.outbox.put_nowait(text)

    async def _write(self) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            while True:
                text = await self.outbox.get()
                try:
                    await self.ws.send_str(text)
                finally:
                    self.outbox.task_done()

    async def _heartbeat(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.send(HEARTBEAT)

    async def flush(self) -> None:
        """Let queued frames (a system event before a close) reach the client first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.outbox.join(), 1.0)

    def stop_tasks(self) -> None:
        for task in self.tasks:
            task.cancel()

    async def close(self, code: int, message: str) -> None:
        await self.flush()
        self.stop_tasks()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(code=code, message=message.encode()), 2.0)

    def abort(self) -> None:
        """Drop the TCP connection without a close frame (a network failure)."""
        self.stop_tasks()
        transport = self.request.transport
        if transport is not None:
            transport.abort()


@dataclass
class EventChaos:
    """Delivery faults: each event may be duplicated and is delayed by a random amount (so events
    of one conversation can arrive out of order). Active until ``until`` (emulator clock)."""

    until: float
    duplicate: float
    max_delay_s: float
    rng: random.Random


@dataclass
class Channel:
    id: str
    client_id: str
    token: str
    created_at: float
    expires_at: float
    last_used: float
    topics: list[str] = field(default_factory=list)
    socket: ChannelSocket | None = None


class ChannelRegistry:
    def __init__(self, lifetime_s: float, max_per_client: int) -> None:
        self.lifetime_s = lifetime_s
        self.max_per_client = max_per_client
        self.channels: dict[str, Channel] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self.chaos: EventChaos | None = None
        self.now = lambda: 0.0  # set by the emulator (its clock)

    # --- lifecycle ---------------------------------------------------------------------------

    def create(self, client_id: str, token: str, now: float) -> Channel:
        owned = [c for c in self.channels.values() if c.client_id == client_id]
        if len(owned) >= self.max_per_client:
            self.remove(_eviction_victim(owned), CLOSE_NORMAL, "channel evicted: channel limit")
        channel = Channel(str(uuid.uuid4()), client_id, token, now, now + self.lifetime_s, now)
        self.channels[channel.id] = channel
        return channel

    def get(self, channel_id: str, now: float) -> Channel | None:
        channel = self.channels.get(channel_id)
        if channel is not None and now >= channel.expires_at:
            self.remove(channel, CLOSE_GOING_AWAY, "channel expired")
            return None
        return channel

    def touch(self, channel: Channel, now: float) -> None:
        channel.last_used = now

    def renew(self, channel: Channel, now: float) -> None:
        channel.expires_at = now + self.lifetime_s
        channel.last_used = now

    def remove(self, channel: Channel, code: int, reason: str) -> None:
        self.channels.pop(channel.id, None)
        if channel.socket is not None:
            self._close_later(channel.socket, code, reason)
            channel.socket = None
        log.info("channel %s removed: %s", channel.id, reason)

    def attach(self, channel: Channel, socket: ChannelSocket, now: float) -> None:
        """A second connection to the same channel drops the first."""
        if channel.socket is not None:
            self._close_later(channel.socket, CLOSE_NORMAL, "replaced by a newer connection")
        channel.socket = socket
        channel.last_used = now

    def detach(self, channel_id: str, socket: ChannelSocket) -> None:
        channel = self.channels.get(channel_id)
        if channel is not None and channel.socket is socket:
            channel.socket = None
        socket.stop_tasks()

    def _close_later(self, socket: ChannelSocket, code: int, reason: str) -> None:
        task = asyncio.create_task(socket.close(code, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # --- fan-out -----------------------------------------------------------------------------

    def publish(self, topic: str, body: dict[str, Any]) -> int:
        delivered = 0
        for channel in list(self.channels.values()):
            if channel.socket is not None and topic in channel.topics:
                self._deliver(channel.socket, envelope(topic, body))
                delivered += 1
        return delivered

    def _deliver(self, socket: ChannelSocket, text: str) -> None:
        chaos = self.chaos
        if chaos is None or self.now() >= chaos.until:
            self.chaos = None
            socket.send(text)
            return
        copies = 2 if chaos.rng.random() < chaos.duplicate else 1
        loop = asyncio.get_running_loop()
        for _ in range(copies):
            loop.call_later(chaos.rng.uniform(0.0, chaos.max_delay_s), socket.send, text)

    def send_raw(self, frames: list[str]) -> int:
        """Send text frames as they are (fuzzing) to every connected socket, in order."""
        sockets = [c.socket for c in self.channels.values() if c.socket is not None]
        for socket in sockets:
            for frame in frames:
                socket.send(frame)
        return len(sockets)

    def connected(self) -> list[Channel]:
        return [c for c in self.channels.values() if c.socket is not None]

    # --- faults and sweeping -----------------------------------------------------------------

    def sweep(self, now: float, token_alive: dict[str, bool]) -> None:
        for channel in list(self.channels.values()):
            if now >= channel.expires_at:
                self.remove(channel, CLOSE_GOING_AWAY, "channel expired")
            elif not token_alive.get(channel.token, False):
                self.remove(channel, CLOSE_GOING_AWAY, "token expired")

    def revoke_token(self, token: str) -> None:
        for channel in list(self.channels.values()):
            if channel.token != token:
                continue
            if channel.socket is not None:
                channel.socket.send(
                    system_event(
                        channel.id, "token_revoked", "Token revoked", "user_tokens_revoked"
                    )
                )
            self.remove(channel, CLOSE_GOING_AWAY, "token revoked")

    def drop_sockets(self) -> int:
        dropped = 0
        for channel in self.channels.values():
            if channel.socket is not None:
                channel.socket.abort()
                channel.socket = None
                dropped += 1
        return dropped

    def expire_all(self) -> int:
        doomed = list(self.channels.values())
        for channel in doomed:
            self.remove(channel, CLOSE_GOING_AWAY, "channel expired")
        return len(doomed)

    def announce_closing(self, close_after_s: float) -> list[ChannelSocket]:
        """Send ``v2.system.socket_closing`` to every socket; the caller closes them later."""
        sockets = []
        for channel in self.channels.values():
            if channel.socket is not None:
                message = f"Socket closing for maintenance in {close_after_s:g} seconds"
                channel.socket.send(system_event(channel.id, "socket_closing", message))
                sockets.append(channel.socket)
        return sockets

    def close_sockets(self, sockets: list[ChannelSocket]) -> None:
        for channel in self.channels.values():
            if channel.socket in sockets:
                channel.socket = None
        for socket in sockets:
            self._close_later(socket, CLOSE_GOING_AWAY, "maintenance")

    async def shutdown(self) -> None:
        for channel in list(self.channels.values()):
            self.remove(channel, CLOSE_GOING_AWAY, "server shutdown")
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


def _eviction_victim(owned: list[Channel]) -> Channel:
    idle = [c for c in owned if c.socket is None]
    return min(idle or owned, key=lambda c: c.last_used)
