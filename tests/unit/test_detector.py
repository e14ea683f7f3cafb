"""The detector: which participants need a default wrap-up code, from one snapshot alone."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wrapupd.detector import (
    acw_ended,
    acw_pending,
    decide,
    is_watched_agent,
    participant_code,
    participant_in_acw_without_code,
)
from wrapupd.events import (
    Communication,
    ConversationSnapshot,
    NeedsDefault,
    NoLongerNeeded,
    Participant,
    ResolvedReason,
)

Q = "queue-support"
OTHER_Q = "queue-sales"
WATCHED = frozenset({Q})
T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
from platform_samples import SAMPLES  # noqa: E402


def comm(
    acw_state: str | None = "pending",
    *,
    code: str | None = None,
    state: str | None = "disconnected",
    media: str = "call",
) -> Communication:
    return Communication(
        id="comm-1", media_type=media, state=state, acw_state=acw_state, wrapup_code=code
    )


def agent(
    *,
    pid: str = "agent-1",
    queue_id: str | None = Q,
    started: datetime | None = T0,
    ended: datetime | None = None,
    code: str | None = None,
    comms: tuple[Communication, ...] = (comm(),),
    purpose: str | None = "agent",
) -> Participant:
    return Participant(
        id=pid,
        purpose=purpose,
        user_id="user-1",
        queue_id=queue_id,
        start_acw_time=started,
        end_acw_time=ended,
        wrapup_code=code,
        communications=comms,
    )


def customer() -> Participant:
    return Participant(
        id="cust-1",
        purpose="customer",
        user_id=None,
        queue_id=Q,
        start_acw_time=None,
        end_acw_time=None,
        wrapup_code=None,
        communications=(comm(None),),
    )


def acd() -> Participant:
    return Participant(
        id="acd-1",
        purpose="acd",
        user_id=None,
        queue_id=Q,
        start_acw_time=None,
        end_acw_time=None,
        wrapup_code=None,
        communications=(comm(None),),
    )


def snapshot(*participants: Participant) -> ConversationSnapshot:
    return ConversationSnapshot(id="conv-1", participants=participants)


# --- the rule, case by case -------------------------------------------------------------------


def test_an_uncoded_agent_in_pending_acw_on_a_watched_queue_needs_a_default() -> None:
    decisions = decide(snapshot(customer(), acd(), agent()), WATCHED)
    assert decisions == [
        NeedsDefault(
            conversation_id="conv-1",
            participant_id="agent-1",
            queue_id=Q,
            acw_started_at=T0,
            media_type="call",
            user_id="user-1",
        )
    ]


def test_a_communication_still_connected_but_acw_pending_counts() -> None:
    """A real capture shows state=connected with afterCallWork pending: key on ACW, not state."""
    decisions = decide(snapshot(agent(comms=(comm("pending", state="connected"),))), WATCHED)
    assert [type(d) for d in decisions] == [NeedsDefault]


@pytest.mark.parametrize("code", ["5f0c-guid", "No code selected", "ININ-WRAP-UP-TIMEOUT", "x"])
def test_a_participant_level_code_means_coded(code: str) -> None:
    decisions = decide(snapshot(agent(code=code)), WATCHED)
    assert decisions == [NoLongerNeeded("conv-1", "agent-1", ResolvedReason.CODED, code)]


def test_a_communication_level_code_means_coded() -> None:
    p = agent(comms=(comm("pending"), comm("pending", code="ININ-OUTBOUND-TRANSFERRED")))
    assert decide(snapshot(p), WATCHED) == [
        NoLongerNeeded("conv-1", "agent-1", ResolvedReason.CODED, "ININ-OUTBOUND-TRANSFERRED")
    ]


def test_the_code_wins_over_acw_ended_as_the_reason() -> None:
    p = agent(code="abc", ended=T0 + timedelta(seconds=20), comms=(comm("complete"),))
    (decision,) = decide(snapshot(p), WATCHED)
    assert isinstance(decision, NoLongerNeeded)
    assert decision.reason is ResolvedReason.CODED
    assert decision.code == "abc"


def test_an_empty_code_is_no_code() -> None:
    p = agent(code="", comms=(comm("pending", code=""),))
    assert [type(d) for d in decide(snapshot(p), WATCHED)] == [NeedsDefault]


def test_end_acw_time_means_acw_ended() -> None:
    p = agent(ended=T0 + timedelta(seconds=5))
    assert decide(snapshot(p), WATCHED) == [
        NoLongerNeeded("conv-1", "agent-1", ResolvedReason.ACW_ENDED)
    ]


@pytest.mark.parametrize("acw_state", ["complete", "skipped"])
def test_only_a_complete_or_skipped_acw_means_acw_ended(acw_state: str) -> None:
    p = agent(comms=(comm(acw_state),))
    assert decide(snapshot(p), WATCHED) == [
        NoLongerNeeded("conv-1", "agent-1", ResolvedReason.ACW_ENDED)
    ]


@pytest.mark.parametrize("acw_state", ["notApplicable", "unknown", "outdated_sdk_version", None])
def test_an_unreadable_acw_state_is_uncertain_never_resolved(acw_state: str | None) -> None:
    """Issue 11 finding 4: a missing, unknown or SDK-unknown state is no evidence that ACW ended."""
    (decision,) = decide(snapshot(agent(comms=(comm(acw_state),))), WATCHED)
    assert isinstance(decision, NeedsDefault) and decision.uncertain


def test_an_agent_without_communications_after_acw_started_is_uncertain() -> None:
    (decision,) = decide(snapshot(agent(comms=())), WATCHED)
    assert isinstance(decision, NeedsDefault) and decision.uncertain


def test_end_acw_time_alone_means_acw_ended() -> None:
    (decision,) = decide(snapshot(agent(ended=T0, comms=(comm("unknown"),))), WATCHED)
    assert isinstance(decision, NoLongerNeeded)
    assert decision.reason is ResolvedReason.ACW_ENDED


def test_one_pending_communication_among_others_is_enough() -> None:
    p = agent(comms=(comm("complete"), comm("pending", media="chat")))
    (decision,) = decide(snapshot(p), WATCHED)
    assert isinstance(decision, NeedsDefault)
    assert decision.media_type == "call"  # Participant.media_type: its first communication


def test_an_agent_that_never_entered_acw_gets_no_decision() -> None:
    """Alerted-but-unanswered legs have no startAcwTime: skip them."""
    assert (
        decide(snapshot(agent(started=None, comms=(comm(None, state="alerting"),))), WATCHED) == []
    )
    assert decide(snapshot(agent(started=None, code="abc")), WATCHED) == []


def test_unwatched_queues_and_non_agents_are_ignored() -> None:
    assert decide(snapshot(agent(queue_id=OTHER_Q)), WATCHED) == []
    assert decide(snapshot(agent(queue_id=None)), WATCHED) == []
    assert decide(snapshot(agent(purpose="customer")), WATCHED) == []
    assert decide(snapshot(agent(purpose=None)), WATCHED) == []
    assert decide(snapshot(agent(code="abc", queue_id=OTHER_Q)), WATCHED) == []
    assert decide(snapshot(customer(), acd()), WATCHED) == []


def test_nothing_is_watched_means_no_decisions() -> None:
    assert decide(snapshot(agent()), frozenset()) == []


def test_several_agents_get_one_decision_each_in_snapshot_order() -> None:
    transferred = agent(pid="agent-a", code="abc")
    current = agent(pid="agent-b")
    elsewhere = agent(pid="agent-c", queue_id=OTHER_Q)
    decisions = decide(snapshot(transferred, customer(), elsewhere, current), WATCHED)
    assert [(type(d), d.participant_id) for d in decisions] == [
        (NoLongerNeeded, "agent-a"),
        (NeedsDefault, "agent-b"),
    ]


def test_any_collection_of_queue_ids_works() -> None:
    s = snapshot(agent())
    assert decide(s, [Q]) == decide(s, {Q}) == decide(s, (OTHER_Q, Q))


# --- the small predicates ---------------------------------------------------------------------


def test_participant_code_prefers_the_participant_level_code() -> None:
    p = agent(code="participant-code", comms=(comm(code="comm-code"),))
    assert participant_code(p) == "participant-code"
    assert participant_code(agent(comms=(comm(), comm(code="second")))) == "second"
    assert participant_code(agent()) is None


def test_acw_pending_looks_at_every_communication() -> None:
    assert acw_pending(agent(comms=(comm("complete"), comm("pending"))))
    assert not acw_pending(agent(comms=(comm("complete"),)))
    assert not acw_pending(agent(comms=()))


def test_participant_in_acw_without_code_is_the_platform_rule() -> None:
    assert participant_in_acw_without_code(agent())
    assert not participant_in_acw_without_code(agent(code="c"))
    assert not participant_in_acw_without_code(agent(ended=T0))
    assert not participant_in_acw_without_code(agent(started=None))
    assert not participant_in_acw_without_code(agent(comms=(comm("skipped"),)))
    assert not participant_in_acw_without_code(agent(purpose="customer"))
    # queue membership is not part of the per-participant test
    assert participant_in_acw_without_code(agent(queue_id=OTHER_Q))


def test_is_watched_agent() -> None:
    assert is_watched_agent(agent(), WATCHED)
    assert not is_watched_agent(agent(queue_id=OTHER_Q), WATCHED)
    assert not is_watched_agent(agent(queue_id=None), WATCHED)
    assert not is_watched_agent(customer(), WATCHED)


# --- the platform's own samples ---------------------------------------------------------------


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def _code(node: dict[str, Any]) -> str | None:
    wrapup = node.get("wrapup")
    return wrapup.get("code") if isinstance(wrapup, dict) else None


def snapshot_from_sample(name: str) -> tuple[str, ConversationSnapshot]:
    """Just enough of the adapter's job to run a stored sample frame through the detector."""
    frame = json.loads((SAMPLES / name).read_text())
    body = frame["eventBody"]
    queue_id = frame["topicName"].split(".")[3]
    participants = tuple(
        Participant(
            id=p["id"],
            purpose=p.get("purpose"),
            user_id=p.get("userId"),
            queue_id=p.get("queueId"),
            start_acw_time=_time(p.get("startAcwTime")),
            end_acw_time=_time(p.get("endAcwTime")),
            wrapup_code=_code(p),
            communications=tuple(
                Communication(
                    id=c["id"],
                    media_type="call",
                    state=c.get("state"),
                    acw_state=(c.get("afterCallWork") or {}).get("state"),
                    wrapup_code=_code(c),
                )
                for c in p.get("calls", [])
            ),
        )
        for p in body["participants"]
    )
    return queue_id, ConversationSnapshot(id=body["id"], participants=participants)


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="platform samples not present")
def test_the_sample_of_an_agent_entering_acw_needs_a_default() -> None:
    queue_id, s = snapshot_from_sample("queue_event_agent_in_acw.json")
    (decision,) = decide(s, {queue_id})
    assert isinstance(decision, NeedsDefault)
    assert decision.acw_started_at == datetime(2025, 6, 10, 11, 58, 41, 900000, tzinfo=UTC)


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="platform samples not present")
def test_the_sample_after_a_code_is_applied_is_coded() -> None:
    queue_id, s = snapshot_from_sample("queue_event_agent_wrapup_applied.json")
    (decision,) = decide(s, {queue_id})
    assert isinstance(decision, NoLongerNeeded)
    assert decision.reason is ResolvedReason.CODED
    assert decision.code == "560d87d0-ed4c-4662-903d-dce00bfae927"


