"""One shard's notification channel: create and subscribe it, connect to it, renew it, replace its
socket or the whole channel, and say why a connection ended.

A channel carries at most 1,000 topics (one per watched queue), so the subscriber splits the watched
queues into shards of one channel each. The websockets library's own keepalive is off: the
platform's heartbeat and our text ping do that job (see :mod:`wrapupd.subscriber`).
"""

from __future__ import annotations

import asyncio
import enum
import ssl
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog
import websockets
from websockets.exceptions import InvalidStatus, WebSocketException

from wrapupd import logs
from wrapupd.clock import Clock
from wrapupd.errors import ChannelGone, NotFound, PlatformError
from wrapupd.events import Channel, TopicResult
from wrapupd.genesys.notifications import queue_topic
from wrapupd.genesys.tls import websocket_context
from wrapupd.metrics import Metrics
from wrapupd.ratelimit import Priority, RateLimiter
from wrapupd.redaction import channel_tag

log = structlog.get_logger("wrapupd.subscriber")

MAX_TOPICS_PER_CHANNEL = 1000

# The failures a new connection (after backoff) can cure, on every path: opening a channel, replacing
# a socket, rolling over to a new channel. Anything else is a bug: it ends the task, logged.
RECONNECTABLE: tuple[type[BaseException], ...] = (
    PlatformError,
    ChannelGone,
    OSError,
    WebSocketException,
    TimeoutError,
)


class ChannelApi(Protocol):
    """The platform's notification-channel calls (``GenesysClient`` in production)."""

    async def create_channel(self) -> Channel: ...
    async def subscribe(self, channel_id: str, topics: Sequence[str]) -> list[TopicResult]: ...
    async def channel_exists(self, channel_id: str) -> bool: ...

    @property
    def token_generation(self) -> int: ...


class Socket(Protocol):
    """One WebSocket connection to a channel, as far as the subscriber uses it."""

    async def recv(self) -> str | bytes: ...
    async def send(self, message: str) -> None: ...
    async def close(self) -> None: ...


Connector = Callable[[str], Awaitable[Socket]]


def websocket_connector(
    *,
    max_message_bytes: int,
    open_timeout: float,
    tls: Callable[[], ssl.SSLContext] = websocket_context,
) -> Connector:
    """Connect with the websockets library; snapshots of large conferences need a large ``max_size``.
    A ``wss://`` socket gets the process's one TLS context, built by ``tls`` in a thread the first
    time (:mod:`wrapupd.genesys.tls`), never on the event loop."""

    async def connect(uri: str) -> Socket:
        context = await asyncio.to_thread(tls) if uri.startswith("wss:") else None
        return await websockets.connect(
            uri,
            ssl=context,
            max_size=max_message_bytes,
            ping_interval=None,  # the platform's own heartbeat and our text ping do this job
            open_timeout=open_timeout,
            close_timeout=2,
        )

    return connect


def shard_topics(queue_ids: Iterable[str], per_channel: int) -> list[list[str]]:
    """The queues' topics, sorted, in groups of at most ``per_channel`` (at least one group)."""
    topics = [queue_topic(q) for q in sorted(set(queue_ids))]
    return [topics[i : i + per_channel] for i in range(0, len(topics), per_channel)] or [[]]


def reassign_topics(
    shards: Sequence[Sequence[str]], queue_ids: Iterable[str], per_channel: int
) -> tuple[list[list[str]], list[str]]:
    """Shards' topics after the watched queues changed: a kept topic stays on its shard (no
    moment without it), a removed one is dropped, a new one goes to the first shard with room.
    Also returns the new topics that fit nowhere (more channels need a restart)."""
    wanted = {queue_topic(q) for q in queue_ids}
    result = [[t for t in topics if t in wanted] for topics in shards]
    placed = {t for topics in result for t in topics}
    left = []
    for topic in sorted(wanted - placed):
        room = next((topics for topics in result if len(topics) < per_channel), None)
        if room is None:
            left.append(topic)
        else:
            room.append(topic)
    return result, left


