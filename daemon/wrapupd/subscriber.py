"""The notification channel, end to end: create, subscribe, connect, watch heartbeats, renew, roll
over, reconnect, and say when events may have been lost.

The platform keeps no events for a socket that is down, so every gap bumps :attr:`Subscriber.epoch`
and tells the sink, which asks for a reconciliation. Two moves avoid gaps altogether: on
``socket_closing`` the new socket is opened before the old one closes (the platform drops the older
connection of a channel), and when the token is renewed a new channel is created and connected
before the old one (which dies with its token) is closed. Why a connection ended is an
:class:`EndReason`; which failures a reconnect can cure is :data:`RECONNECTABLE`, on every path.
Every wait (heartbeat silence, backoff, draining a replaced socket) is on the injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import structlog
from websockets.exceptions import ConnectionClosed

from wrapupd.backoff import jittered_backoff
from wrapupd.channels import (
    MAX_TOPICS_PER_CHANNEL,
    RECONNECTABLE,
    ChannelApi,
    Connector,
    End,
    EndReason,
    Shard,
    ShardTools,
    Socket,
    describe,
    reassign_topics,
    shard_topics,
    websocket_connector,
)
from wrapupd.clock import Clock
from wrapupd.events import (
    ChannelEnded,
    ControlFrame,
    ConversationEvent,
    Heartbeat,
    SocketClosing,
    TopicResult,
    UnknownFrame,
)
from wrapupd.genesys.notifications import PING, parse_frame
from wrapupd.metrics import Metrics
from wrapupd.ratelimit import RateLimiter
from wrapupd.redaction import channel_tag

log = structlog.get_logger("wrapupd.subscriber")


@dataclass(frozen=True, slots=True)
class SubscriberConfig:
    """Heartbeat, renewal, backoff and socket limits of the notification channel."""

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


class EventSink(Protocol):
    """Where the subscriber delivers what it learns: conversation events, and gaps in the stream."""

    def on_event(self, event: ConversationEvent, epoch: int) -> None: ...

    def on_gap(self, reason: str) -> None: ...


class Subscriber:
    """Keeps one channel per shard of topics connected, and reports events and gaps to a sink."""

    def __init__(
        self,
        *,
        api: ChannelApi,
        queue_ids: Callable[[], Iterable[str]],
        metrics: Metrics,
        clock: Clock,
        config: SubscriberConfig = SubscriberConfig(),
        connector: Connector | None = None,
        on_state: Callable[[str], None] | None = None,
        backoff: Callable[[], Iterator[float]] | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._queue_ids = queue_ids
        self._backoff = backoff or (
            lambda: jittered_backoff(initial=config.backoff_initial, maximum=config.backoff_max)
        )
        self._on_state = on_state or (lambda _text: None)
        self._metrics = metrics
        self._clock = clock
        self._config = config
        connect = connector or websocket_connector(
            max_message_bytes=config.max_message_bytes, open_timeout=config.open_timeout
        )
        self._tools = ShardTools(
            api, connect, clock, metrics, self._on_state, self._backoff, limiter
        )
        self._shards: list[Shard] = []
        self.epoch = 0
        self.last_frame_at: float | None = None
        self.ready = asyncio.Event()
        self._stopping = False
        self._draining: set[asyncio.Task[None]] = set()

    # --- what others ask ----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Every shard's socket is up (False before the first connection)."""
        return bool(self._shards) and all(s.connected for s in self._shards)

    def is_continuous_since(self, epoch: int) -> bool:
        """No gap since ``epoch``: what arrived then is still the latest news."""
        return self.connected and epoch == self.epoch

    @property
    def rejected_topics(self) -> list[TopicResult]:
        """Topics the platform refused (a missing permission), across every shard."""
        return [r for s in self._shards for r in s.rejected]

    @property
    def shards(self) -> tuple[Shard, ...]:
        """Each shard of topics and its channel, for the status page (read only)."""
        return tuple(self._shards)

    def heartbeat_age(self) -> float | None:
        """Seconds since the last frame of any kind, or None before the first one."""
        return None if self.last_frame_at is None else self._clock.monotonic() - self.last_frame_at

    # --- lifecycle ----------------------------------------------------------------------------

    async def run(self, sink: EventSink) -> None:
        """Connect every shard and keep it connected until :meth:`stop` (or cancellation)."""
        topics = shard_topics(self._queue_ids(), self._config.topics_per_channel)
        self._shards = [Shard(i, t, self._tools) for i, t in enumerate(topics)]
        try:
            async with asyncio.TaskGroup() as group:
                for shard in self._shards:
                    group.create_task(self._run_shard(shard, sink))
        finally:
            for task in list(self._draining):
                task.cancel()

    def follow_queues(self) -> list[str]:
        """The watched queues changed (a code refresh): re-subscribe the shards whose topics
        change; returns the new topics no channel had room for."""
        current = [shard.topics for shard in self._shards]
        wanted, left = reassign_topics(current, self._queue_ids(), self._config.topics_per_channel)
        for shard, topics in zip(self._shards, wanted, strict=True):
            if topics != shard.topics:
                shard.retopic(topics)
        return left

    def stop(self) -> None:
        """Stop reading after the current frame; the next gap is not reported as one."""
        self._stopping = True

    async def _run_shard(self, shard: Shard, sink: EventSink) -> None:
        delays: Iterator[float] | None = None
        socket: Socket | None = None
        while not self._stopping:
            if socket is None:
                try:
                    socket = await shard.open()
                except RECONNECTABLE as exc:
                    delays = delays or self._backoff()
                    await self._wait_to_reconnect(shard, exc, next(delays))
                    continue
            self._mark_connected(shard, sink)  # a replacement too: the sink sweeps what it hid
            started = self._clock.monotonic()
            end = await self._pump(shard, socket, sink)
            if end.replacement is not None:
                self._drain_later(shard, socket, sink)
                shard.channel = end.channel or shard.channel
                socket = end.replacement
                continue  # make-before-break: no gap
            with contextlib.suppress(Exception):
                await socket.close()
            socket = None
            self._mark_gap(shard, end)
            short = self._clock.monotonic() - started < self._config.min_session
            delays = (delays if short else None) or self._backoff()  # a healthy session resets it
            if short and end.reason is not EndReason.STOPPING:
                await self._clock.sleep(next(delays))

    async def _wait_to_reconnect(self, shard: Shard, error: BaseException, delay: float) -> None:
        log.warning(
            "channel_connect_failed",
            shard=shard.index,
            error=describe(error),
            retry_in_s=round(delay, 3),
        )
        self._on_state(f"reconnecting (retry in {delay:.1f}s)")
        await self._clock.sleep(delay)

    def _drain_later(self, shard: Shard, old: Socket, sink: EventSink) -> None:
        """Read what the replaced socket still carries, then close it.

        Frames the platform sent on the old connection before the new one took over are in
        flight or buffered: closing at once would lose them without any gap being noticed.
        """
        task = asyncio.create_task(self._drain(shard, old, sink), name=f"drain-shard-{shard.index}")
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)

    async def _drain(self, shard: Shard, old: Socket, sink: EventSink) -> None:
        deadline = self._clock.monotonic() + self._config.drain_timeout
        try:
            while (left := deadline - self._clock.monotonic()) > 0:
                try:
                    raw = await self._clock.wait_for(old.recv(), left)
                except (ConnectionClosed, TimeoutError):
                    break
                frame = parse_frame(raw)
                if isinstance(frame, ConversationEvent):
                    self._metrics.frame_received(frame)
                    sink.on_event(frame, self.epoch)
        except Exception as exc:  # a drain must never take the subscriber down
            log.warning(
                "socket_replace_failed", shard=shard.index, reason="drain", error=describe(exc)
            )
        finally:
            with contextlib.suppress(Exception):
                await old.close()

    # --- one connection -------------------------------------------------------------------

    async def _pump(self, shard: Shard, socket: Socket, sink: EventSink) -> End:
        """Read frames until the connection ends or must be replaced."""
        last_frame = self._clock.monotonic()
        pinged = False
        while not self._stopping:
            replacement = await shard.maintain(self._config.renew_interval)
            if replacement is not None:
                return replacement
            limit = self._config.ping_timeout if pinged else self._config.heartbeat_timeout
            wait = max(0.001, last_frame + limit - self._clock.monotonic())
            try:
                raw = await self._clock.wait_for(
                    socket.recv(), min(wait, self._config.heartbeat_timeout)
                )
            except TimeoutError:
                if self._clock.monotonic() - last_frame < limit:
                    continue  # woke a hair early, or only to run the maintenance above
                if pinged:
                    silent = round(self._clock.monotonic() - last_frame, 3)
                    log.warning("heartbeat_lost", shard=shard.index, silent_s=silent)
                    return End(EndReason.HEARTBEAT_TIMEOUT)
                pinged = True
                with contextlib.suppress(ConnectionClosed):
                    await socket.send(PING)
                continue
            except ConnectionClosed as exc:
                return End(EndReason.CLOSED, close_code=exc.rcvd.code if exc.rcvd else None)
            last_frame = self._clock.monotonic()
            pinged = False
            end = await self._dispatch(shard, raw, sink)
            if end is not None:
                return end
        return End(EndReason.STOPPING)

    async def _dispatch(self, shard: Shard, raw: str | bytes, sink: EventSink) -> End | None:
        frame = parse_frame(raw)
        self.last_frame_at = self._clock.monotonic()
        self._metrics.frame_received(frame)
        if isinstance(frame, ConversationEvent):
            sink.on_event(frame, self.epoch)
        elif isinstance(frame, SocketClosing):
            return await shard.replace_socket(EndReason.SOCKET_CLOSING)
        elif isinstance(frame, ChannelEnded):
            log.warning("channel_ended", shard=shard.index, topic=frame.topic, reason=frame.reason)
            return End(EndReason.CHANNEL_ENDED)
        elif isinstance(frame, ControlFrame):
            return self._on_control(shard, frame)
        elif isinstance(frame, UnknownFrame):
            log.warning(
                "frame_ignored",
                shard=shard.index,
                topic=frame.topic,
                problem=frame.problem,
                detail=frame.detail,
            )
            if frame.problem in ("bad_envelope", "bad_conversation"):  # a sweep reads it again
                sink.on_gap(f"unreadable frame ({frame.problem})")
        elif isinstance(frame, Heartbeat):
            self._metrics.heartbeat(self._clock.now().timestamp())
        return None

    def _on_control(self, shard: Shard, frame: ControlFrame) -> End | None:
        """A 404 ends the channel at once (no waiting for the heartbeat watchdog); acks are
        routine; a refused subscribe means a queue's events do not arrive."""
        if frame.channel_gone:
            log.info("channel_gone", shard=shard.index, message=frame.message)
            return End(EndReason.CHANNEL_GONE)
        if frame.acknowledged:
            log.debug("subscribe_acknowledged", shard=shard.index, status=frame.status)
            return None
        log.error(
            "subscribe_failed",
            shard=shard.index,
            result=frame.result,
            status=frame.status,
            message=frame.message,
        )
        return None

    # --- state changes ----------------------------------------------------------------------

    def _mark_connected(self, shard: Shard, sink: EventSink) -> None:
        reconnect = shard.had_session
        shard.connected = shard.had_session = True
        if self.connected:
            self._metrics.set_connected(True)
            self._on_state("connected")
            self.ready.set()
        log.info(
            "socket_connected",
            shard=shard.index,
            channel=channel_tag(shard.channel.id) if shard.channel else None,
        )
        if reconnect:
            sink.on_gap("reconnected")

    def _mark_gap(self, shard: Shard, end: End) -> None:
        shard.connected = False
        self.epoch += 1
        self._metrics.set_connected(False)
        if end.reason is not EndReason.STOPPING:
            self._metrics.reconnect(end.label)
            self._on_state("reconnecting")
            level = "info" if end.routine else "warning"  # an idle close (1001) is routine
            getattr(log, level)("socket_disconnected", shard=shard.index, reason=end.label)
        if end.reason.channel_lost:
            shard.channel = None
