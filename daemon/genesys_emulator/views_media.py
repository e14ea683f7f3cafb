"""Media-specific REST conversations: ``GET /api/v2/conversations/{calls|callbacks|emails|messages}/{id}``.

SDK ``CallConversation``/``CallbackConversation``/``EmailConversation``/``MessageConversation``:
each participant is flat (its one communication merged in) and names its queue and user with
``queue {id, selfUri}`` / ``user {id, selfUri}`` objects instead of ``queueId``/``userId``
(GENESYS.md §10). There is no ``afterCallWork`` here: ACW shows as ``startAcwTime``/``endAcwTime``.
"""

from __future__ import annotations

from typing import Any

from .conversation import Conversation, Participant
from .org import EVENT_PROMPT, OrgDefinition
from .views import _compact, _media_extras, _ts, _wrapup, division_ref


def _ref(kind: str, entity_id: str | None) -> dict[str, str] | None:
    if entity_id is None:
        return None
    return {"id": entity_id, "selfUri": f"/api/v2/{kind}/{entity_id}"}


def _agent_fields(p: Participant) -> dict[str, Any]:
    if p.purpose != "agent":
        return {}
    return {
        "wrapupRequired": p.wrapup_required,
        "wrapupPrompt": EVENT_PROMPT.get(p.wrapup_prompt or ""),
        "wrapupTimeoutMs": p.timeout_ms,
        "wrapupSkipped": p.skipped,
        "wrapup": _wrapup(p, event=False),
        "startAcwTime": _ts(p.acw_start),
        "endAcwTime": _ts(p.acw_end),
        "alertingTimeoutMs": 8000,
    }


def _media_participant(p: Participant, conv: Conversation) -> dict[str, Any]:
    comm = p.comm
    data: dict[str, Any] = {
        "id": p.id,
        "name": p.name,
        "address": p.address,
        "startTime": _ts(p.start),
        "connectedTime": _ts(p.connected_at),
        "endTime": _ts(p.end_at),
        "purpose": p.purpose,
        "state": comm.state,
        "direction": "inbound",
        "disconnectType": comm.disconnect_type,
        "held": comm.held,
        "user": _ref("users", p.user_id),
        "queue": _ref("routing/queues", p.queue_id),
        "attributes": {},
        "provider": "Edge" if comm.media == "call" else "PureCloud",
        "peer": None if p.purpose == "customer" else conv.customer.comm.id,
        **_agent_fields(p),
        **_media_extras(comm.media),
    }
    return _compact(data)


def media_conversation_json(conv: Conversation, org: OrgDefinition, array: str) -> dict[str, Any]:
    """One media-specific conversation (``array`` is ``calls``, ``callbacks``, … as in its path)."""
    data: dict[str, Any] = {
        "id": conv.id,
        "participants": [_media_participant(p, conv) for p in conv.participants],
        "divisions": [
            {
                "division": {"id": org.division_id, "selfUri": division_ref(org)["selfUri"]},
                "entities": [],
            }
        ],
        "selfUri": f"/api/v2/conversations/{array}/{conv.id}",
    }
    if array == "calls":
        data["recordingState"] = "none"
    return data
