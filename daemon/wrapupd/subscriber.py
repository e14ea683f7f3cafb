"""The notification channel, end to end: create, subscribe, connect, watch heartbeats, renew, roll
over, reconnect, and say when events may have been lost.

The platform keeps no events for a socket that is down, so every gap bumps :attr:`Subscriber.epoch`
and asks for a reconciliation. Two moves avoid gaps altogether: on ``socket_closing`` the new socket
is opened before the old one closes (the platform drops the older connection of a channel), and
when the token is renewed a new channel is created and connected before the old one (which dies
with its token) is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from wrapupd.backoff import jittered_backoff
from wrapupd.clock import Clock
from wrapupd.errors import ChannelGone, NotFound, PlatformError
from wrapupd.events import (
    Channel,
    ChannelEnded,
    ConversationEvent,
    Heartbeat,
    SocketClosing,
    TopicResult,
    UnknownFrame,
)
from wrapupd.genesys.notifications import parse_frame, queue_topic
from wrapupd.metrics import Metrics

log = structlog.get_logger("wrapupd.subscriber")

PING = '{"message":"ping"}'
MAX_TOPICS_PER_CHANNEL = 1000


class ChannelApi(Protocol):
    async def create_channel(self) -> Channel: ...
    async def subscribe(self, channel_id: str, topics: Sequence[str]) -> list[TopicResult]: ...
    async def channel_exists(self, channel_id: str) -> bool: ...

    @property
    def token_generation(self) -> int: ...


class Socket(Protocol):
    async def recv(self) -> str | bytes: ...
    async def send(self, message: str) -> None: ...
    async def close(self) -> None: ...


Connector = Callable[[str], Awaitable[Socket]]


@dataclass(frozen=True, slots=True)
class SubscriberConfig:
    heartbeat_timeout: float = 75.0  # silence before we ping (the platform beats about every 30 s)
    ping_timeout: float = 10.0  # no frame this long after a ping: the socket is dead
    renew_interval: float = (
        12 * 3600.0
    )  # re-subscribe (renews the channel's 24 h expiry) this often
    min_session: float = 10.0  # a connection shorter than this does not reset the backoff
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    max_message_bytes: int = 32 * 1024 * 1024
    open_timeout: float = 10.0
    topics_per_channel: int = MAX_TOPICS_PER_CHANNEL
    drain_timeout: float = 5.0  # read a replaced socket this long at most before closing it


@dataclass(slots=True)
class _End:
    """Why a connection's read loop stopped, and the replacement it may already have opened."""

    reason: str
    channel: Channel | None = None
    replacement: Socket | None = None


def shard_topics(queue_ids: Sequence[str], per_channel: int) -> list[list[str]]:
    topics = [queue_topic(q) for q in sorted(set(queue_ids))]
    return [topics[i : i + per_channel] for i in range(0, len(topics), per_channel)] or [[]]


def websocket_connector(config: SubscriberConfig) -> Connector:
    async def connect(uri: str) -> Socket:
        ws = await websockets.connect(
            uri,
            max_size=config.max_message_bytes,
            ping_interval=None,  # the platform's own heartbeat and our text ping do this job
            open_timeout=config.open_timeout,
            close_timeout=2,
        )
        return ws

    return connect


class _Shard:
    def __init__(self, index: int, topics: list[str]) -> None:
        self.index = index
        self.topics = topics
        self.connected = False
        self.channel: Channel | None = None
        self.rejected: list[TopicResult] = []
        self.renewed_at = 0.0
        self.token_generation = 0


