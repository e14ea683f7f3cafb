"""Notification channels: subscriptions, one WebSocket each, heartbeats, expiry and eviction.

Every outgoing frame goes through a per-socket queue and one writer task, so publishing never
blocks the engine and frames never interleave. Events for a channel without a socket are lost,
as on the real service. A channel that dies (expired, evicted, its token expired) first tells its
socket with an in-socket ``result`` 404 frame, then closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from . import socket_protocol
from .auth import Caller
from .delivery import DeliveryFaults

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

    def __init__(
        self, ws: web.WebSocketResponse, request: web.Request, heartbeat_s: float, now: float
    ) -> None:
        self.ws = ws
        self.request = request
        self.last_heard = now  # the last text frame from the client (emulator clock)
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
class Channel:
    id: str
    caller: Caller
    token: str
    created_at: float
    expires_at: float
    last_used: float
    topics: list[str] = field(default_factory=list)
    socket: ChannelSocket | None = None
    _topic_set: frozenset[str] = frozenset()

    @property
    def client_id(self) -> str:
        return self.caller.client.id

    @property
    def owner(self) -> str:
        return self.caller.owner

    def set_topics(self, topics: list[str]) -> None:
        """Replace the subscription list (already deduplicated, order kept)."""
        self.topics = topics
        self._topic_set = frozenset(topics)

    def subscribed(self, topic: str) -> bool:
        return topic in self._topic_set


@dataclass(frozen=True)
class SocketPolicy:
    """How sockets end: gone-frames before a dying channel's close, idle closes (0 = never)."""

    gone_frames: bool = True
    idle_close_s: float = 0.0


class ChannelRegistry:
    def __init__(
        self, lifetime_s: float, max_per_client: int, policy: SocketPolicy | None = None
    ) -> None:
        self.lifetime_s = lifetime_s
        self.max_per_client = max_per_client
        self.policy = policy or SocketPolicy()
        self.channels: dict[str, Channel] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self.delivery = DeliveryFaults()
        self.now: Callable[[], float] = lambda: 0.0  # set by the emulator (its clock)

    # --- lifecycle ---------------------------------------------------------------------------

    def create(self, caller: Caller, token: str, now: float) -> Channel:
        owned = [c for c in self.channels.values() if c.owner == caller.owner]
        if len(owned) >= self.max_per_client:
            self.end(_eviction_victim(owned), CLOSE_NORMAL, "channel evicted: channel limit")
        channel = Channel(str(uuid.uuid4()), caller, token, now, now + self.lifetime_s, now)
        self.channels[channel.id] = channel
        return channel

    def owned_by(self, owner: str) -> list[Channel]:
        return [c for c in self.channels.values() if c.owner == owner]

    def get(self, channel_id: str, now: float) -> Channel | None:
        channel = self.channels.get(channel_id)
        if channel is not None and now >= channel.expires_at:
            self.end(channel, CLOSE_GOING_AWAY, "channel expired")
            return None
        return channel

    def touch(self, channel: Channel, now: float) -> None:
        channel.last_used = now

    def renew(self, channel: Channel, now: float) -> None:
        channel.expires_at = now + self.lifetime_s
        channel.last_used = now

    def end(self, channel: Channel, code: int, reason: str) -> None:
        """The channel dies: its socket hears a ``result`` 404 frame (if enabled), then closes."""
        if channel.socket is not None and self.policy.gone_frames:
            channel.socket.send(socket_protocol.channel_gone(reason))
        self.remove(channel, code, reason)

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
        """Send one event to every connected socket subscribed to ``topic``; how many got it."""
        sockets = [
            c.socket for c in self.channels.values() if c.socket is not None and c.subscribed(topic)
        ]
        if not sockets or self.delivery.lose(topic):
            return 0
        body = self.delivery.shown(body)
        for socket in sockets:
            self.delivery.deliver(socket, envelope(topic, body), self.now())
        return len(sockets)

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
                self.end(channel, CLOSE_GOING_AWAY, "channel expired")
            elif not token_alive.get(channel.token, False):
                self.end(channel, CLOSE_GOING_AWAY, "token expired")
            elif self._idle(channel, now):
                self.close_idle([channel])

    def _idle(self, channel: Channel, now: float) -> bool:
        idle_s = self.policy.idle_close_s
        socket = channel.socket
        return idle_s > 0 and socket is not None and now - socket.last_heard >= idle_s

    def close_idle(self, channels: list[Channel]) -> int:
        """Close these channels' sockets with 1001 "idle timeout"; the channels stay alive."""
        closed = 0
        for channel in channels:
            if channel.socket is not None:
                self._close_later(channel.socket, CLOSE_GOING_AWAY, "idle timeout")
                channel.socket = None
                closed += 1
        return closed

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

    def drop_sockets(self, only: Collection[str] | None = None) -> int:
        """Abort connected sockets (of the ``only`` channel ids, when given); count them."""
        dropped = 0
        for channel_id, channel in self.channels.items():
            if only is not None and channel_id not in only:
                continue
            if channel.socket is not None:
                channel.socket.abort()
                channel.socket = None
                dropped += 1
        return dropped

    def expire_all(self) -> int:
        doomed = list(self.channels.values())
        for channel in doomed:
            self.end(channel, CLOSE_GOING_AWAY, "channel expired")
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
