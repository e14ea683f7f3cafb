"""Notification topics and WebSocket frame parsing (the hot path).

:func:`parse_frame` turns one text frame into a :data:`wrapupd.events.Frame` and never raises:
anything it cannot read becomes an :class:`~wrapupd.events.UnknownFrame` naming the problem
(``malformed_json``, ``bad_envelope``, ``bad_conversation``, ``unknown_topic``) with a short detail.
The JSON is decoded by ``msgspec``: the envelope first, with the body left raw; a queue topic's body
then straight into typed structs of only the fields the detector reads (:mod:`.convert`), never
through SDK models (far too slow) or intermediate dicts.

The channel and subscription calls themselves are on :class:`wrapupd.genesys.client.GenesysClient`.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from wrapupd.events import (
    ChannelEnded,
    ControlFrame,
    ConversationEvent,
    Frame,
    Heartbeat,
    SocketClosing,
    UnknownFrame,
)
from wrapupd.genesys.convert import (
    BadConversation,
    EventConversation,
    event_body_decoder,
    snapshot_from_event,
)

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
    """The conversations topic of one queue: the one topic wrapupd watches per queue."""
    return f"{_QUEUE_PREFIX}{queue_id}{_QUEUE_SUFFIX}"


@functools.lru_cache(maxsize=4096)  # every frame asks; the topics are the few subscribed
def queue_id_from_topic(topic: str) -> str | None:
    """The queue id of ``v2.routing.queues.{id}.conversations``; ``None`` for any other topic."""
    if not topic.startswith(_QUEUE_PREFIX) or not topic.endswith(_QUEUE_SUFFIX):
        return None
    queue_id = topic[len(_QUEUE_PREFIX) : -len(_QUEUE_SUFFIX)]
    return queue_id if queue_id and "." not in queue_id else None


class _Envelope(msgspec.Struct, frozen=True):
    """Every frame's envelope; the body stays raw JSON until the topic says how to read it."""

    topicName: str | None = None
    eventBody: msgspec.Raw = msgspec.Raw()
    # In-socket control frames carry these instead of a topic (any type: never a reason to fail).
    result: Any = None
    status: Any = None
    message: Any = None


_ENVELOPE = msgspec.json.Decoder(_Envelope)
_CONVERSATION = event_body_decoder()
_ANY_JSON = msgspec.json.Decoder()


class _QueueFrame(msgspec.Struct, frozen=True, gc=False):
    """The common frame, a queue topic's conversation event, read in one pass."""

    topicName: str | None = None
    eventBody: EventConversation | None = None


_QUEUE_FRAME = msgspec.json.Decoder(_QueueFrame)


def parse_frame(raw: str | bytes) -> Frame:
    """One frame in, one :data:`Frame` out; never raises.

    A conversation event, nearly every frame, is decoded in one pass; anything that pass cannot
    take (another topic, a control frame, a malformed or wrongly shaped frame) is read again by
    :func:`_parse_envelope_first`, which tells the cases apart.
    """
    try:
        frame = _QUEUE_FRAME.decode(raw)
    except Exception:  # whatever it is, the careful read names it
        return _parse_envelope_first(raw)
    topic, body = frame.topicName, frame.eventBody
    queue_id = queue_id_from_topic(topic) if topic else None
    if topic is None or queue_id is None or body is None:
        return _parse_envelope_first(raw)
    try:
        return ConversationEvent(topic, queue_id, snapshot_from_event(body))
    except Exception:  # a body it cannot convert: the careful read names the problem
        return _parse_envelope_first(raw)


def _parse_envelope_first(raw: str | bytes) -> Frame:
    """The envelope first, its body by topic: every frame the one-pass read did not take."""
    try:
        envelope = _ENVELOPE.decode(raw)
    except msgspec.ValidationError as exc:
        return _unreadable_envelope(raw, exc)
    except Exception as exc:  # malformed JSON, invalid UTF-8, a str with lone surrogates
        return UnknownFrame(None, "malformed_json", _short(str(exc)))
    topic = envelope.topicName
    if not topic:
        return _control(envelope)
    try:
        return _route(topic, envelope.eventBody)
    except Exception as exc:  # the promise is "never raises": a parser bug becomes a counted frame
        return UnknownFrame(topic, "bad_conversation", _short(repr(exc)))


_NO_TOPIC = UnknownFrame(None, "bad_envelope", "topicName missing or not a string")


def _control(envelope: _Envelope) -> Frame:
    """A frame without a topic: a control frame when its ``result`` is an HTTP-like status."""
    code = _status_code(envelope.result)
    if code is None:
        return _NO_TOPIC
    return ControlFrame(code, _text(envelope.status), _text(envelope.message))


def _status_code(result: Any) -> int | None:
    """``"404"`` or ``404`` -> 404; anything that is not an HTTP-like status -> None."""
    if isinstance(result, str) and result.isdigit():
        result = int(result)
    if isinstance(result, int) and not isinstance(result, bool) and 100 <= result < 600:
        return result
    return None


def _text(value: Any) -> str | None:
    return _short(value) if isinstance(value, str) and value else None


def _unreadable_envelope(raw: str | bytes, exc: msgspec.ValidationError) -> UnknownFrame:
    """Well-formed JSON of the wrong shape is a bad envelope; otherwise the JSON is malformed."""
    try:
        _ANY_JSON.decode(raw)
    except Exception as malformed:
        return UnknownFrame(None, "malformed_json", _short(str(malformed)))
    return UnknownFrame(None, "bad_envelope", _short(str(exc)))


def _route(topic: str, body: msgspec.Raw) -> Frame:
    queue_id = queue_id_from_topic(topic)
    if queue_id is not None:
        return _conversation_event(topic, queue_id, body)
    if topic == METADATA_TOPIC:
        return _metadata(_loose(body))
    if topic == _SOCKET_CLOSING:
        return SocketClosing()
    if topic.startswith(_CHANNEL_ENDED_PREFIXES):
        return ChannelEnded(topic, _reason(_loose(body)))
    return UnknownFrame(topic, "unknown_topic")


def _conversation_event(topic: str, queue_id: str, body: msgspec.Raw) -> Frame:
    try:
        snapshot = snapshot_from_event(_CONVERSATION.decode(body))
    except msgspec.ValidationError as exc:
        return UnknownFrame(topic, "bad_conversation", _short(f"eventBody: {exc}"))
    except msgspec.DecodeError:  # an envelope without an eventBody
        return UnknownFrame(topic, "bad_conversation", "eventBody missing")
    except BadConversation as exc:
        return UnknownFrame(topic, "bad_conversation", _short(str(exc)))
    return ConversationEvent(topic, queue_id, snapshot)


def _loose(body: msgspec.Raw) -> Any:
    """A small system body as plain JSON values (``None`` when absent)."""
    return _ANY_JSON.decode(body) if len(body) else None


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


def _short(text: str) -> str:
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"
