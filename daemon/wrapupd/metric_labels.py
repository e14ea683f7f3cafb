"""Label values for wrapupd's metrics, kept bounded: frame kinds, status classes, templated
routes and reasons from a short vocabulary, so no id or free text ever becomes a time series."""

from __future__ import annotations

import enum
import re

from wrapupd.events import (
    ControlFrame,
    ConversationEvent,
    Frame,
    Heartbeat,
    SocketClosing,
    UnknownFrame,
)

# Free-form reasons are squeezed into this shape; anything else (an exception message, an id)
# becomes "other" so a careless caller cannot create unbounded series.
_REASON_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_CAMEL_BOUNDARY_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# A path segment that is an id rather than part of the route: a UUID, or any long run of
# hex/digits. Templates such as ``{conversationId}`` are left alone.
_ID_SEGMENT_RE = re.compile(r"^(?:[0-9a-fA-F]{8}-[0-9a-fA-F-]{27}|[0-9a-fA-F-]{16,}|\d+)$")


class EventKind(enum.StrEnum):
    """What arrived on the notification socket, as counted by ``wrapupd_events_total``."""

    CONVERSATION = "conversation"
    HEARTBEAT = "heartbeat"
    PONG = "pong"
    SOCKET_CLOSING = "socket_closing"
    CHANNEL_ENDED = "channel_ended"
    CHANNEL_GONE = "channel_gone"  # an in-socket {"result": "404"}
    SUBSCRIBE_ACK = "subscribe_ack"
    SUBSCRIBE_FAILED = "subscribe_failed"
    UNKNOWN = "unknown"
    MALFORMED = "malformed"


def frame_kind(frame: Frame) -> EventKind:
    """Map a parsed frame to its event kind, so callers count frames without an if-ladder."""
    if isinstance(frame, Heartbeat):
        return EventKind.PONG if frame.pong else EventKind.HEARTBEAT
    if isinstance(frame, UnknownFrame):
        return EventKind.UNKNOWN if frame.problem == "unknown_topic" else EventKind.MALFORMED
    if isinstance(frame, ConversationEvent):
        return EventKind.CONVERSATION
    if isinstance(frame, SocketClosing):
        return EventKind.SOCKET_CLOSING
    if isinstance(frame, ControlFrame):
        return _control_kind(frame)
    return EventKind.CHANNEL_ENDED


def _control_kind(frame: ControlFrame) -> EventKind:
    if frame.channel_gone:
        return EventKind.CHANNEL_GONE
    return EventKind.SUBSCRIBE_ACK if frame.acknowledged else EventKind.SUBSCRIBE_FAILED


def status_class(status: int) -> str:
    """``204 -> "2xx"``; 0 (the callback's "no HTTP answer") or nonsense -> ``"error"``."""
    if 200 <= status < 600:
        return f"{status // 100}xx"
    return "error"


def endpoint_label(endpoint: str) -> str:
    """Keep a route bounded: drop the query and replace id-like path segments with ``{id}``.

    The SDK usually reports the templated path already; this is the safety net for a caller that
    passes the concrete URL path, which would otherwise put conversation ids into labels.
    """
    path = endpoint.split("?", 1)[0]
    parts = ["{id}" if _ID_SEGMENT_RE.match(seg) else seg for seg in path.split("/")]
    return "/".join(parts)


def reason_label(reason: str) -> str:
    """A reason label from a short fixed vocabulary; anything free-form becomes ``"other"``.

    Exception class names are a bounded vocabulary too, so ``RateLimited`` is accepted and
    spelled ``rate_limited``, matching the snake_case reasons callers pass directly.
    """
    snake = _CAMEL_BOUNDARY_RE.sub("_", reason).lower() if reason.isidentifier() else reason
    return snake if _REASON_RE.match(snake) else "other"
