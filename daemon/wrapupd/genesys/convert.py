"""Platform shapes -> wrapupd's own types (:mod:`wrapupd.events`).

Two sources of conversation snapshots, one result type:

- **event bodies** (``v2.routing.queues.{id}.conversations``) are read straight from the decoded
  JSON dicts: building SDK models costs far more than the whole rest of the hot path;
- **REST** ``GET /api/v2/conversations/{id}`` answers arrive as SDK ``Conversation`` models and are
  read by attribute.

Both give participants the same fields. What the SDK (269) models hold, checked in its source:
``Participant`` has ``start_acw_time``, ``end_acw_time``, ``wrapup`` (``Wrapup.code``),
``wrapup_prompt``, ``wrapup_timeout_ms`` and ``wrapup_skipped``; every media communication model
(``Call``, ``Callback``, ``ConversationChat``, ``Email``, ``Message``, ``SocialExpression``,
``Video``, ``Cobrowsesession``, ``Screenshare``) has ``wrapup``, ``after_call_work``
(``AfterCallWork {state, start_time, end_time}``) and ``after_call_work_required``. The SDK
replaces enum values it does not know with ``"outdated_sdk_version"``; that string is passed on
as is (it is never ``"pending"``, so the detector treats it as "not waiting").

This module does not import the SDK: models are read by attribute name, which keeps
``wrapupd.genesys.notifications`` cheap to import.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from wrapupd.events import (
    Channel,
    Communication,
    ConversationSnapshot,
    Participant,
    Queue,
    SnapshotSource,
    TopicResult,
    WrapupCode,
)

__all__ = [
    "MEDIA_ARRAYS",
    "BadConversation",
    "channel_from_model",
    "queue_from_model",
    "snapshot_from_event_body",
    "snapshot_from_model",
    "topic_results_from_model",
    "wrapup_code_from_model",
]

# (event / REST JSON key, SDK model attribute, Communication.media_type)
MEDIA_ARRAYS: tuple[tuple[str, str, str], ...] = (
    ("calls", "calls", "call"),
    ("callbacks", "callbacks", "callback"),
    ("chats", "chats", "chat"),
    ("emails", "emails", "email"),
    ("messages", "messages", "message"),
    ("socialExpressions", "social_expressions", "social"),
    ("videos", "videos", "video"),
    ("cobrowsesessions", "cobrowsesessions", "cobrowse"),
    ("screenshares", "screenshares", "screenshare"),
)
_EVENT_MEDIA = tuple((key, media) for key, _, media in MEDIA_ARRAYS)
_MODEL_MEDIA = tuple((attr, media) for _, attr, media in MEDIA_ARRAYS)


class BadConversation(ValueError):
    """A conversation payload of the wrong shape; the message is a short detail for logs."""


# --- event bodies (dicts) -------------------------------------------------------------------


def snapshot_from_event_body(body: object) -> ConversationSnapshot:
    """Read a queue-topic ``eventBody``; unknown keys are ignored, wrong types raise."""
    if not isinstance(body, dict):
        raise BadConversation("eventBody is not an object")
    conversation_id = _required_id(body.get("id"), "conversation id")
    raw_participants = _list(body.get("participants"), "participants")
    participants = tuple(_event_participant(p) for p in raw_participants)
    return ConversationSnapshot(conversation_id, participants, SnapshotSource.EVENT)


def _event_participant(raw: object) -> Participant:
    if not isinstance(raw, dict):
        raise BadConversation("participant is not an object")
    get = raw.get
    communications: list[Communication] = []
    for key, media_type in _EVENT_MEDIA:
        items = get(key)
        if items is not None:
            communications.extend(_event_communication(c, media_type) for c in _list(items, key))
    return Participant(
        id=_required_id(get("id"), "participant id"),
        purpose=_str(get("purpose"), "purpose"),
        user_id=_str(get("userId"), "userId"),
        queue_id=_str(get("queueId"), "queueId"),
        start_acw_time=_datetime(get("startAcwTime"), "startAcwTime"),
        end_acw_time=_datetime(get("endAcwTime"), "endAcwTime"),
        wrapup_code=_wrapup_code(get("wrapup")),
        wrapup_prompt=_str(get("wrapupPrompt"), "wrapupPrompt"),
        wrapup_timeout_ms=_int(get("wrapupTimeoutMs"), "wrapupTimeoutMs"),
        communications=tuple(communications),
    )


def _event_communication(raw: object, media_type: str) -> Communication:
    if not isinstance(raw, dict):
        raise BadConversation(f"{media_type} communication is not an object")
    acw = raw.get("afterCallWork")
    if acw is not None and not isinstance(acw, dict):
        raise BadConversation("afterCallWork is not an object")
    return Communication(
        id=_str(raw.get("id"), "communication id") or "",
        media_type=media_type,
        state=_str(raw.get("state"), "state"),
        acw_state=_str(acw.get("state"), "afterCallWork.state") if acw else None,
        wrapup_code=_wrapup_code(raw.get("wrapup")),
    )


def _wrapup_code(wrapup: object) -> str | None:
    """``wrapup.code``; an empty code counts as no code (any non-empty value is "coded")."""
    if wrapup is None:
        return None
    if not isinstance(wrapup, dict):
        raise BadConversation("wrapup is not an object")
    return _str(wrapup.get("code"), "wrapup.code") or None


def _required_id(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadConversation(f"{name} missing or not a string")
    return value


def _str(value: object, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise BadConversation(f"{name} is not a string")


def _int(value: object, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise BadConversation(f"{name} is not an integer")


def _list(value: object, name: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise BadConversation(f"{name} is not a list")


def _datetime(value: object, name: str) -> datetime | None:
    """ISO-8601 with ``Z`` or an offset (``+00:00``, as the SDK sends); a naive time is UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):  # an SDK model's (dateutil's tzutc): normalise to UTC
        return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        raise BadConversation(f"{name} is not a string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadConversation(f"{name} is not an ISO-8601 time") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


# --- REST answers (SDK models, read by attribute) ---------------------------------------------


def snapshot_from_model(conversation: Any) -> ConversationSnapshot:
    """An SDK ``Conversation`` (``GET /api/v2/conversations/{id}``) as a REST snapshot."""
    conversation_id = _required_id(getattr(conversation, "id", None), "conversation id")
    participants = tuple(
        _model_participant(p) for p in getattr(conversation, "participants", None) or ()
    )
    return ConversationSnapshot(conversation_id, participants, SnapshotSource.REST)


def _model_participant(p: Any) -> Participant:
    communications: list[Communication] = []
    for attr, media_type in _MODEL_MEDIA:
        for c in getattr(p, attr, None) or ():
            communications.append(_model_communication(c, media_type))
    return Participant(
        id=_required_id(p.id, "participant id"),
        purpose=_str(p.purpose, "purpose"),
        user_id=_str(p.user_id, "userId"),
        queue_id=_str(p.queue_id, "queueId"),
        start_acw_time=_datetime(p.start_acw_time, "startAcwTime"),
        end_acw_time=_datetime(p.end_acw_time, "endAcwTime"),
        wrapup_code=_model_wrapup_code(p.wrapup),
        wrapup_prompt=_str(p.wrapup_prompt, "wrapupPrompt"),
        wrapup_timeout_ms=_int(p.wrapup_timeout_ms, "wrapupTimeoutMs"),
        communications=tuple(communications),
    )


def _model_communication(c: Any, media_type: str) -> Communication:
    acw = getattr(c, "after_call_work", None)
    return Communication(
        id=_str(getattr(c, "id", None), "communication id") or "",
        media_type=media_type,
        state=_str(getattr(c, "state", None), "state"),
        acw_state=_str(getattr(acw, "state", None), "afterCallWork.state"),
        wrapup_code=_model_wrapup_code(getattr(c, "wrapup", None)),
    )


def _model_wrapup_code(wrapup: Any) -> str | None:
    return _str(getattr(wrapup, "code", None), "wrapup.code") or None


def queue_from_model(queue: Any) -> Queue:
    acw = getattr(queue, "acw_settings", None)
    return Queue(
        id=_required_id(queue.id, "queue id"),
        name=queue.name or "",
        wrapup_prompt=_str(getattr(acw, "wrapup_prompt", None), "acwSettings.wrapupPrompt"),
        acw_timeout_ms=_int(getattr(acw, "timeout_ms", None), "acwSettings.timeoutMs"),
    )


def wrapup_code_from_model(code: Any) -> WrapupCode:
    return WrapupCode(id=_required_id(code.id, "wrap-up code id"), name=code.name or "")


def channel_from_model(channel: Any) -> Channel:
    return Channel(
        id=_required_id(channel.id, "channel id"),
        connect_uri=_required_id(channel.connect_uri, "channel connectUri"),
        expires=_datetime(channel.expires, "channel expires"),
    )


def topic_results_from_model(listing: Any) -> list[TopicResult]:
    """``ChannelTopicEntityListing``; without a ``state`` a listed topic counts as permitted."""
    results: list[TopicResult] = []
    for topic in getattr(listing, "entities", None) or ():
        state = getattr(topic, "state", None)
        results.append(
            TopicResult(
                topic=topic.id or "",
                permitted=state is None or str(state).lower() == "permitted",
                rejection_reason=getattr(topic, "rejection_reason", None),
                missing_permissions=tuple(getattr(topic, "missing_permissions", None) or ()),
            )
        )
    return results
