"""The traffic engine: plays conversations through their real lifecycle.

customer + ACD + agent legs; the agent's communication goes alerting -> connected ->
disconnected, ACW opens (pending), then the agent codes, skips (optional prompts) or does
nothing; time-boxed queues stamp ``ININ-WRAP-UP-TIMEOUT`` when ``timeoutMs`` passes. Every change
publishes a full snapshot. Time comes from the injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import conversation as cv
from .clock import Clock
from .conversation import Communication, Conversation, Participant
from .errors import ControlError
from .org import Agent, OrgDefinition, Queue, WrapupCode

log = logging.getLogger("genesys_emulator.scenario")

OUTCOMES = ("agent_codes", "skip", "nothing")


@dataclass
class AgentScript:
    queue: Queue
    agent: Agent
    outcome: str
    agent_delay_s: float
    code: WrapupCode | None = None


@dataclass
class ConversationScript:
    queue: Queue
    media: str
    talk_s: float
    agents: list[AgentScript]  # the agents who answer
    hold: bool = False
    silent: bool = False
    alert_s: float = 0.0
    not_responding: list[AgentScript] = field(default_factory=list)  # alerted first, ring out
    # Real-capture shapes: wrapupRequired already true while talking; the communication still
    # ``connected`` once ACW is pending.
    wrapup_required_while_connected: bool = False
    connected_in_acw: bool = False
    started_ago_s: float = 0.0  # a long-lived conversation (email, messaging): began this long ago


@dataclass
class TrafficRun:
    id: str
    planned: int | None
    started: int = 0
    finished: int = 0
    conversation_ids: list[str] = field(default_factory=list)
    done: bool = False

    def progress(self) -> dict[str, Any]:
        return {
            "trafficId": self.id,
            "planned": self.planned,
            "started": self.started,
            "finished": self.finished,
            "done": self.done and self.finished >= self.started,
            "conversationIds": list(self.conversation_ids),
        }


class Engine:
    def __init__(
        self,
        org: OrgDefinition,
        clock: Clock,
        conversations: dict[str, Conversation],
        changed: Callable[[Conversation], None],
    ) -> None:
        self.org = org
        self.clock = clock
        self.conversations = conversations
        self.changed = changed
        self.tasks: set[asyncio.Task[Any]] = set()
        self.traffic_runs: dict[str, TrafficRun] = {}
        self._next_agent = 0

    # --- building ----------------------------------------------------------------------------

    def next_agent(self) -> Agent:
        agents = list(self.org.agents.values())
        agent = agents[self._next_agent % len(agents)]
        self._next_agent += 1
        return agent

    def start(
        self, script: ConversationScript, on_done: Callable[[], None] | None = None
    ) -> Conversation:
        conv = self._build(script)
        self.conversations[conv.id] = conv
        self.changed(conv)
        self._spawn(self._run(conv, script), on_done)
        return conv

    def _build(self, script: ConversationScript) -> Conversation:
        now = self.clock.now()
        began = now - script.started_ago_s
        conv = Conversation(
            media=script.media, queue_id=script.queue.id, start=began, silent=script.silent
        )
        conv.participants.append(_customer(script, began))
        for queue in _distinct_queues(script):
            conv.participants.append(_acd(queue, script.media, began))
        for unanswered in script.not_responding:
            conv.participants.append(_agent(unanswered, script.media, now, not_responding=True))
        answering = [_agent(s, script.media, now) for s in script.agents]
        if script.not_responding:
            conv.waiting = answering
        else:
            conv.participants.extend(answering)
        return conv

    def _spawn(self, coro: Any, on_done: Callable[[], None] | None = None) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)

        def finished(t: asyncio.Task[Any]) -> None:
            self.tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("conversation task failed", exc_info=t.exception())
            if on_done is not None and not t.cancelled():
                on_done()

        task.add_done_callback(finished)

    # --- the lifecycle -----------------------------------------------------------------------

    async def _run(self, conv: Conversation, script: ConversationScript) -> None:
        if script.not_responding:
            await self.clock.sleep(script.alert_s)
            self._ring_out(conv)
        await self.clock.sleep(script.alert_s)
        self._answer(conv, script)
        await self._talk(conv, script)
        self._hang_up(conv, script)
        agents = conv.answering
        await asyncio.gather(
            *(self._resolve_acw(conv, p, s) for p, s in zip(agents, script.agents, strict=True))
        )

    def _ring_out(self, conv: Conversation) -> None:
        """The first legs alerted in vain; ACD offers the conversation to the answering agents."""
        now = self.clock.now()
        for p in conv.agents:
            cv.ring_out(p, now)
        for p in conv.waiting:
            p.start = now
        conv.participants.extend(conv.waiting)
        conv.waiting = []
        self.changed(conv)

    def _answer(self, conv: Conversation, script: ConversationScript) -> None:
        now = self.clock.now()
        for p in conv.participants:
            if p.purpose == "agent" and p.answers:
                cv.connect(p, now)
                p.wrapup_required = script.wrapup_required_while_connected
            elif p.purpose == "acd":
                cv.disconnect(p, now, "transfer")
        self.changed(conv)

    async def _talk(self, conv: Conversation, script: ConversationScript) -> None:
        if not script.hold:
            await self.clock.sleep(script.talk_s)
            return
        first = conv.answering[0]
        await self.clock.sleep(script.talk_s / 3)
        first.comm.held = True
        self.changed(conv)
        await self.clock.sleep(script.talk_s / 3)
        first.comm.held = False
        self.changed(conv)
        await self.clock.sleep(script.talk_s / 3)

    def _hang_up(self, conv: Conversation, script: ConversationScript) -> None:
        now = self.clock.now()
        cv.disconnect(conv.customer, now, "endpoint")
        for p in conv.answering:
            cv.disconnect(p, now, "peer")
            if script.connected_in_acw:
                p.comm.state = "connected"
            cv.start_acw(p, now)
        conv.talk_over = True
        self.changed(conv)

    async def _resolve_acw(self, conv: Conversation, p: Participant, script: AgentScript) -> None:
        """Whichever comes first: the agent's action or the queue's ACW timeout."""
        steps: list[tuple[float, str]] = []
        if script.outcome in ("agent_codes", "skip"):
            steps.append((script.agent_delay_s, script.outcome))
        if script.queue.timed and script.queue.timeout_ms:
            steps.append((script.queue.timeout_ms / 1000.0, "timeout"))
        elapsed = 0.0
        for delay, action in sorted(steps):
            await self.clock.sleep(delay - elapsed)
            elapsed = delay
            if not p.in_acw:
                return
            self._act(conv, p, action, script.code)

    def _act(
        self, conv: Conversation, p: Participant, action: str, code: WrapupCode | None
    ) -> None:
        now = self.clock.now()
        if action == "timeout":
            cv.stamp_timeout(p, now)
        elif action == "skip":
            cv.skip(p, now)
        else:
            chosen = code or random.choice(self.org.queue_codes(self.org.queues[p.queue_id or ""]))
            cv.apply_code(p, chosen, now, by="agent")
        self.changed(conv)

    # --- control-plane actions ---------------------------------------------------------------

    def action(self, conv: Conversation, spec: dict[str, Any]) -> dict[str, Any]:
        kind = spec.get("action")
        if kind == "republish":
            self.changed(
                conv,
            )
            return {"republished": True}
        p = self._action_target(conv, spec)
        if kind == "agent_wrapup":
            queue = self.org.queues[p.queue_id or ""]
            code = self._code_for(queue, spec.get("code"))
            self._require_acw(p)
            cv.apply_code(
                p,
                code or self.org.queue_codes(queue)[0],
                self.clock.now(),
                by="agent",
                notes=spec.get("notes"),
            )
        elif kind == "skip":
            self._require_acw(p)
            cv.skip(p, self.clock.now())
        elif kind == "end_acw":
            self._require_acw(p)
            cv.end_acw_without_code(p, self.clock.now())
        else:
            raise ControlError("action must be one of agent_wrapup, skip, end_acw, republish")
        self.changed(conv)
        return {"participantId": p.id, "acwState": p.comm.acw_state}

    def _action_target(self, conv: Conversation, spec: dict[str, Any]) -> Participant:
        pid = spec.get("participantId")
        agents = conv.answering
        target = (
            next((p for p in agents if p.id == pid), None)
            if pid
            else (agents[0] if agents else None)
        )
        if target is None:
            raise ControlError(f"no agent participant {pid!r} in conversation {conv.id}")
        return target

    def _code_for(self, queue: Queue, ref: object) -> WrapupCode | None:
        if ref is None:
            return None
        code = self.org.code_for_queue(queue, str(ref))
        if code is None:
            raise ControlError(f"code {ref!r} is not assigned to queue {queue.name}")
        return code

    @staticmethod
    def _require_acw(p: Participant) -> None:
        if not p.in_acw:
            raise ControlError(f"participant {p.id} is not in after-call work")

    # --- generated load ----------------------------------------------------------------------

    def start_traffic(
        self,
        run: TrafficRun,
        make_script: Callable[[random.Random], ConversationScript],
        rng: random.Random,
        interval_s: float,
    ) -> None:
        self.traffic_runs[run.id] = run
        self._spawn(self._traffic(run, make_script, rng, interval_s))

    async def _traffic(
        self,
        run: TrafficRun,
        make_script: Callable[[random.Random], ConversationScript],
        rng: random.Random,
        interval_s: float,
    ) -> None:
        try:
            while run.planned is None or run.started < run.planned:
                conv = self.start(make_script(rng), on_done=lambda: _count_finished(run))
                run.started += 1
                run.conversation_ids.append(conv.id)
                if run.planned is None or run.started < run.planned:
                    await self.clock.sleep(interval_s)
        finally:
            run.done = True

    async def shutdown(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks.clear()


def _count_finished(run: TrafficRun) -> None:
    run.finished += 1


def _distinct_queues(script: ConversationScript) -> list[Queue]:
    queues = [script.queue]
    for a in script.agents:
        if a.queue.id not in {q.id for q in queues}:
            queues.append(a.queue)
    return queues


def _initial_state(media: str) -> str:
    """Emails and messages have no ``offering`` state in the SDK's enums."""
    return "offering" if media in ("call", "callback", "chat") else "connected"


