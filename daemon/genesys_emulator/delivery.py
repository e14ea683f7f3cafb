"""Delivery faults between publishing an event and the sockets that should get it.

``event_chaos`` delays and duplicates events; ``lose_events`` silently drops the next N
conversation events (optionally of one queue) while the sockets stay up and heartbeats go on.
Heartbeats, pongs, control and system frames never pass through here.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Protocol


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
class DeliveryFaults:
    chaos: EventChaos | None = None
    losses: list[EventLoss] = field(default_factory=list)

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
