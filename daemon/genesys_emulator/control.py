"""The control plane under ``/_emulator/``: reset, inspection and the ground truth.

Loopback only. Bad input answers 400 ``{"error": "..."}``; nothing here can crash the server.
Conversations and traffic are in ``control_traffic``, faults in ``control_faults``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aiohttp import web

from .control_input import as_object, read_body
from .conversation import Conversation, Participant
from .errors import json_response
from .handlers.common import emulator
from .org import OAuthClient, OrgDefinition

# --- reset and inspection -------------------------------------------------------------------


async def reset(request: web.Request) -> web.Response:
    emu = emulator(request)
    await emu.reset(as_object(await read_body(request, {}), "options"))
    return json_response({"reset": True, "options": asdict(emu.options)})


async def org_summary(request: web.Request) -> web.Response:
    org = emulator(request).org
    return json_response(_org_json(org))


def _org_json(org: OrgDefinition) -> dict[str, Any]:
    return {
        "name": org.name,
        "divisionId": org.division_id,
        "queues": [
            {
                "id": q.id,
                "name": q.name,
                "wrapupPrompt": q.wrapup_prompt,
                "timeoutMs": q.timeout_ms,
                "codes": [{"id": c.id, "name": c.name} for c in org.queue_codes(q)],
            }
            for q in org.queues.values()
        ],
        "agents": [{"id": a.id, "name": a.name} for a in org.agents.values()],
        "users": [
            {"id": u.id, "name": u.name, "permissions": sorted(u.permissions)}
            for u in org.users.values()
        ],
        "loginUserId": org.login_user_id,
        "clients": [_client_json(c, org) for c in org.clients.values()],
    }


def _client_json(c: OAuthClient, org: OrgDefinition) -> dict[str, Any]:
    return {
        "id": c.id,
        "secret": c.secret,
        "name": c.name,
        "grant": c.grant,
        "redirectUris": list(c.redirect_uris),
        "permissions": sorted(c.permissions),
        "visibleQueues": sorted(c.visible_queues) if c.visible_queues is not None else None,
        "main": c.id == org.main_client_id,
    }


async def channels(request: web.Request) -> web.Response:
    emu = emulator(request)
    return json_response(
        {
            "channels": [
                {
                    "id": c.id,
                    "clientId": c.client_id,
                    "userId": c.caller.user.id if c.caller.user else None,
                    "connected": c.socket is not None,
                    "topics": list(c.topics),
                    "expiresInS": round(c.expires_at - emu.now(), 3),
                }
                for c in emu.channels.channels.values()
            ]
        }
    )


async def calls(request: web.Request) -> web.Response:
    return json_response(emulator(request).call_log.snapshot())


async def ground_truth(request: web.Request) -> web.Response:
    emu = emulator(request)
    entries = [
        _truth(conv, p)
        for conv in emu.conversations.values()
        for p in conv.agents
        if p.acw_start is not None
    ]
    return json_response({"participants": entries, "summary": _summary(entries)})


def _truth(conv: Conversation, p: Participant) -> dict[str, Any]:
    from .clock import iso

    w = p.wrapup if p.wrapup is not None and not p.wrapup.provisional else None
    at = p.acw_end if p.outcome_by is not None else None
    if w is not None and p.history:
        at = p.history[-1][2]  # the last write (later than ACW's end after an overwrite)
    return {
        "conversationId": conv.id,
        "participantId": p.id,
        "queueId": p.queue_id,
        "userId": p.user_id,
        "mediaType": conv.media,
        "wrapupPrompt": p.wrapup_prompt,
        "acwStartedAt": iso(p.acw_start) if p.acw_start else None,
        "acwEndedAt": iso(p.acw_end) if p.acw_end else None,
        "wrapup": {
            "code": w.code if w else None,
            "name": w.name if w else None,
            "by": p.outcome_by,
            "at": iso(at) if at else None,
        },
        "apiWrapupCalls": p.api_wrapup_calls,
        "apiWrapupWrites": p.api_wrapup_writes,
        "history": [{"by": by, "code": code, "at": iso(at)} for by, code, at in p.history],
        "silent": conv.silent,
    }


def _summary(entries: list[dict[str, Any]]) -> dict[str, int]:
    summary = {
        "total": len(entries),
        "pending": 0,
        "agent": 0,
        "api": 0,
        "timeout": 0,
        "skipped": 0,
        "endedWithoutCode": 0,
        "apiWrapupCalls": 0,
    }
    for e in entries:
        by = e["wrapup"]["by"]
        if by is not None:
            summary[by] += 1
        elif e["acwEndedAt"] is None:
            summary["pending"] += 1
        else:
            summary["endedWithoutCode"] += 1
        summary["apiWrapupCalls"] += e["apiWrapupCalls"]
    return summary


async def tokens(request: web.Request) -> web.Response:
    """Every access and refresh token issued since the last reset (for secret-leak checks)."""
    emu = emulator(request)
    now = emu.now()
    access = [
        {
            "clientId": t.client.id,
            "userId": t.user.id if t.user else None,
            "value": t.value,
            "valid": t.valid(now),
        }
        for t in emu.tokens.tokens.values()
    ]
    refresh = [
        {"clientId": r.client_id, "userId": r.user.id, "value": r.value, "valid": r.valid(now)}
        for r in emu.code_grant.refresh_tokens.values()
    ]
    return json_response({"tokens": access, "refreshTokens": refresh})