def describe(error: BaseException) -> str:
    """An exception as ``Type: message`` for a log line (just the type when it has no message)."""
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


class EndReason(enum.StrEnum):
    """Why one connection's read loop stopped."""

    STOPPING = "stopping"  # shutdown
    HEARTBEAT_TIMEOUT = "heartbeat_timeout"  # no frame, then no pong
    CLOSED = "closed"  # the server or the network closed the socket
    CHANNEL_ENDED = "channel_ended"  # v2.system.no_longer_subscribed / token_revoked
    CHANNEL_GONE = "channel_gone"  # the renewal, or an in-socket 404 frame, found the channel gone
    SOCKET_CLOSING = "socket_closing"  # the platform announced maintenance
    ROLLOVER = "rollover"  # a new token: a new channel replaces this one

    @property
    def channel_lost(self) -> bool:
        """The channel itself is done: the next connection needs a new one."""
        return self in (EndReason.CHANNEL_ENDED, EndReason.CHANNEL_GONE)


@dataclass(frozen=True, slots=True)
class End:
    """Why a connection ended, and the replacement it may already have opened (make-before-break)."""

    reason: EndReason
    close_code: int | None = None
    channel: Channel | None = None
    replacement: Socket | None = None

    @property
    def label(self) -> str:
        """The reconnect reason as counted in metrics and logs (``closed_1001`` keeps the code)."""
        if self.reason is EndReason.CLOSED:
            return f"closed_{self.close_code or 'abnormal'}"
        return self.reason.value

    @property
    def routine(self) -> bool:
        """A close the platform makes in normal operation: 1001 "going away" (an idle socket)."""
        return self.reason is EndReason.CLOSED and self.close_code == 1001


@dataclass(frozen=True, slots=True)
class ShardTools:
    """What every shard uses: the platform's channel calls, the connector, the clock, the metrics."""

    api: ChannelApi
    connect: Connector
    clock: Clock
    metrics: Metrics
    on_state: Callable[[str], None]
    backoff: Callable[[], Iterator[float]]
    limiter: RateLimiter | None = None