def _customer(script: ConversationScript, now: float) -> Participant:
    comm = Communication(
        media=script.media,
        state="connected",
        initial_state=_initial_state(script.media),
        connected_at=now,
    )
    address = "customer@example.com" if script.media == "email" else "tel:+15555550123"
    return Participant(
        purpose="customer",
        name="Customer",
        queue_id=script.queue.id,
        comm=comm,
        start=now,
        address=address,
        connected_at=now,
    )


def _acd(queue: Queue, media: str, now: float) -> Participant:
    comm = Communication(
        media=media, state="connected", initial_state=_initial_state(media), connected_at=now
    )
    address = f"sip:{queue.id}@127.0.0.1;language=en-US;user=acd"
    return Participant(
        purpose="acd",
        name=queue.name,
        queue_id=queue.id,
        comm=comm,
        start=now,
        address=address,
        connected_at=now,
    )


def _agent(
    script: AgentScript, media: str, now: float, not_responding: bool = False
) -> Participant:
    queue = script.queue
    return Participant(
        purpose="agent",
        name=script.agent.name,
        queue_id=queue.id,
        comm=Communication(media=media),
        start=now,
        user_id=script.agent.id,
        address=f"sip:{script.agent.id}@emulator.local",
        wrapup_prompt=queue.wrapup_prompt,
        timeout_ms=queue.timeout_ms,
        wrapup_expected=True,
        answers=not not_responding,
    )
