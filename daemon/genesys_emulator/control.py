"""The control plane under ``/_emulator/``: reset, conversations, traffic, faults, ground truth.

Loopback only. Bad input answers 400 ``{"error": "..."}``; nothing here can crash the server.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import asdict
from typing import Any

from aiohttp import web

from .conversation import MEDIA, Conversation, Participant
from .errors import USER_CONTEXT_MESSAGE, ControlError, error_body, json_response
from .faults import REQUEST_KINDS, SOCKET_KINDS, parse_request_fault
from .handlers.common import emulator
from .org import SKIPPABLE_PROMPTS, OrgDefinition, Queue
from .scenario import OUTCOMES, AgentScript, ConversationScript, TrafficRun
from .state import Emulator
from .views import conversation_json

DEFAULT_MIX = {"agent_codes": 0.4, "skip": 0.1, "nothing": 0.5}


async def _body(request: web.Request, default: Any = None) -> Any:
    text = await request.text()
    if not text.strip():
        return default
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ControlError(f"body is not valid JSON: {exc.msg}") from None


def _object(value: Any, what: str = "body") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ControlError(f"{what} must be a JSON object")
    return value


# --- reset and inspection -------------------------------------------------------------------


async def reset(request: web.Request) -> web.Response:
    emu = emulator(request)
    await emu.reset(_object(await _body(request, {}), "options"))
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
        "clients": [
            {
                "id": c.id,
                "secret": c.secret,
                "name": c.name,
                "permissions": sorted(c.permissions),
                "visibleQueues": sorted(c.visible_queues) if c.visible_queues is not None else None,
                "main": c.id == org.main_client_id,
            }
            for c in org.clients.values()
        ],
    }


async def channels(request: web.Request) -> web.Response:
    emu = emulator(request)
    return json_response(
        {
            "channels": [
                {
                    "id": c.id,
                    "clientId": c.client_id,
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


# --- conversations --------------------------------------------------------------------------


async def start_conversation(request: web.Request) -> web.Response:
    emu = emulator(request)
    script = conversation_script(emu, _object(await _body(request, {})))
    conv = emu.engine.start(script)
    first = conv.agents[0]
    return json_response(
        {
            "conversationId": conv.id,
            "participantId": first.id,
            "queueId": first.queue_id,
            "userId": first.user_id,
            "communicationId": first.comm.id,
            "participants": [
                {
                    "participantId": p.id,
                    "queueId": p.queue_id,
                    "userId": p.user_id,
                    "communicationId": p.comm.id,
                }
                for p in conv.agents
            ],
        }
    )


async def get_conversation(request: web.Request) -> web.Response:
    emu = emulator(request)
    conv = _conversation(emu, request.match_info["id"])
    return json_response(conversation_json(conv, emu.org))


async def conversation_action(request: web.Request) -> web.Response:
    emu = emulator(request)
    conv = _conversation(emu, request.match_info["id"])
    return json_response(emu.engine.action(conv, _object(await _body(request, {}))))


def _conversation(emu: Emulator, conv_id: str) -> Conversation:
    conv = emu.conversations.get(conv_id)
    if conv is None:
        raise ControlError(f"unknown conversation {conv_id}")
    return conv


def _queue(org: OrgDefinition, ref: object) -> Queue:
    queue = org.queue(ref) if isinstance(ref, str) else None
    if queue is None:
        raise ControlError(
            f"unknown queue {ref!r}; known: {sorted(q.name for q in org.queues.values())}"
        )
    return queue


def _number(spec: dict[str, Any], key: str, default: float) -> float:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ControlError(f"{key} must be a number >= 0")
    return float(value)


def _agent_script(
    emu: Emulator, spec: dict[str, Any], queue: Queue, defaults: dict[str, Any]
) -> AgentScript:
    outcome = spec.get("outcome", defaults.get("outcome", "agent_codes"))
    if outcome not in OUTCOMES:
        raise ControlError(f"outcome must be one of {OUTCOMES}")
    if outcome == "skip" and queue.wrapup_prompt not in SKIPPABLE_PROMPTS:
        raise ControlError(
            f"skip needs an OPTIONAL or AGENT_REQUESTED queue; "
            f"{queue.name} is {queue.wrapup_prompt}"
        )
    code = None
    if spec.get("code") is not None:
        code = emu.org.code_for_queue(queue, str(spec["code"]))
        if code is None:
            raise ControlError(f"code {spec['code']!r} is not assigned to queue {queue.name}")
    agent_ref = spec.get("agent")
    agent = emu.org.agents.get(agent_ref) if agent_ref else emu.engine.next_agent()
    if agent is None:
        raise ControlError(f"unknown agent {agent_ref!r}")
    delay = _number(spec, "agent_delay_s", defaults.get("agent_delay_s", 0.5))
    return AgentScript(queue, agent, outcome, delay, code)


def conversation_script(emu: Emulator, spec: dict[str, Any]) -> ConversationScript:
    queue = _queue(emu.org, spec.get("queue"))
    media = spec.get("media", "call")
    if media not in MEDIA:
        raise ControlError(f"media must be one of {MEDIA}")
    main = _agent_script(emu, spec, queue, {})
    agents = [main]
    conference = spec.get("conference", 1)
    if not isinstance(conference, int) or isinstance(conference, bool) or not 1 <= conference <= 50:
        raise ControlError("conference must be an integer between 1 and 50 (agents on the queue)")
    for _ in range(conference - 1):
        agents.append(
            _agent_script(emu, {k: v for k, v in spec.items() if k != "agent"}, queue, {})
        )
    extras = spec.get("extra_agents", [])
    if not isinstance(extras, list):
        raise ControlError(
            "extra_agents must be a list of {queue, agent?, outcome?, agent_delay_s?, code?}"
        )
    for extra in extras:
        extra = _object(extra, "extra_agents entry")
        agents.append(_agent_script(emu, extra, _queue(emu.org, extra.get("queue")), {}))
    for key in ("hold", "silent"):
        if not isinstance(spec.get(key, False), bool):
            raise ControlError(f"{key} must be true or false")
    return ConversationScript(
        queue=queue,
        media=media,
        talk_s=_number(spec, "talk_s", 0.05),
        agents=agents,
        hold=spec.get("hold", False),
        silent=spec.get("silent", False),
        alert_s=_number(spec, "alert_s", 0.0),
    )


# --- traffic --------------------------------------------------------------------------------


async def start_traffic(request: web.Request) -> web.Response:
    emu = emulator(request)
    spec = _object(await _body(request, {}))
    run, make, rng, interval = traffic_plan(emu, spec)
    emu.engine.start_traffic(run, make, rng, interval)
    return json_response({"trafficId": run.id, "planned": run.planned})


async def traffic_progress(request: web.Request) -> web.Response:
    run = emulator(request).engine.traffic_runs.get(request.match_info["id"])
    if run is None:
        raise ControlError(f"unknown traffic run {request.match_info['id']}")
    return json_response(run.progress())


def _range(spec: dict[str, Any], key: str, default: tuple[float, float]) -> tuple[float, float]:
    raw = spec.get(key, list(default))
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        raw = [raw, raw]
    ok = (
        isinstance(raw, list)
        and len(raw) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in raw)
    )
    if not ok or raw[0] > raw[1]:
        raise ControlError(f"{key} must be [min, max] seconds with 0 <= min <= max")
    return float(raw[0]), float(raw[1])


def _mix(spec: dict[str, Any]) -> dict[str, float]:
    mix = spec.get("mix", DEFAULT_MIX)
    if not isinstance(mix, dict) or not mix or any(k not in OUTCOMES for k in mix):
        raise ControlError(f"mix must map outcomes {OUTCOMES} to weights")
    if (
        any(isinstance(v, bool) or not isinstance(v, int | float) or v < 0 for v in mix.values())
        or sum(mix.values()) <= 0
    ):
        raise ControlError("mix weights must be non-negative numbers with a positive sum")
    return {k: float(v) for k, v in mix.items()}


def traffic_plan(
    emu: Emulator, spec: dict[str, Any]
) -> tuple[TrafficRun, Any, random.Random, float]:
    count, rate, duration = spec.get("count"), spec.get("rate_per_s"), spec.get("duration_s")
    for key, value in (("count", count), ("rate_per_s", rate), ("duration_s", duration)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
        ):
            raise ControlError(f"{key} must be a positive number")
    if count is None and rate is None:
        raise ControlError("traffic needs count or rate_per_s")
    if count is not None and not isinstance(count, int):
        raise ControlError("count must be an integer")
    planned = count if count is not None else (round(rate * duration) if duration else None)
    interval = 1.0 / rate if rate else (duration / count if duration and count else 0.0)
    queues = [
        _queue(emu.org, ref) for ref in spec.get("queues", [q.id for q in emu.org.queues.values()])
    ]
    media = spec.get("media", list(MEDIA))
    if not isinstance(media, list) or not media or any(m not in MEDIA for m in media):
        raise ControlError(f"media must be a non-empty list drawn from {MEDIA}")
    mix, talk, delay = (
        _mix(spec),
        _range(spec, "talk_s", (0.05, 0.2)),
        _range(spec, "agent_delay_s", (0.2, 1.0)),
    )
    seed = spec.get("seed")
    rng = random.Random(seed)

    def make(r: random.Random) -> ConversationScript:
        queue = r.choice(queues)
        outcome = r.choices(list(mix), weights=list(mix.values()))[0]
        if outcome == "skip" and queue.wrapup_prompt not in SKIPPABLE_PROMPTS:
            outcome = "nothing"
        code = r.choice(emu.org.queue_codes(queue))
        agent = AgentScript(queue, emu.engine.next_agent(), outcome, r.uniform(*delay), code)
        return ConversationScript(queue, r.choice(media), r.uniform(*talk), [agent])

    return TrafficRun(str(uuid.uuid4()), planned), make, rng, interval


# --- faults ---------------------------------------------------------------------------------


def _event_chaos(emu: Emulator, spec: dict[str, Any]) -> dict[str, Any]:
    from .channels import EventChaos

    seconds = _number(spec, "seconds", 1.0)
    duplicate = _number(spec, "duplicate", 0.0)
    if duplicate > 1:
        raise ControlError("duplicate must be a probability between 0 and 1")
    max_delay = _number(spec, "max_delay_s", 0.0)
    seed = spec.get("seed")
    emu.channels.chaos = EventChaos(emu.now() + seconds, duplicate, max_delay, random.Random(seed))
    return {"until_in_s": seconds, "duplicate": duplicate, "max_delay_s": max_delay}


async def tokens(request: web.Request) -> web.Response:
    """Every access token issued since the last reset (for secret-leak checks in tests)."""
    emu = emulator(request)
    return json_response(
        {
            "tokens": [
                {"clientId": t.client.id, "value": t.value, "valid": t.valid(emu.now())}
                for t in emu.tokens.tokens.values()
            ]
        }
    )


async def add_faults(request: web.Request) -> web.Response:
    emu = emulator(request)
    body = await _body(request)
    specs = body if isinstance(body, list) else [_object(body)]
    results = [apply_fault(emu, _object(spec, "fault")) for spec in specs]
    return json_response({"faults": results, "pending": [f.describe() for f in emu.faults.pending]})


async def list_faults(request: web.Request) -> web.Response:
    return json_response({"pending": [f.describe() for f in emulator(request).faults.pending]})


async def clear_faults(request: web.Request) -> web.Response:
    emulator(request).faults.clear()
    return json_response({"pending": []})


def apply_fault(emu: Emulator, spec: dict[str, Any]) -> dict[str, Any]:
    kind = spec.get("kind")
    if kind in REQUEST_KINDS:
        if spec.get("body") == "user_context":
            spec = {**spec, "body": error_body(403, "not.authorized", USER_CONTEXT_MESSAGE, "")}
        fault = parse_request_fault(spec)
        emu.faults.add(fault)
        return {"kind": kind, "queued": fault.describe()}
    if kind not in SOCKET_KINDS:
        raise ControlError(f"kind must be one of {REQUEST_KINDS + SOCKET_KINDS}")
    return {"kind": kind, **_socket_fault(emu, kind, spec)}


def _socket_fault(emu: Emulator, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    if kind == "event_chaos":
        return _event_chaos(emu, spec)
    if kind == "raw_frames":
        frames = spec.get("frames")
        if not isinstance(frames, list) or not all(isinstance(f, str) for f in frames):
            raise ControlError("raw_frames needs frames: a list of strings")
        return {"sockets": emu.channels.send_raw(frames)}
    if kind == "drop_sockets":
        return {"dropped": emu.channels.drop_sockets()}
    if kind == "idle_close":
        return {"closed": emu.channels.close_idle(emu.channels.connected())}
    if kind == "expire_channels":
        return {"expired": emu.channels.expire_all()}
    if kind == "expire_tokens":
        emu.tokens.expire_all(emu.now())
        emu.channels.sweep(emu.now(), {})
        return {"expired": len(emu.tokens.tokens)}
    if kind == "revoke_tokens":
        return {"revoked": emu.revoke_tokens()}
    close_after = _number(spec, "close_after_s", emu.options.socket_closing_lead_s)
    sockets = emu.channels.announce_closing(close_after)
    emu.later(close_after, lambda: emu.channels.close_sockets(sockets))
    return {"announced": len(sockets), "close_after_s": close_after}