class Shard:
    """One channel's worth of topics, and the channel that carries them."""

    def __init__(self, index: int, topics: list[str], tools: ShardTools) -> None:
        self.index = index
        self.topics = topics
        self._tools = tools
        self.connected = False
        self.had_session = False  # a later connection is a reconnect (events may have been lost)
        self.channel: Channel | None = None
        self.rejected: list[TopicResult] = []
        self._renewed_at = 0.0
        self._renew_not_before = 0.0  # after a failed or deferred renewal
        self._renew_delays: Iterator[float] | None = None
        self._token_generation = 0

    def retopic(self, topics: list[str]) -> None:
        """Carry ``topics`` from now on: re-subscribed at the next maintenance (within a heartbeat)."""
        self.topics = topics
        self._renewed_at = float("-inf")

    async def open(self) -> Socket:
        """Connect to the shard's channel, creating (and subscribing) a new one when it is gone."""
        api = self._tools.api
        if self.channel is not None and not await api.channel_exists(self.channel.id):
            log.info("channel_gone", shard=self.index, channel=channel_tag(self.channel.id))
            self.channel = None
        if self.channel is None:
            self.channel = await self._new_channel()
        try:
            return await self._tools.connect(self.channel.connect_uri)
        except InvalidStatus as exc:
            if exc.response.status_code == 404:
                self.channel = None
                raise ChannelGone("the channel no longer exists") from exc
            raise

    async def _new_channel(self) -> Channel:
        channel = await self._tools.api.create_channel()
        logs.add_channel_id(channel.id)  # a credential: logs show only its tag from now on
        results = await self._tools.api.subscribe(channel.id, self.topics)
        self._note_subscription(channel, results)
        self._renewed_at = self._tools.clock.monotonic()
        self._token_generation = self._tools.api.token_generation
        return channel

    def _note_subscription(self, channel: Channel, results: list[TopicResult]) -> None:
        self.rejected = [r for r in results if not r.permitted]
        for r in self.rejected:
            log.error(
                "topic_rejected",
                topic=r.topic,
                reason=r.rejection_reason,
                missing_permissions=list(r.missing_permissions),
                hint="grant the OAuth client's role these permissions, or remove the queue from the config",
            )
        log.info(
            "channel_subscribed",
            shard=self.index,
            channel=channel_tag(channel.id),
            topics=len(results) - len(self.rejected),
            rejected=len(self.rejected),
            expires=channel.expires.isoformat() if channel.expires else None,
        )

    async def maintain(self, renew_interval: float) -> End | None:
        """Renew the subscription before the channel expires; roll over to a new channel after a new token."""
        if self._tools.api.token_generation != self._token_generation:
            return await self._roll_over()
        now = self._tools.clock.monotonic()
        due = now - self._renewed_at >= renew_interval and now >= self._renew_not_before
        if not (due and self.channel):
            return None
        if not await self._budget_for_renewal():
            self._defer_renewal()
            return None
        try:
            results = await self._tools.api.subscribe(self.channel.id, self.topics)
        except NotFound:
            return End(EndReason.CHANNEL_GONE)
        except PlatformError as exc:
            delay = self._defer_renewal()
            log.warning(
                "subscription_renew_failed",
                shard=self.index,
                error=str(exc),
                retry_in_s=round(delay, 3),
            )
            return None
        self._renewed_at = self._tools.clock.monotonic()
        self._renew_delays = None
        self._note_subscription(self.channel, results)
        return None

    async def _budget_for_renewal(self) -> bool:
        """Take a request from the shared budget, unless the platform asked everyone to pause.

        Renewing has hours of slack (every 12 h, for a 24 h channel): it never makes the read loop
        wait out a 429 pause, it tries again later."""
        limiter = self._tools.limiter
        if limiter is None:
            return True
        if limiter.paused_remaining() > 0 or limiter.waiting():
            return False
        await limiter.acquire(Priority.BACKGROUND)
        return True

    def _defer_renewal(self) -> float:
        """Try the renewal again after the next backoff delay (not on the next frame)."""
        self._renew_delays = self._renew_delays or self._tools.backoff()
        delay = next(self._renew_delays)
        self._renew_not_before = self._tools.clock.monotonic() + delay
        return delay

    async def _roll_over(self) -> End | None:
        """The channel dies with the token that created it: make the new one before breaking the old."""
        self._tools.on_state("rolling channel")
        try:
            channel = await self._new_channel()
            replacement = await self._tools.connect(channel.connect_uri)
        except RECONNECTABLE as exc:
            log.warning("channel_rollover_failed", shard=self.index, error=describe(exc))
            self._token_generation = (
                self._tools.api.token_generation
            )  # again on the next renewal only
            return None
        self._tools.metrics.channel_rollover()
        log.info("channel_rolled_over", shard=self.index, channel=channel_tag(channel.id))
        return End(EndReason.ROLLOVER, channel=channel, replacement=replacement)

    async def replace_socket(self, reason: EndReason) -> End:
        """Open the new socket on the same channel before the old one is closed."""
        channel = self.channel
        try:
            if channel is None:
                raise ChannelGone("no channel to reconnect to")
            replacement = await self._tools.connect(channel.connect_uri)
        except RECONNECTABLE as exc:
            log.warning(
                "socket_replace_failed", shard=self.index, reason=reason, error=describe(exc)
            )
            return End(reason)
        log.info("socket_replaced", shard=self.index, reason=reason)
        self._tools.metrics.reconnect(reason)
        return End(reason, channel=channel, replacement=replacement)
