"""Delivery faults between publishing an event and the sockets that should get it.

``event_chaos`` delays and duplicates events; ``lose_events`` silently drops the next N
conversation events (optionally of one queue) while the sockets stay up and heartbeats go on;
``acw_state_noise`` shows the next N events with a pending ``afterCallWork`` state replaced (by
``unknown``, a value no SDK knows, or nothing at all) while REST keeps the truth.
Heartbeats, pongs, control and system frames never pass through here.
"""

from __future__ import annotations

import asyncio
import copy
import random
from dataclasses import dataclass, field
from typing import Any, Protocol

_MEDIA_KEYS = ("calls", "callbacks", "chats", "emails", "messages")


class Outbox(Protocol):
    def send(self, text: str) -> None: ...


@dataclass
class EventChaos:
    """Each event may be duplicated and is delayed by a random amount (so events of one
    conversation can arrive out of order). Active until ``until`` (emulator clock)."""

    until: float
    duplicate: float
    max_delay_s: float
    rng: random.Random


@dataclass
class EventLoss:
    """The next ``remaining`` events (of ``topic`` only, when set) are not delivered."""

    remaining: int
    topic: str | None = None
    lost: int = 0

    def covers(self, topic: str) -> bool:
        return self.remaining > 0 and (self.topic is None or self.topic == topic)

    def describe(self) -> dict[str, object]:
        return {"kind": "lose_events", "remaining": self.remaining, "topic": self.topic}


@dataclass
class AcwStateNoise:
    """The next ``remaining`` events show a pending ACW as ``state`` (None: no afterCallWork)."""

    remaining: int
    state: str | None

    def describe(self) -> dict[str, object]:
        return {"kind": "acw_state_noise", "remaining": self.remaining, "state": self.state}

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``body`` with every pending afterCallWork shown as ``state``."""
        noisy = copy.deepcopy(body)
        for participant in noisy.get("participants", []):
            for key in _MEDIA_KEYS:
                for comm in participant.get(key) or []:
                    acw = comm.get("afterCallWork")
                    if not acw or acw.get("state") != "pending":
                        continue
                    if self.state is None:
                        del comm["afterCallWork"]
                    else:
                        acw["state"] = self.state
        self.remaining -= 1
        return noisy


@dataclass
class DeliveryFaults:
    chaos: EventChaos | None = None
    losses: list[EventLoss] = field(default_factory=list)
    noise: AcwStateNoise | None = None

    def shown(self, body: dict[str, Any]) -> dict[str, Any]:
        """The event as the sockets get it (with ``acw_state_noise``, a noisy copy)."""
        noise = self.noise
        if noise is None:
            return body
        if noise.remaining <= 1:
            self.noise = None
        return noise.apply(body)

    def lose(self, topic: str) -> bool:
        """Whether this event (one that some socket would receive) is silently dropped."""
        loss = next((x for x in self.losses if x.covers(topic)), None)
        if loss is None:
            return False
        loss.remaining -= 1
        loss.lost += 1
        if loss.remaining <= 0:
            self.losses.remove(loss)
        return True

    def deliver(self, socket: Outbox, text: str, now: float) -> None:
        chaos = self.chaos
        if chaos is None or now >= chaos.until:
            self.chaos = None
            socket.send(text)
            return
        copies = 2 if chaos.rng.random() < chaos.duplicate else 1
        loop = asyncio.get_running_loop()
        for _ in range(copies):
            loop.call_later(chaos.rng.uniform(0.0, chaos.max_delay_s), socket.send, text)

    def clear_losses(self) -> None:
        self.losses.clear()
        self.noise = None
