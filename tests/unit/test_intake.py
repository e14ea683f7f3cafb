"""The intake: snapshots to decisions to the applier, and "known since the last gap"."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from wrapupd.events import (
    Communication,
    ConversationEvent,
    ConversationSnapshot,
    Decision,
    NeedsDefault,
    Participant,
)
from wrapupd.intake import Intake
from wrapupd.metrics import Metrics

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
WATCHED = frozenset({"q1"})


class Applier:
    def __init__(self) -> None:
        self.submitted: list[tuple[list[Decision], int | None]] = []
        self.fetched: list[bool] = []  # per submission: read by GET (else an event)

    @property
    def pending_count(self) -> int:
        return sum(isinstance(d, NeedsDefault) for ds, _ in self.submitted for d in ds)

    def submit(
        self, decisions: Sequence[Decision], *, epoch: int | None, fetched: bool = False
    ) -> None:
        self.submitted.append((list(decisions), epoch))
        self.fetched.append(fetched)


class Socket:
    def __init__(self) -> None:
        self.epoch = 0
        self.connected = True


class Sweeps:
    def __init__(self) -> None:
        self.requests: list[str] = []

    def request(self, reason: str) -> None:
        self.requests.append(reason)


def in_acw(conversation_id: str, queue_id: str = "q1") -> ConversationSnapshot:
    communication = Communication("m", "call", "disconnected", "pending", None)
    agent = Participant(
        "p", "agent", "u", queue_id, T0, None, None, communications=(communication,)
    )
    return ConversationSnapshot(conversation_id, (agent,))


def event(conversation_id: str, queue_id: str = "q1") -> ConversationEvent:
    topic = f"v2.routing.queues.{queue_id}.conversations"
    return ConversationEvent(topic, queue_id, in_acw(conversation_id, queue_id))


def rig(cap: int = 50_000) -> tuple[Intake, Applier, Socket, Sweeps, Metrics]:
    applier, socket, sweeps, metrics = Applier(), Socket(), Sweeps(), Metrics(process_metrics=False)
    intake = Intake(
        watched=lambda: WATCHED,
        applier=applier,
        socket=socket,
        sweeps=sweeps,
        metrics=metrics,
        cap=cap,
    )
    return intake, applier, socket, sweeps, metrics


def test_an_event_becomes_decisions_stamped_with_its_socket_epoch() -> None:
    intake, applier, *_ = rig()
    intake.on_event(event("c1"), epoch=3)
    intake.on_event(event("c2", queue_id="unwatched"), epoch=3)
    assert len(applier.submitted) == 1
    decisions, epoch = applier.submitted[0]
    assert epoch == 3 and [d.conversation_id for d in decisions] == ["c1"]
    assert applier.fetched == [False], "an event's state is as old as its delivery, not read now"


def test_what_the_socket_reported_is_known_until_the_next_gap() -> None:
    intake, _, _, sweeps, _ = rig()
    intake.on_event(event("c1"), epoch=0)
    assert intake.known_since_gap("c1") and not intake.known_since_gap("c2")
    intake.on_gap("reconnected")
    assert not intake.known_since_gap("c1")
    assert sweeps.requests == ["reconnected"]


def test_a_new_socket_epoch_makes_what_the_old_socket_said_unknown_at_once() -> None:
    intake, _, socket, _, _ = rig()
    intake.on_event(event("c1"), epoch=0)
    socket.epoch = 1  # the socket dropped; the sink hears of the gap only once it reconnects
    assert not intake.known_since_gap("c1")
    intake.on_event(event("c2"), epoch=1)
    assert intake.known_since_gap("c2") and not intake.known_since_gap("c1")


def test_memory_is_capped_and_forgets_the_least_recently_reported_first() -> None:
    intake, *_ = rig(cap=3)
    for conversation in ("c1", "c2", "c3", "c1", "c4"):
        intake.on_event(event(conversation), epoch=0)
    assert [intake.known_since_gap(c) for c in ("c1", "c2", "c3", "c4")] == [
        True,
        False,
        True,
        True,
    ]


def test_a_reconciled_read_is_stamped_with_the_epoch_from_before_its_request() -> None:
    """Issue 11 finding 2: a GET that spans a socket gap never passes for news newer than the gap."""
    intake, applier, socket, _, metrics = rig()
    socket.epoch = 7
    requested_at = intake.evidence_epoch()
    socket.epoch = 8  # the socket dropped and came back while the GET was in flight
    intake.on_rest_snapshot(in_acw("c1"), epoch=requested_at)
    socket.connected = False
    intake.on_rest_snapshot(in_acw("c2"), epoch=intake.evidence_epoch())
    assert [epoch for _, epoch in applier.submitted] == [7, None]
    assert applier.fetched == [True, True], "a sweep's read is the state at its request"
    assert metrics.registry.get_sample_value("wrapupd_reconcile_found_total") == 2
    assert not intake.known_since_gap("c1"), "a REST read is not a socket report"


def test_the_watched_queues_are_read_on_every_snapshot() -> None:
    watched = {"q1"}
    applier = Applier()
    intake = Intake(
        watched=lambda: frozenset(watched),
        applier=applier,
        socket=Socket(),
        sweeps=Sweeps(),
        metrics=Metrics(process_metrics=False),
    )
    intake.on_event(event("c1", queue_id="q2"), epoch=0)
    watched.add("q2")  # the code table now holds q2
    intake.on_event(event("c2", queue_id="q2"), epoch=0)
    assert [d.conversation_id for ds, _ in applier.submitted for d in ds] == ["c2"]
