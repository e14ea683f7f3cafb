"""Platform shapes -> wrapupd's own types (:mod:`wrapupd.events`).

Two sources of conversation snapshots, one result type:

- **event bodies** (``v2.routing.queues.{id}.conversations``) are decoded by ``msgspec`` straight
  from the frame's JSON into small typed structs of only the fields wrapupd reads
  (:class:`EventConversation`), then into wrapupd's types, agent legs in ACW only: building SDK
  models costs far more than the whole rest of the hot path;
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
from itertools import compress
from typing import Annotated, Any

import msgspec

from wrapupd.detector import may_concern_wrapup
from wrapupd.events import (
    Channel,
    Communication,
    ConversationSnapshot,
    Participant,
    Queue,
    TopicResult,
    WrapupCode,
)
from wrapupd.genesys.sdk import model

__all__ = [
    "MEDIA_ARRAYS",
    "BadConversation",
    "EventConversation",
    "channel_from_model",
    "event_body_decoder",
    "queue_from_model",
    "required_id",
    "snapshot_from_event",
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
_MODEL_MEDIA = tuple((attr, media) for _, attr, media in MEDIA_ARRAYS)


class BadConversation(ValueError):
    """A conversation payload of the wrong shape; the message is a short detail for logs."""


# --- event bodies (JSON, decoded by msgspec) --------------------------------------------------
#
# Typed structs of only the fields wrapupd reads: msgspec skips every other key without building
# it, and checks each field's type in C. Enumerations (purpose, state, afterCallWork.state, the
# prompt) are plain strings, so a value the platform adds tomorrow passes through unharmed.

_Id = Annotated[str, msgspec.Meta(min_length=1)]


class _Wrapup(msgspec.Struct, frozen=True, gc=False):
    code: str | None = None


class _AfterCallWork(msgspec.Struct, frozen=True, gc=False):
    state: str | None = None


class _Communication(msgspec.Struct, frozen=True, gc=False, rename="camel"):
    id: str | None = None
    state: str | None = None
    after_call_work: _AfterCallWork | None = None
    wrapup: _Wrapup | None = None


_Media = list[_Communication] | None


class _Participant(msgspec.Struct, frozen=True, gc=False, rename="camel"):
    id: _Id
    purpose: str | None = None
    user_id: str | None = None
    queue_id: str | None = None
    start_acw_time: datetime | None = None
    end_acw_time: datetime | None = None
    wrapup: _Wrapup | None = None
    wrapup_prompt: str | None = None
    wrapup_timeout_ms: int | float | None = None
    calls: _Media = None
    callbacks: _Media = None
    chats: _Media = None
    emails: _Media = None
    messages: _Media = None
    social_expressions: _Media = None
    videos: _Media = None
    cobrowsesessions: _Media = None
    screenshares: _Media = None


class EventConversation(msgspec.Struct, frozen=True, gc=False):
    """The fields of a queue-topic ``eventBody`` that wrapupd reads."""

    id: _Id
    participants: list[_Participant] | None = None


def event_body_decoder() -> msgspec.json.Decoder[EventConversation]:
    """A JSON decoder straight into :class:`EventConversation` (reuse it: building one costs)."""
    return msgspec.json.Decoder(EventConversation)


def snapshot_from_event(conversation: EventConversation) -> ConversationSnapshot:
    """An :class:`EventConversation` as wrapupd's snapshot; raises :class:`BadConversation`.

    Only the agent legs that entered ACW are built (:func:`~wrapupd.detector.may_concern_wrapup`):
    the customer, IVR, ACD and unanswered legs that make up most of a frame are no decision's
    business, and building them was most of the frame's cost.
    """
    participants = tuple(
        [
            _event_participant(p)
            for p in conversation.participants or ()
            if may_concern_wrapup(p.purpose, p.start_acw_time)
        ]
    )
    return ConversationSnapshot(conversation.id, participants)


def _event_participant(p: _Participant) -> Participant:
    # The hot path's inner loop, so written flat: one C call gathers the nine media arrays and
    # another keeps the non-empty ones (both tuples follow the struct's field order), and the
    # structs are built positionally, in :mod:`wrapupd.events`' field order.
    media = _astuple(p)[_FIRST_MEDIA:]
    communications = tuple(
        [
            Communication(
                c.id or "",
                media_type,
                c.state,
                c.after_call_work.state if c.after_call_work is not None else None,
                (c.wrapup.code or None) if c.wrapup is not None else None,
            )
            for items, media_type in compress(zip(media, _MEDIA_TYPES), media)  # noqa: B905
            for c in items
        ]
    )
    start, end, wrapup, timeout = p.start_acw_time, p.end_acw_time, p.wrapup, p.wrapup_timeout_ms
    return Participant(
        p.id,
        p.purpose,
        p.user_id,
        p.queue_id,
        start if start is None or start.tzinfo else start.replace(tzinfo=UTC),
        end if end is None or end.tzinfo else end.replace(tzinfo=UTC),
        (wrapup.code or None) if wrapup is not None else None,
        p.wrapup_prompt,
        timeout if type(timeout) is int else _int(timeout, "wrapupTimeoutMs"),
        communications,
    )


_astuple = msgspec.structs.astuple
_FIRST_MEDIA = _Participant.__struct_fields__.index("calls")
_MEDIA_TYPES = tuple(
    {attr: media for _, attr, media in MEDIA_ARRAYS}[field]
    for field in _Participant.__struct_fields__[_FIRST_MEDIA:]
)


def required_id(value: object, name: str) -> str:
    """``value`` if it is a non-empty string, else :class:`BadConversation` naming ``name``."""
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
    conversation_id = required_id(getattr(conversation, "id", None), "conversation id")
    participants = tuple(
        _model_participant(p) for p in getattr(conversation, "participants", None) or ()
    )
    return ConversationSnapshot(conversation_id, participants)


def _model_participant(p: Any) -> Participant:
    communications: list[Communication] = []
    for attr, media_type in _MODEL_MEDIA:
        for c in getattr(p, attr, None) or ():
            communications.append(_model_communication(c, media_type))
    return Participant(
        id=required_id(p.id, "participant id"),
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
    """A queue from the SDK's Queue model, with the ACW prompt and timeout the deadline needs."""
    acw = getattr(queue, "acw_settings", None)
    division = getattr(queue, "division", None)
    return Queue(
        id=required_id(queue.id, "queue id"),
        name=queue.name or "",
        wrapup_prompt=_str(getattr(acw, "wrapup_prompt", None), "acwSettings.wrapupPrompt"),
        acw_timeout_ms=_int(getattr(acw, "timeout_ms", None), "acwSettings.timeoutMs"),
        division_id=_str(getattr(division, "id", None), "division.id") or None,
        division_name=_str(getattr(division, "name", None), "division.name") or None,
    )


def wrapup_code_from_model(code: Any) -> WrapupCode:
    """A wrap-up code (id and name) from the SDK's WrapupCode model."""
    return WrapupCode(id=required_id(code.id, "wrap-up code id"), name=code.name or "")


def channel_from_model(channel: Any) -> Channel:
    """A channel from the SDK's Channel model."""
    return Channel(
        id=required_id(channel.id, "channel id"),
        connect_uri=required_id(channel.connect_uri, "channel connectUri"),
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


def wrapup_request(code_id: str, code_name: str | None, notes: str | None) -> Any:
    """The participant PATCH body: only ``wrapup`` (any other field asks the platform to act)."""
    wrapup = model("WrapupInput")()
    wrapup.code = code_id
    wrapup.name = code_name
    wrapup.notes = notes
    request = model("MediaParticipantRequest")()
    request.wrapup = wrapup
    return request
