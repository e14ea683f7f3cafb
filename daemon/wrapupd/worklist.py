"""The applier's unfinished work in memory: one record per participant, its timer, and the line of
items that are due, earliest platform deadline first.

The ledger holds the durable truth; a :class:`Live` record adds what only matters while the
process runs (evidence that arrived while a worker held it, the timer, the backoff in use).
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from wrapupd.clock import Clock
from wrapupd.events import ItemState, NoLongerNeeded, WorkItem

Key = tuple[str, str]
RESOLVED_CAP = 50_000


@dataclass(slots=True)
class Live:
    """In-memory companion of a ledger row while it is unfinished."""

    item: WorkItem
    # Subscriber epoch at which the state was last seen "in ACW without a code" (an event's arrival,
    # or the moment a GET was *requested*) since the item last fell due: valid while the socket
    # stays continuous since. None: no such proof (the item waited since, or no socket).
    proof_epoch: int | None = None
    proof_at: float = float("-inf")  # monotonic time the proof was requested
    # Terminal evidence (a code, ACW's end) that arrived while a worker held the item: it cancels
    # the write not yet sent.
    resolution: NoLongerNeeded | None = None
    cancelled: bool = False
    # Another replica held its lease at our last claim: that replica records how the item ends.
    held_elsewhere: bool = False
    # The code of a write of ours that was retried (it timed out, failed in flight, or was refused
    # for now) or was in flight at a crash: the participant showing this code later is taken as our
    # write, as the state check before a write takes it.
    unanswered: str | None = None
    timer: asyncio.Task[None] | None = None
    delays: Iterator[float] | None = None  # the backoff in use since the first plain retry

    def prove(self, epoch: int | None, at: float) -> None:
        """A sighting "in ACW without a code", requested at socket ``epoch`` and time ``at``."""
        self.proof_epoch, self.proof_at = epoch, at

    @property
    def key(self) -> Key:
        """The item's (conversation id, participant id)."""
        return self.item.key


class Worklist:
    """Unfinished items by participant, their timers, and the due line the workers take from."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._live: dict[Key, Live] = {}
        # Participants seen coded or out of ACW before any work item existed: a late, stale
        # "in ACW" snapshot of them (events arrive out of order) must not start one.
        self._resolved: OrderedDict[Key, None] = OrderedDict()
        self._due: asyncio.PriorityQueue[tuple[float, float, int, Key]] = asyncio.PriorityQueue()
        self._seq = itertools.count()
        self._in_flight: set[Key] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, key: object) -> bool:
        return key in self._live

    def get(self, key: Key) -> Live | None:
        """The unfinished record of a participant, if any."""
        return self._live.get(key)

    def in_flight(self, key: Key) -> bool:
        """A worker holds this item right now (its state check or write is under way)."""
        return key in self._in_flight

    def track(self, item: WorkItem) -> Live:
        """Hold a new unfinished item and release it to the workers at its due time."""
        in_flight_at_crash = item.code_id if item.state is ItemState.WRITING else None
        live = Live(item=item, unanswered=in_flight_at_crash)
        self._live[item.key] = live
        if item.due_at <= self._clock.now():
            self._into_line(live)  # due already (grace 0): now, not a loop turn later
        else:
            self.schedule(live, item.due_at)
        return live

    def schedule(self, live: Live, due_at: datetime) -> None:
        """Release ``live`` to the workers at ``due_at`` (on the clock)."""
        delay = (due_at - self._clock.now()).total_seconds()
        live.timer = asyncio.create_task(self._release_after(live, delay))

    async def _release_after(self, live: Live, delay: float) -> None:
        if delay > 0:
            await self._clock.sleep(delay)
            live.proof_epoch = None  # it waited: only a sighting from now on proves the state
        if not live.cancelled:
            self._into_line(live)

    def _into_line(self, live: Live) -> None:
        # Earliest deadline first (on the monotonic clock), then first due: when the budget is short,
        # the time-boxed participants closest to the platform's timeout go first.
        now = self._clock.monotonic()
        deadline = live.item.deadline
        by = now + (deadline - self._clock.now()).total_seconds() if deadline else math.inf
        self._due.put_nowait((by, now, next(self._seq), live.key))

    def remove(self, key: Key) -> Live | None:
        """Forget a finished item and stop its timer (unless the timer itself is finishing it)."""
        live = self._live.pop(key, None)
        if live is not None:
            live.cancelled = True
            if live.timer is not None and live.timer is not asyncio.current_task():
                live.timer.cancel()
        return live

    def remember_resolved(self, key: Key) -> None:
        """Note a participant seen resolved before any item existed (bounded, oldest forgotten)."""
        self._resolved[key] = None
        self._resolved.move_to_end(key)
        if len(self._resolved) > RESOLVED_CAP:
            self._resolved.popitem(last=False)

    def seen_resolved(self, key: Key) -> bool:
        """Was this participant seen coded or out of ACW before an item existed?"""
        return key in self._resolved

    async def take_due(self) -> Live:
        """The next due item no worker holds; it stays held until :meth:`release`."""
        while True:
            *_, key = await self._due.get()
            live = self._live.get(key)
            if self._closed or live is None or live.cancelled or key in self._in_flight:
                continue  # closed: the ledger keeps it for the next start
            self._in_flight.add(key)
            self._idle.clear()
            return live

    def close(self) -> None:
        """Hand out no more items (the drain): what workers hold finishes, the rest waits."""
        self._closed = True

    def release(self, key: Key) -> None:
        """A worker is done with ``key`` for now."""
        self._in_flight.discard(key)
        if not self._in_flight:
            self._idle.set()

    async def idle(self) -> None:
        """Return once no worker holds an item."""
        await self._idle.wait()

    @property
    def held(self) -> int:
        """How many items workers hold right now."""
        return len(self._in_flight)