# --- properties -------------------------------------------------------------------------------

maybe_time = st.one_of(st.none(), st.just(T0), st.just(T0 + timedelta(seconds=30)))
maybe_code = st.one_of(st.none(), st.just(""), st.sampled_from(["g-1", "ININ-WRAP-UP-TIMEOUT"]))
communications = st.builds(
    comm,
    st.sampled_from(["pending", "complete", "skipped", "notApplicable", "unknown", None]),
    code=maybe_code,
    state=st.sampled_from(["connected", "disconnected", "alerting", None]),
)
participants = st.builds(
    agent,
    pid=st.sampled_from(["a", "b", "c", "d"]),
    queue_id=st.sampled_from([Q, OTHER_Q, None]),
    started=maybe_time,
    ended=maybe_time,
    code=maybe_code,
    comms=st.lists(communications, max_size=3).map(tuple),
    purpose=st.sampled_from(["agent", "customer", "acd", "ivr", None]),
)


@given(st.lists(participants, max_size=6))
def test_decisions_agree_with_the_predicates(people: list[Participant]) -> None:
    decisions = decide(snapshot(*people), WATCHED)
    relevant = [p for p in people if is_watched_agent(p, WATCHED) and p.start_acw_time]
    assert len(decisions) == len(relevant)
    for p, decision in zip(relevant, decisions, strict=True):
        assert decision.participant_id == p.id
        needs = participant_in_acw_without_code(p)
        assert (isinstance(decision, NeedsDefault) and not decision.uncertain) == needs
        ended = participant_code(p) is not None or acw_ended(p)
        assert isinstance(decision, NoLongerNeeded) == ended
        if isinstance(decision, NoLongerNeeded):
            assert (decision.reason is ResolvedReason.CODED) == (participant_code(p) is not None)
            assert decision.code == participant_code(p)


@given(participants)
def test_a_coded_participant_never_needs_a_default(p: Participant) -> None:
    if participant_code(p) is not None:
        assert not any(isinstance(d, NeedsDefault) for d in decide(snapshot(p), WATCHED))


@given(st.lists(participants, max_size=6))
def test_deciding_twice_gives_the_same_answer(people: list[Participant]) -> None:
    s = snapshot(*people)
    assert decide(s, WATCHED) == decide(s, WATCHED)


# --- speed ------------------------------------------------------------------------------------


def test_typical_snapshots_decide_faster_than_20000_per_second() -> None:
    s = snapshot(customer(), acd(), agent())
    decide(s, WATCHED)
    n = 20_000
    best = min(_timed(s, n) for _ in range(3))
    # Generous against noisy CI machines; the target is n per second on one core.
    assert best < 1.0, f"{n} snapshots took {best:.3f}s"


def _timed(s: ConversationSnapshot, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        decide(s, WATCHED)
    return time.perf_counter() - start
