"""The pure participant rules: when a write is due, what a fresh state means, what a refusal means."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from wrapupd.events import (
    Communication,
    NoLongerNeeded,
    Outcome,
    Participant,
    Queue,
    QueuePolicy,
    ResolvedReason,
    WrapupCode,
)
from wrapupd.rules import (
    WRITE_WANTED,
    StateCheck,
    after_refusal,
    check_participant,
    races_timeout_stamp,
    resolved_outcome,
    schedule_for,
    system_code,
)

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
CODE = WrapupCode("c-default", "No code selected")


def schedule(
    prompt: str, timeout_ms: int | None, grace: float, margin: float = 5
) -> tuple[datetime, datetime | None]:
    policy = QueuePolicy("Q", CODE.name, grace, margin, None)
    return schedule_for(T0, Queue("q", "Q", prompt, timeout_ms), policy)


def test_untimed_queue_is_due_after_the_grace_period_with_no_deadline() -> None:
    assert schedule("MANDATORY", None, grace=30) == (
        T0 + timedelta(seconds=30),
        None,
    )


@pytest.mark.parametrize("prompt", ["MANDATORY_TIMEOUT", "MANDATORY_FORCED_TIMEOUT"])
def test_time_boxed_queue_is_due_before_the_platform_timeout_even_with_a_long_grace(
    prompt: str,
) -> None:
    due, deadline = schedule(prompt, 60_000, grace=300, margin=5)
    assert deadline == T0 + timedelta(seconds=55)
    assert due == deadline


def test_short_grace_on_a_time_boxed_queue_keeps_the_grace() -> None:
    due, deadline = schedule("MANDATORY_TIMEOUT", 60_000, grace=10)
    assert due == T0 + timedelta(seconds=10) and deadline == T0 + timedelta(seconds=55)


def test_margin_larger_than_the_timeout_means_at_once() -> None:
    due, _ = schedule("MANDATORY_TIMEOUT", 2_000, grace=10, margin=5)
    assert due == T0


DEADLINE = T0 + timedelta(seconds=55)  # a 60 s timeout less a 5 s margin


def held_back(
    late_by: float, margin: float = 5.0, deadline: datetime | None = DEADLINE
) -> float | None:
    return races_timeout_stamp(deadline, margin, (deadline or T0) + timedelta(seconds=late_by))


def test_a_write_with_no_platform_timeout_is_never_held_back() -> None:
    assert held_back(3600, deadline=None) is None


@pytest.mark.parametrize("late_by", [-10.0, 0.0, 0.25])
def test_a_write_due_at_its_deadline_leaves_within_the_slack(late_by: float) -> None:
    assert held_back(late_by) is None


@pytest.mark.parametrize(("late_by", "hold"), [(0.26, 9.74), (1.0, 9.0), (4.9, 5.1), (9.5, 0.5)])
def test_a_write_delayed_into_the_margin_waits_until_the_margin_has_passed_the_timeout(
    late_by: float, hold: float
) -> None:
    """Sent there it could land after the platform's ININ-WRAP-UP-TIMEOUT stamp; it is held
    until the timeout plus the margin, when a fresh read shows the stamp or that none came."""
    assert held_back(late_by) == pytest.approx(hold)


def test_once_the_margin_has_passed_the_timeout_the_write_may_leave() -> None:
    assert held_back(10.0) is None and held_back(60.0) is None


def test_the_slack_is_never_more_than_a_quarter_of_a_small_margin() -> None:
    assert held_back(0.1, margin=0.4) is None
    assert held_back(0.15, margin=0.4) == pytest.approx(0.65)


def test_a_margin_larger_than_the_timeout_still_lets_an_immediate_write_leave() -> None:
    _, deadline = schedule("MANDATORY_TIMEOUT", 2_000, grace=10, margin=5)
    assert deadline == T0
    assert held_back(0.05, deadline=deadline) is None


def participant(
    *, code: str | None = None, acw: str | None = "pending", ended: bool = False
) -> Participant:
    comm = Communication("m", "call", "disconnected", acw, None)
    return Participant(
        "p",
        "agent",
        "u",
        "q",
        start_acw_time=T0,
        end_acw_time=T0 + timedelta(seconds=3) if ended else None,
        wrapup_code=code,
        communications=(comm,),
    )


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (participant(), None),
        (participant(code="agent-code", acw="complete", ended=True), Outcome.ALREADY_CODED),
        (participant(code="ININ-WRAP-UP-TIMEOUT", acw="complete", ended=True), Outcome.TOO_LATE),
        (participant(code="c-default", acw="complete", ended=True), Outcome.APPLIED),
        (participant(acw="skipped", ended=True), Outcome.TOO_LATE),
        (None, Outcome.TOO_LATE),
    ],
    ids=["needs-code", "agent-coded", "platform-timeout", "ours-already", "skipped", "gone"],
)
def test_fresh_state_decides_the_write(state: Participant | None, expected: Outcome | None) -> None:
    assert check_participant(state, CODE.id).outcome is expected


def test_system_codes_are_recognised() -> None:
    assert (
        system_code("ININ-OUTBOUND-TRANSFERRED")
        and not system_code("No code selected")
        and not system_code(None)
    )


@pytest.mark.parametrize(
    ("after", "expected", "code"),
    [
        (WRITE_WANTED, Outcome.INVALID_CODE, CODE.id),
        (
            StateCheck(Outcome.ALREADY_CODED, "coded meanwhile", "agent-code"),
            Outcome.ALREADY_CODED,
            "agent-code",
        ),
        (
            StateCheck(Outcome.TOO_LATE, "after-call work ended without a code"),
            Outcome.TOO_LATE,
            None,
        ),
    ],
    ids=["still-uncoded-means-the-code-is-refused", "coded-meanwhile", "acw-over"],
)
def test_a_refused_write_is_explained_by_the_state_read_after_it(
    after: StateCheck, expected: Outcome, code: str | None
) -> None:
    outcome, detail, code_id = after_refusal(after, CODE, "400 bad.request")
    assert (outcome, code_id) == (expected, code)
    assert "400 bad.request" in detail


@pytest.mark.parametrize(
    ("decision", "expected"),
    [
        (NoLongerNeeded("c", "p", ResolvedReason.CODED, "agent-code"), Outcome.ALREADY_CODED),
        (NoLongerNeeded("c", "p", ResolvedReason.CODED, "ININ-WRAP-UP-TIMEOUT"), Outcome.TOO_LATE),
        (NoLongerNeeded("c", "p", ResolvedReason.ACW_ENDED), Outcome.TOO_LATE),
    ],
    ids=["agent-coded", "platform-stamped", "acw-ended"],
)
def test_a_participant_resolved_meanwhile_ends_its_item(
    decision: NoLongerNeeded, expected: Outcome
) -> None:
    assert resolved_outcome(decision)[0] is expected


def test_our_code_after_our_unanswered_write_is_ours_any_other_code_the_agent_s() -> None:
    ours = NoLongerNeeded("c", "p", ResolvedReason.CODED, "code-default")
    theirs = NoLongerNeeded("c", "p", ResolvedReason.CODED, "agent-code")

    assert resolved_outcome(ours, unanswered="code-default")[0] is Outcome.APPLIED
    assert resolved_outcome(theirs, unanswered="code-default")[0] is Outcome.ALREADY_CODED
    assert resolved_outcome(ours)[0] is Outcome.ALREADY_CODED  # we never wrote: not ours


@pytest.mark.parametrize("acw_state", [None, "unknown", "outdated_sdk_version", "notApplicable"])
def test_a_check_that_reads_an_unknown_acw_state_is_uncertain_never_too_late(
    acw_state: str | None,
) -> None:
    """Issue 11 finding 4: only explicit evidence ends an item; an unreadable state waits."""
    communication = Communication("m", "call", "disconnected", acw_state, None)
    participant = Participant(
        "p", "agent", "u", "q", T0, None, None, communications=(communication,)
    )
    check = check_participant(participant, CODE.id)
    assert check.outcome is None and check.uncertain


def test_a_check_that_reads_a_skipped_acw_is_too_late() -> None:
    communication = Communication("m", "call", "disconnected", "skipped", None)
    participant = Participant(
        "p", "agent", "u", "q", T0, None, None, communications=(communication,)
    )
    assert check_participant(participant, CODE.id).outcome is Outcome.TOO_LATE


def test_the_participants_own_acw_timeout_sets_the_deadline() -> None:
    """Issue 11 finding 16: ``wrapupTimeoutMs`` on the participant wins over the cached queue's."""
    policy = QueuePolicy("Q", CODE.name, 300, 5, None)
    queue = Queue("q", "Q", "MANDATORY_TIMEOUT", 60_000)
    due, deadline = schedule_for(T0, queue, policy, participant_timeout_ms=20_000)
    assert deadline == T0 + timedelta(seconds=15) and due == deadline


def test_a_participant_timeout_prompt_makes_an_untimed_queue_time_boxed() -> None:
    policy = QueuePolicy("Q", CODE.name, 300, 5, None)
    queue = Queue("q", "Q", "MANDATORY", None)
    _, deadline = schedule_for(
        T0, queue, policy, participant_timeout_ms=30_000, participant_prompt="timeout"
    )
    assert deadline == T0 + timedelta(seconds=25)
