"""Event intake: socket events and reconciled REST snapshots in, detector decisions out to the applier.

It also remembers which conversations the socket reported since the last gap, so a periodic sweep
can skip them. Memory is bounded and compact: conversation ids only, in an LRU (no per-entry
epoch: the whole set belongs to one socket epoch and is dropped when it ends), so 50,000
remembered conversations cost about 8 MB (``bench/micro.py`` measures it). An ``OrderedDict``,
not a plain dict: evicting a plain dict's oldest key walks past every key deleted before it, which
made each event cost O(cap).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Protocol

from wrapupd.detector import decide
from wrapupd.events import ConversationEvent, ConversationSnapshot, Decision
from wrapupd.metrics import Metrics

KNOWN_CONVERSATIONS_CAP = 50_000


class DecisionSink(Protocol):
    """Where decisions go (the applier): ``epoch`` is the socket epoch when the state was
    *requested* (an event: its arrival; a REST read: before the GET), None if the socket was down."""

    @property
    def pending_count(self) -> int: ...

    def submit(
        self, decisions: Sequence[Decision], *, epoch: int | None, fetched: bool = False
    ) -> None: ...


class SocketEpoch(Protocol):
    """The subscriber's view: the current socket epoch, and whether the socket is up."""

    @property
    def epoch(self) -> int: ...

    @property
    def connected(self) -> bool: ...


class SweepRequests(Protocol):
    """The reconciler, as the intake sees it: a place to ask for a sweep."""

    def request(self, reason: str) -> None: ...


class Intake:
    """Routes every snapshot through the detector to the applier, and keeps "known since the last gap"."""

    def __init__(
        self,
        *,
        watched: Callable[[], frozenset[str]],
        applier: DecisionSink,
        socket: SocketEpoch,
        sweeps: SweepRequests,
        metrics: Metrics,
        cap: int = KNOWN_CONVERSATIONS_CAP,
    ) -> None:
        self._watched = watched
        self._applier = applier
        self._socket = socket
        self._sweeps = sweeps
        self._metrics = metrics
        self._cap = cap
        self._known: OrderedDict[str, None] = OrderedDict()  # oldest first
        self._known_epoch = -1

    # --- from the subscriber ------------------------------------------------------------------

    def on_event(self, event: ConversationEvent, epoch: int) -> None:
        """One conversation event from the socket, received during socket ``epoch``."""
        conversation = event.conversation
        self._remember(conversation.id, epoch)
        decisions = decide(conversation, self._watched())
        if decisions:
            self._applier.submit(decisions, epoch=epoch)

    def on_gap(self, reason: str) -> None:
        """Events may have been lost: forget what the socket said and ask for a sweep."""
        self._known.clear()
        self._sweeps.request(reason)

    # --- from the reconciler ------------------------------------------------------------------

    def evidence_epoch(self) -> int | None:
        """The epoch to stamp on a read about to be requested (None while the socket is down)."""
        socket = self._socket
        return socket.epoch if socket.connected else None

    def on_rest_snapshot(self, snapshot: ConversationSnapshot, *, epoch: int | None) -> None:
        """A conversation's live state, read by the reconciler; ``epoch`` from before its request,
        so a read that spanned a socket gap never passes for news newer than the gap."""
        decisions = decide(snapshot, self._watched())
        if not decisions:
            return
        before = self._applier.pending_count
        self._applier.submit(decisions, epoch=epoch, fetched=True)
        self._metrics.reconcile_found(max(0, self._applier.pending_count - before))

    def known_since_gap(self, conversation_id: str) -> bool:
        """The socket reported this conversation since the last gap (its latest state is known)."""
        return self._known_epoch == self._socket.epoch and conversation_id in self._known

    # --- memory -------------------------------------------------------------------------------

    def _remember(self, conversation_id: str, epoch: int) -> None:
        if epoch != self._known_epoch:
            self._known.clear()  # what an older socket said is no longer news
            self._known_epoch = epoch
        known = self._known
        known[conversation_id] = None
        known.move_to_end(conversation_id)
        if len(known) > self._cap:
            known.popitem(last=False)
