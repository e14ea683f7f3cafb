"""PURE participant rules shared by the applier and ``wrapupd apply``: what a state means for a write.

The detector decides from a snapshot whether a participant needs a default at all; these rules
decide, from a fresh state taken just before a write (or just after the platform refused one),
whether the write is still wanted and, if not, which outcome ends the work. No I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from wrapupd import detector
from wrapupd.events import (
    ConversationSnapshot,
    NoLongerNeeded,
    Outcome,
    Participant,
    Queue,
    QueuePolicy,
    ResolvedReason,
    WrapupCode,
)

SYSTEM_CODE_PREFIX = "ININ-"


@dataclass(frozen=True, slots=True)
class StateCheck:
    """What a fresh state says: a final ``outcome``, or None while a code is still wanted."""

    outcome: Outcome | None
    detail: str = ""
    code: str | None = None


WRITE_WANTED = StateCheck(None)


def system_code(code: str | None) -> bool:
    """A code the platform stamps itself (``ININ-WRAP-UP-TIMEOUT``, ``ININ-OUTBOUND-*``)."""
    return bool(code) and str(code).startswith(SYSTEM_CODE_PREFIX)


def find_participant(snapshot: ConversationSnapshot, participant_id: str) -> Participant | None:
    """The participant with that id in the snapshot, or None when it is not there (any more)."""
    return next((p for p in snapshot.participants if p.id == participant_id), None)


def check_participant(participant: Participant | None, our_code_id: str | None) -> StateCheck:
    """Decide from a fresh participant state what a write would mean now."""
    if participant is None:
        return StateCheck(Outcome.TOO_LATE, "participant no longer in the conversation")
    code = detector.participant_code(participant)
    if code:
        if our_code_id and code == our_code_id:
            return StateCheck(Outcome.APPLIED, "our code is already on the participant", code)
        if system_code(code):
            return StateCheck(Outcome.TOO_LATE, f"the platform stamped {code}", code)
        return StateCheck(Outcome.ALREADY_CODED, "coded meanwhile", code)
    if detector.participant_in_acw_without_code(participant):
        return WRITE_WANTED
    return StateCheck(Outcome.TOO_LATE, "after-call work ended without a code")


def after_refusal(
    check: StateCheck, code: WrapupCode, refusal: str
) -> tuple[Outcome, str, str | None]:
    """The outcome, detail and code after the platform refused our write, given the state read right
    after: a participant still in ACW without a code means the platform refuses this code for it."""
    if check.outcome is None:
        detail = f"participant is in ACW without a code but the platform refused {code.name!r} ({code.id}): {refusal}"
        return Outcome.INVALID_CODE, detail, code.id
    return check.outcome, f"{check.detail}; write refused: {refusal}", check.code


def resolved_outcome(decision: NoLongerNeeded) -> tuple[Outcome, str]:
    """How an item ends when a snapshot shows its participant no longer needs a default."""
    if decision.reason is ResolvedReason.CODED and not system_code(decision.code):
        return Outcome.ALREADY_CODED, f"agent chose {decision.code}"
    if decision.reason is ResolvedReason.CODED:
        return Outcome.TOO_LATE, f"the platform stamped {decision.code}"
    return Outcome.TOO_LATE, f"after-call work ended ({decision.reason.value})"


def schedule_for(
    acw_started_at: datetime, queue: Queue, policy: QueuePolicy
) -> tuple[datetime, datetime | None]:
    """When to write (after the grace period) and the latest useful moment on time-boxed queues."""
    due = acw_started_at + timedelta(seconds=policy.grace_seconds)
    timeout_ms = queue.acw_timeout_ms
    if not (queue.time_boxed and timeout_ms):
        return due, None
    deadline = (
        acw_started_at
        + timedelta(milliseconds=timeout_ms)
        - timedelta(seconds=policy.timeout_margin_seconds)
    )
    deadline = max(deadline, acw_started_at)
    return min(due, deadline), deadline
