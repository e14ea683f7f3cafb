"""Control plane: conversations played on demand, their actions, and generated traffic."""

from __future__ import annotations

import random
import uuid
from typing import Any

from aiohttp import web

from .control_input import as_object, number, queue_ref, read_body
from .conversation import MEDIA, Conversation
from .errors import ControlError, json_response
from .handlers.common import emulator
from .org import SKIPPABLE_PROMPTS, Queue
from .scenario import OUTCOMES, AgentScript, ConversationScript, TrafficRun
from .state import Emulator
from .views import conversation_json

DEFAULT_MIX = {"agent_codes": 0.4, "skip": 0.1, "nothing": 0.5}


# --- conversations --------------------------------------------------------------------------


async def start_conversation(request: web.Request) -> web.Response:
    emu = emulator(request)
    script = conversation_script(emu, as_object(await read_body(request, {})))
    conv = emu.engine.start(script)
    first = conv.answering[0]
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
                    "responding": p.answers,
                }
                for p in conv.agents + conv.waiting
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
    return json_response(emu.engine.action(conv, as_object(await read_body(request, {}))))


def _conversation(emu: Emulator, conv_id: str) -> Conversation:
    conv = emu.conversations.get(conv_id)
    if conv is None:
        raise ControlError(f"unknown conversation {conv_id}")
    return conv


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
    agent = emu.org.agent_or_user(agent_ref) if agent_ref else emu.engine.next_agent()
    if agent is None:
        raise ControlError(f"unknown agent {agent_ref!r}")
    delay = number(spec, "agent_delay_s", defaults.get("agent_delay_s", 0.5))
    return AgentScript(queue, agent, outcome, delay, code)


def conversation_script(emu: Emulator, spec: dict[str, Any]) -> ConversationScript:
    queue = queue_ref(emu.org, spec.get("queue"))
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
        extra = as_object(extra, "extra_agents entry")
        agents.append(_agent_script(emu, extra, queue_ref(emu.org, extra.get("queue")), {}))
    flags = ("hold", "silent", "same_user", "wrapup_required_while_connected", "connected_in_acw")
    for key in flags:
        if not isinstance(spec.get(key, False), bool):
            raise ControlError(f"{key} must be true or false")
    return ConversationScript(
        queue=queue,
        media=media,
        talk_s=number(spec, "talk_s", 0.05),
        agents=agents,
        hold=spec.get("hold", False),
        silent=spec.get("silent", False),
        alert_s=number(spec, "alert_s", 0.0),
        not_responding=_not_responding(emu, spec, main),
        wrapup_required_while_connected=spec.get("wrapup_required_while_connected", False),
        connected_in_acw=spec.get("connected_in_acw", False),
        started_ago_s=number(spec, "started_ago_s", 0.0),
    )


def _not_responding(emu: Emulator, spec: dict[str, Any], main: AgentScript) -> list[AgentScript]:
    """``not_responding: N`` legs alert first and ring out; ``same_user``: all are the main agent's."""
    count = spec.get("not_responding", 0)
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 10:
        raise ControlError("not_responding must be an integer between 0 and 10")
    return [
        AgentScript(
            main.queue,
            main.agent if spec.get("same_user") else emu.engine.next_agent(),
            "nothing",
            0.0,
        )
        for _ in range(count)
    ]


# --- traffic --------------------------------------------------------------------------------


async def start_traffic(request: web.Request) -> web.Response:
    emu = emulator(request)
    spec = as_object(await read_body(request, {}))
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


def _probability(spec: dict[str, Any], key: str) -> float:
    value = spec.get(key, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ControlError(f"{key} must be a probability between 0 and 1")
    return float(value)


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
        queue_ref(emu.org, ref)
        for ref in spec.get("queues", [q.id for q in emu.org.queues.values()])
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
    unanswered = _probability(spec, "not_responding")

    def make(r: random.Random) -> ConversationScript:
        queue = r.choice(queues)
        outcome = r.choices(list(mix), weights=list(mix.values()))[0]
        if outcome == "skip" and queue.wrapup_prompt not in SKIPPABLE_PROMPTS:
            outcome = "nothing"
        code = r.choice(emu.org.queue_codes(queue))
        agent = AgentScript(queue, emu.engine.next_agent(), outcome, r.uniform(*delay), code)
        script = ConversationScript(queue, r.choice(media), r.uniform(*talk), [agent])
        # Not drawn at all when off, so seeded traffic stays what it was. Half of the unanswered
        # legs belong to the agent who answers later (two agent legs, one user).
        if unanswered and r.random() < unanswered:
            who = agent.agent if r.random() < 0.5 else emu.engine.next_agent()
            script.not_responding = [AgentScript(queue, who, "nothing", 0.0)]
        return script

    return TrafficRun(str(uuid.uuid4()), planned), make, rng, interval
