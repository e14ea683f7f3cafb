"""Notification topics and WebSocket frame parsing (the hot path).

:func:`parse_frame` turns one text frame into a :data:`wrapupd.events.Frame` and never raises:
anything it cannot read becomes an :class:`~wrapupd.events.UnknownFrame` naming the problem
(``malformed_json``, ``bad_envelope``, ``bad_conversation``, ``unknown_topic``) with a short detail.
Conversation bodies are read from the decoded dicts, never through SDK models (far too slow).

The channel and subscription calls themselves are on :class:`wrapupd.genesys.client.GenesysClient`.
"""

from __future__ import annotations

import json
from typing import Any

from wrapupd.events import (
    ChannelEnded,
    ConversationEvent,
    Frame,
    Heartbeat,
    SocketClosing,
    UnknownFrame,
)
from wrapupd.genesys.convert import BadConversation, snapshot_from_event_body

__all__ = [
    "METADATA_TOPIC",
    "PING",
    "parse_frame",
    "queue_id_from_topic",
    "queue_topic",
]

METADATA_TOPIC = "channel.metadata"
PING = '{"message":"ping"}'  # the client's health check; the answer is a "pong" metadata frame
_QUEUE_PREFIX = "v2.routing.queues."
_QUEUE_SUFFIX = ".conversations"
_SOCKET_CLOSING = "v2.system.socket_closing"
_CHANNEL_ENDED_PREFIXES = ("v2.system.no_longer_subscribed", "v2.system.token_revoked")
_MAX_DETAIL = 200


def queue_topic(queue_id: str) -> str:
    return f"{_QUEUE_PREFIX}{queue_id}{_QUEUE_SUFFIX}"


def queue_id_from_topic(topic: str) -> str | None:
    """The queue id of ``v2.routing.queues.{id}.conversations``; ``None`` for any other topic."""
    if not topic.startswith(_QUEUE_PREFIX) or not topic.endswith(_QUEUE_SUFFIX):
        return None
    queue_id = topic[len(_QUEUE_PREFIX) : -len(_QUEUE_SUFFIX)]
    return queue_id if queue_id and "." not in queue_id else None


def parse_frame(raw: str | bytes) -> Frame:
    """One frame in, one :data:`Frame` out; never raises."""
    try:
        envelope = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        return UnknownFrame(None, "malformed_json", _short(str(exc)))
    try:
        return _route(envelope)
    except Exception as exc:  # the promise is "never raises": a parser bug becomes a counted frame
        return UnknownFrame(_topic_of(envelope), "bad_conversation", _short(repr(exc)))


def _route(envelope: Any) -> Frame:
    if not isinstance(envelope, dict):
        return UnknownFrame(None, "bad_envelope", "frame is not a JSON object")
    topic = envelope.get("topicName")
    if not isinstance(topic, str) or not topic:
        return UnknownFrame(None, "bad_envelope", "topicName missing or not a string")
    body = envelope.get("eventBody")
    queue_id = queue_id_from_topic(topic)
    if queue_id is not None:
        return _conversation_event(topic, queue_id, body)
    if topic == METADATA_TOPIC:
        return _metadata(body)
    if topic == _SOCKET_CLOSING:
        return SocketClosing()
    if topic.startswith(_CHANNEL_ENDED_PREFIXES):
        return ChannelEnded(topic, _reason(body))
    return UnknownFrame(topic, "unknown_topic")


def _conversation_event(topic: str, queue_id: str, body: Any) -> Frame:
    try:
        snapshot = snapshot_from_event_body(body)
    except BadConversation as exc:
        return UnknownFrame(topic, "bad_conversation", _short(str(exc)))
    return ConversationEvent(topic, queue_id, snapshot)


def _metadata(body: Any) -> Heartbeat:
    """A heartbeat or a pong; any metadata frame proves the socket alive."""
    message = body.get("message") if isinstance(body, dict) else None
    return Heartbeat(pong=isinstance(message, str) and message.lower() == "pong")


def _reason(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    for key in ("reason", "message"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _topic_of(envelope: Any) -> str | None:
    topic = envelope.get("topicName") if isinstance(envelope, dict) else None
    return topic if isinstance(topic, str) else None


def _short(text: str) -> str:
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"
