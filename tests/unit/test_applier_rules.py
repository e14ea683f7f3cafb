"""The applier's pure rules: when a write is due, and what a fresh participant state means."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from wrapupd.applier import classify_participant, schedule_for, system_code
from wrapupd.code_cache import ResolvedQueue
from wrapupd.events import Communication, NeedsDefault, Outcome, Participant, Queue, WrapupCode

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
CODE = WrapupCode("c-default", "No code selected")


def resolved(prompt: str, timeout_ms: int | None, grace: float, margin: float = 5) -> ResolvedQueue:
    return ResolvedQueue(Queue("q", "Q", prompt, timeout_ms), CODE, grace, margin, None)


def need() -> NeedsDefault:
    return NeedsDefault("c", "p", "q", acw_started_at=T0)


def test_untimed_queue_is_due_after_the_grace_period_with_no_deadline() -> None:
    assert schedule_for(need(), resolved("MANDATORY", None, grace=30)) == (
        T0 + timedelta(seconds=30),
        None,
    )


@pytest.mark.parametrize("prompt", ["MANDATORY_TIMEOUT", "MANDATORY_FORCED_TIMEOUT"])
def test_time_boxed_queue_is_due_before_the_platform_timeout_even_with_a_long_grace(
    prompt: str,
) -> None:
    due, deadline = schedule_for(need(), resolved(prompt, 60_000, grace=300, margin=5))
    assert deadline == T0 + timedelta(seconds=55)
    assert due == deadline


def test_short_grace_on_a_time_boxed_queue_keeps_the_grace() -> None:
    due, deadline = schedule_for(need(), resolved("MANDATORY_TIMEOUT", 60_000, grace=10))
    assert due == T0 + timedelta(seconds=10) and deadline == T0 + timedelta(seconds=55)


def test_margin_larger_than_the_timeout_means_at_once() -> None:
    due, _ = schedule_for(need(), resolved("MANDATORY_TIMEOUT", 2_000, grace=10, margin=5))
    assert due == T0


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
    assert classify_participant(state, CODE.id).outcome is expected


def test_system_codes_are_recognised() -> None:
    assert (
        system_code("ININ-OUTBOUND-TRANSFERRED")
        and not system_code("No code selected")
        and not system_code(None)
    )
