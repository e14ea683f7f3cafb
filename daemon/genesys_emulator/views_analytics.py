"""Analytics renderings: one ``AnalyticsConversationWithoutAttributes`` per conversation.

Two flavours. The plain one: customer and ACD ``interact`` segments, agent ``alert``/``interact``/
``wrapup``. With ``capture_shapes`` (option ``analytics_capture_shapes``) it adds what real
captures show (GENESYS.md §10): ``system``/``ivr`` segments on the customer, ``delay`` on the ACD
leg, a ``disconnectType`` on closed wrap-up segments, and on a not-responding (alert-only) leg a
zero-length wrap-up segment with a user code, ``disconnectType`` and ``errorCode``.
"""

from __future__ import annotations

from typing import Any

from .clock import iso
from .conversation import Communication, Conversation, Participant
from .org import OrgDefinition

ANALYTICS_MEDIA = {
    "call": "voice",
    "callback": "callback",
    "chat": "chat",
    "email": "email",
    "message": "message",
}
DISCONNECT_TYPES = {
    "endpoint": "endpoint",
    "transfer": "transfer",
    "peer": "peer",
    "transfer.noanswer": "noAnswerTransfer",
}
GHOST_WRAPUP_ERROR = "alert.timeout"  # chosen: no public capture shows the value


def _ts(value: float | None) -> str | None:
    return None if value is None else iso(value)


def _segment(
    kind: str, start: float, end: float | None, queue_id: str | None, **extra: Any
) -> dict[str, Any]:
    data = {
        "conference": False,
        "segmentStart": iso(start),
        "segmentEnd": _ts(end),
        "segmentType": kind,
        "queueId": queue_id,
        **extra,
    }
    return {k: v for k, v in data.items() if v is not None}


def _dt(comm: Communication) -> str | None:
    return DISCONNECT_TYPES.get(comm.disconnect_type or "")


def _segments(p: Participant, org: OrgDefinition, capture: bool) -> list[dict[str, Any]]:
    interact = _segment("interact", p.start, p.end_at, p.queue_id, disconnectType=_dt(p.comm))
    if p.purpose == "customer":
        lead = [_segment(k, p.start, p.start, None) for k in ("system", "ivr")] if capture else []
        return [*lead, interact]
    if p.purpose == "acd":
        return (
            [_segment("delay", p.start, p.start, p.queue_id), interact] if capture else [interact]
        )
    return _agent_segments(p, org, capture)


def _agent_segments(p: Participant, org: OrgDefinition, capture: bool) -> list[dict[str, Any]]:
    comm = p.comm
    alert_end = comm.connected_at or comm.disconnected_at
    alert_dt = _dt(comm) if comm.connected_at is None else None
    segments = [_segment("alert", p.start, alert_end, p.queue_id, disconnectType=alert_dt)]
    if comm.connected_at is not None:
        segments.append(
            _segment(
                "interact",
                comm.connected_at,
                comm.disconnected_at,
                p.queue_id,
                disconnectType=_dt(comm),
            )
        )
    if p.acw_start is not None and not p.skipped:
        segments.append(_wrapup_segment(p, capture))
    elif capture and not p.answers and comm.disconnected_at is not None:
        segments.append(_ghost_wrapup(p, org, comm.disconnected_at))
    return segments


def _wrapup_segment(p: Participant, capture: bool) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if p.wrapup is not None and not p.wrapup.provisional:
        extra = {"wrapUpCode": p.wrapup.code, "wrapUpNote": p.wrapup.notes}
    if capture and p.acw_end is not None:
        extra["disconnectType"] = "endpoint"
    return _segment("wrapup", p.acw_start or p.start, p.acw_end, p.queue_id, **extra)


def _ghost_wrapup(p: Participant, org: OrgDefinition, at: float) -> dict[str, Any]:
    """The alert-only leg's zero-length wrap-up segment that carries a user code anyway."""
    queue = org.queues.get(p.queue_id or "")
    codes = org.queue_codes(queue) if queue is not None else []
    return _segment(
        "wrapup",
        at,
        at,
        p.queue_id,
        wrapUpCode=codes[0].id if codes else None,
        disconnectType="endpoint",
        errorCode=GHOST_WRAPUP_ERROR,
    )


def _session(
    p: Participant, conv: Conversation, org: OrgDefinition, capture: bool
) -> dict[str, Any]:
    data = {
        "mediaType": ANALYTICS_MEDIA[p.comm.media],
        "sessionId": p.comm.id,
        "direction": "inbound",
        "peerId": None if p.purpose == "customer" else conv.customer.comm.id,
        "acwSkipped": True if p.skipped else None,
        "segments": _segments(p, org, capture),
    }
    return {k: v for k, v in data.items() if v is not None}


def analytics_json(
    conv: Conversation, org: OrgDefinition, capture_shapes: bool = False
) -> dict[str, Any]:
    """One ``AnalyticsConversationWithoutAttributes``."""
    participants = [
        {
            k: v
            for k, v in {
                "participantId": p.id,
                "participantName": p.name,
                "purpose": p.purpose,
                "userId": p.user_id,
                "sessions": [_session(p, conv, org, capture_shapes)],
            }.items()
            if v is not None
        }
        for p in conv.participants
    ]
    data = {
        "conversationId": conv.id,
        "conversationStart": iso(conv.start),
        "conversationEnd": _ts(conv.end),
        "divisionIds": [org.division_id],
        "originatingDirection": "inbound",
        "participants": participants,
    }
    return {k: v for k, v in data.items() if v is not None}