class Subscriber:
    def __init__(
        self,
        *,
        api: ChannelApi,
        queue_ids: Sequence[str],
        on_event: Callable[[ConversationEvent, int], None],
        on_gap: Callable[[str], None],
        metrics: Metrics,
        clock: Clock,
        config: SubscriberConfig = SubscriberConfig(),
        connector: Connector | None = None,
        on_state: Callable[[str], None] | None = None,
    ) -> None:
        self._api = api
        self._on_event = on_event
        self._on_gap = on_gap
        self._on_state = on_state or (lambda _text: None)
        self._metrics = metrics
        self._clock = clock
        self._config = config
        self._connect = connector or websocket_connector(config)
        self._shards = [
            _Shard(i, t) for i, t in enumerate(shard_topics(queue_ids, config.topics_per_channel))
        ]
        self.epoch = 0
        self.last_frame_at: float | None = None
        self.last_heartbeat_at: float | None = None
        self.ready = asyncio.Event()
        self._stopping = False
        self._draining: set[asyncio.Task[None]] = set()

    # --- what others ask ----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return all(s.connected for s in self._shards)

    def is_continuous_since(self, epoch: int) -> bool:
        return self.connected and epoch == self.epoch

    @property
    def rejected_topics(self) -> list[TopicResult]:
        return [r for s in self._shards for r in s.rejected]

    def heartbeat_age(self) -> float | None:
        return None if self.last_frame_at is None else self._clock.monotonic() - self.last_frame_at

    # --- lifecycle ----------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                for shard in self._shards:
                    group.create_task(self._run_shard(shard))
        finally:
            for task in list(self._draining):
                task.cancel()

    def stop(self) -> None:
        self._stopping = True

    async def _run_shard(self, shard: _Shard) -> None:
        delays: Iterator[float] | None = None
        socket: Socket | None = None
        had_session = False
        while not self._stopping:
            try:
                if socket is None:
                    socket = await self._open(shard)
            except (PlatformError, ChannelGone, OSError, WebSocketException, TimeoutError) as exc:
                delays = delays or self._backoff()
                delay = next(delays)
                log.warning(
                    "channel_connect_failed",
                    shard=shard.index,
                    error=_describe(exc),
                    retry_in_s=round(delay, 3),
                )
                self._on_state(f"reconnecting (retry in {delay:.1f}s)")
                await self._clock.sleep(delay)
                continue
            self._mark_connected(shard, reconnect=had_session)
            had_session = True
            started = self._clock.monotonic()
            end = await self._pump(shard, socket)
            if end.replacement is not None:
                self._drain_later(shard, socket)
                shard.channel = end.channel or shard.channel
                socket = end.replacement
                continue  # make-before-break: no gap
            with contextlib.suppress(Exception):
                await socket.close()
            socket = None
            self._mark_gap(shard, end.reason)
            if end.reason in ("channel_ended", "channel_gone"):
                shard.channel = None
            if self._clock.monotonic() - started >= self._config.min_session:
                delays = None  # a healthy session earns a fresh backoff
            if end.reason not in ("stopping",):
                delays = delays or self._backoff()
                if self._clock.monotonic() - started < self._config.min_session:
                    await self._clock.sleep(next(delays))

    def _drain_later(self, shard: _Shard, old: Socket) -> None:
        """Read what the replaced socket still carries, then close it.

        Frames the platform sent on the old connection before the new one took over are in
        flight or buffered: closing at once would lose them without any gap being noticed.
        """
        task = asyncio.create_task(self._drain(shard, old), name=f"drain-shard-{shard.index}")
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)

    async def _drain(self, shard: _Shard, old: Socket) -> None:
        deadline = self._clock.monotonic() + self._config.drain_timeout
        try:
            while (left := deadline - self._clock.monotonic()) > 0:
                try:
                    raw = await asyncio.wait_for(old.recv(), timeout=left)
                except (ConnectionClosed, TimeoutError):
                    break
                frame = parse_frame(raw)
                if isinstance(frame, ConversationEvent):
                    self._metrics.event_received("conversation")
                    self._on_event(frame, self.epoch)
        except Exception as exc:  # a drain must never take the subscriber down
            log.warning(
                "socket_replace_failed", shard=shard.index, reason="drain", error=_describe(exc)
            )
        finally:
            with contextlib.suppress(Exception):
                await old.close()

    def _backoff(self) -> Iterator[float]:
        return jittered_backoff(
            initial=self._config.backoff_initial, maximum=self._config.backoff_max
        )

    async def _open(self, shard: _Shard) -> Socket:
        """Connect to the shard's channel, creating (and subscribing) a new one when it is gone."""
        if shard.channel is not None and not await self._api.channel_exists(shard.channel.id):
            log.info("channel_gone", shard=shard.index, channel=shard.channel.id)
            shard.channel = None
        if shard.channel is None:
            shard.channel = await self._new_channel(shard)
        try:
            return await self._connect(shard.channel.connect_uri)
        except InvalidStatus as exc:
            if exc.response.status_code == 404:
                shard.channel = None
                raise ChannelGone("the channel no longer exists") from exc
            raise

    async def _new_channel(self, shard: _Shard) -> Channel:
        channel = await self._api.create_channel()
        results = await self._api.subscribe(channel.id, shard.topics)
        self._note_subscription(shard, channel, results)
        shard.renewed_at = self._clock.monotonic()
        shard.token_generation = self._api.token_generation
        return channel

    def _note_subscription(
        self, shard: _Shard, channel: Channel, results: list[TopicResult]
    ) -> None:
        shard.rejected = [r for r in results if not r.permitted]
        for r in shard.rejected:
            log.error(
                "topic_rejected",
                topic=r.topic,
                reason=r.rejection_reason,
                missing_permissions=list(r.missing_permissions),
                hint="grant the OAuth client's role these permissions, or remove the queue from the config",
            )
        log.info(
            "channel_subscribed",
            shard=shard.index,
            channel=channel.id,
            topics=len(results) - len(shard.rejected),
            rejected=len(shard.rejected),
            expires=channel.expires.isoformat() if channel.expires else None,
        )

    # --- one connection -------------------------------------------------------------------

    async def _pump(self, shard: _Shard, socket: Socket) -> _End:
        """Read frames until the connection ends or must be replaced."""
        last_frame = self._clock.monotonic()
        pinged = False
        while not self._stopping:
            replacement = await self._maintain(shard)
            if replacement is not None:
                return replacement
            limit = self._config.ping_timeout if pinged else self._config.heartbeat_timeout
            wait = max(0.001, last_frame + limit - self._clock.monotonic())
            try:
                raw = await asyncio.wait_for(
                    socket.recv(), timeout=min(wait, self._config.heartbeat_timeout)
                )
            except TimeoutError:
                if self._clock.monotonic() - last_frame < limit:
                    continue
                if pinged:
                    log.warning(
                        "heartbeat_lost",
                        shard=shard.index,
                        silent_s=round(self._clock.monotonic() - last_frame, 3),
                    )
                    return _End("heartbeat_timeout")
                pinged = True
                with contextlib.suppress(ConnectionClosed):
                    await socket.send(PING)
                continue
            except ConnectionClosed as exc:
                return _End(f"closed_{exc.rcvd.code if exc.rcvd else 'abnormal'}")
            last_frame = self._clock.monotonic()
            pinged = False
            end = await self._dispatch(shard, raw)
            if end is not None:
                return end
        return _End("stopping")

    async def _dispatch(self, shard: _Shard, raw: str | bytes) -> _End | None:
        frame = parse_frame(raw)
        self.last_frame_at = self._clock.monotonic()
        if isinstance(frame, ConversationEvent):
            self._metrics.event_received("conversation")
            self._on_event(frame, self.epoch)
        elif isinstance(frame, Heartbeat):
            self._metrics.event_received("pong" if frame.pong else "heartbeat")
            self.last_heartbeat_at = self.last_frame_at
            self._metrics.heartbeat(self._clock.now().timestamp())
        elif isinstance(frame, SocketClosing):
            self._metrics.event_received("socket_closing")
            return await self._replace_socket(shard, "socket_closing")
        elif isinstance(frame, ChannelEnded):
            self._metrics.event_received("channel_ended")
            log.warning("channel_ended", shard=shard.index, topic=frame.topic, reason=frame.reason)
            return _End("channel_ended")
        elif isinstance(frame, UnknownFrame):
            self._metrics.event_received(
                "unknown" if frame.problem == "unknown_topic" else "malformed"
            )
            log.warning(
                "frame_ignored",
                shard=shard.index,
                topic=frame.topic,
                problem=frame.problem,
                detail=frame.detail,
            )
        return None

    async def _replace_socket(self, shard: _Shard, reason: str) -> _End:
        """Open the new socket on the same channel before the old one is closed."""
        assert shard.channel is not None
        try:
            replacement = await self._connect(shard.channel.connect_uri)
        except (OSError, WebSocketException, TimeoutError) as exc:
            log.warning(
                "socket_replace_failed", shard=shard.index, reason=reason, error=_describe(exc)
            )
            return _End(reason)
        log.info("socket_replaced", shard=shard.index, reason=reason)
        self._metrics.reconnect(reason)
        return _End(reason, shard.channel, replacement)

    async def _maintain(self, shard: _Shard) -> _End | None:
        """Renew the subscription before the channel expires; roll over to a new channel after a new token."""
        if self._api.token_generation != shard.token_generation:
            return await self._roll_over(shard)
        if (
            self._clock.monotonic() - shard.renewed_at >= self._config.renew_interval
            and shard.channel
        ):
            try:
                results = await self._api.subscribe(shard.channel.id, shard.topics)
            except NotFound:
                return _End("channel_gone")
            except PlatformError as exc:
                log.warning("subscription_renew_failed", shard=shard.index, error=str(exc))
                return None
            shard.renewed_at = self._clock.monotonic()
            self._note_subscription(shard, shard.channel, results)
        return None

    async def _roll_over(self, shard: _Shard) -> _End | None:
        """The channel dies with the token that created it: make the new one before breaking the old."""
        self._on_state("rolling channel")
        try:
            channel = await self._new_channel(shard)
            replacement = await self._connect(channel.connect_uri)
        except (PlatformError, OSError, WebSocketException, TimeoutError) as exc:
            log.warning("channel_rollover_failed", shard=shard.index, error=_describe(exc))
            shard.token_generation = (
                self._api.token_generation
            )  # try again on the next renewal only
            return None
        self._metrics.channel_rollover()
        log.info("channel_rolled_over", shard=shard.index, channel=channel.id)
        return _End("rollover", channel, replacement)

    # --- state changes ----------------------------------------------------------------------

    def _mark_connected(self, shard: _Shard, *, reconnect: bool) -> None:
        shard.connected = True
        if self.connected:
            self._metrics.set_connected(True)
            self._on_state("connected")
            self.ready.set()
        log.info(
            "socket_connected",
            shard=shard.index,
            channel=shard.channel.id if shard.channel else None,
        )
        if reconnect:
            self._on_gap("reconnected")

    def _mark_gap(self, shard: _Shard, reason: str) -> None:
        shard.connected = False
        self.epoch += 1
        self._metrics.set_connected(False)
        if reason != "stopping":
            self._metrics.reconnect(reason)
            self._on_state("reconnecting")
            log.warning("socket_disconnected", shard=shard.index, reason=reason)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
