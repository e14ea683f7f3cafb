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
    NeedsDefault,
    NoLongerNeeded,
    Outcome,
    Participant,
    Queue,
    QueuePolicy,
    ResolvedReason,
    WorkItem,
    WrapupCode,
)

SYSTEM_CODE_PREFIX = "ININ-"


@dataclass(frozen=True, slots=True)
class StateCheck:
    """What a fresh state says: a final ``outcome``, or None while a code is still wanted (or, when
    ``uncertain``, while the state cannot tell: neither write nor end, look again later)."""

    outcome: Outcome | None
    detail: str = ""
    code: str | None = None
    uncertain: bool = False


WRITE_WANTED = StateCheck(None)
UNCERTAIN = StateCheck(None, "after-call work state unreadable", uncertain=True)


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
    if detector.acw_ended(participant):
        return StateCheck(Outcome.TOO_LATE, "after-call work ended without a code")
    if detector.participant_in_acw_without_code(participant):
        return WRITE_WANTED
    return UNCERTAIN


def after_refusal(
    check: StateCheck, code: WrapupCode, refusal: str
) -> tuple[Outcome, str, str | None]:
    """The outcome, detail and code after the platform refused our write, given the state read right
    after: a participant still in ACW without a code means the platform refuses this code for it."""
    if check.outcome is None:
        detail = f"participant is in ACW without a code but the platform refused {code.name!r} ({code.id}): {refusal}"
        return Outcome.INVALID_CODE, detail, code.id
    return check.outcome, f"{check.detail}; write refused: {refusal}", check.code


def resolved_outcome(
    decision: NoLongerNeeded, unanswered: str | None = None
) -> tuple[Outcome, str]:
    """How an item ends when a snapshot shows its participant no longer needs a default;
    ``unanswered``: the code of a write of ours that may have landed without an answer."""
    if decision.reason is ResolvedReason.CODED and unanswered and decision.code == unanswered:
        return Outcome.APPLIED, f"our write of {unanswered} landed though its answer was lost"
    if decision.reason is ResolvedReason.CODED and not system_code(decision.code):
        return Outcome.ALREADY_CODED, f"agent chose {decision.code}"
    if decision.reason is ResolvedReason.CODED:
        return Outcome.TOO_LATE, f"the platform stamped {decision.code}"
    return Outcome.TOO_LATE, f"after-call work ended ({decision.reason.value})"


TIMED_PROMPTS = frozenset({"timeout", "forcedTimeout"})  # a participant's wrapupPrompt in events


def schedule_for(
    acw_started_at: datetime,
    queue: Queue,
    policy: QueuePolicy,
    *,
    participant_timeout_ms: int | None = None,
    participant_prompt: str | None = None,
) -> tuple[datetime, datetime | None]:
    """When to write (after the grace period) and the latest useful moment on time-boxed ACW.

    The participant's own ``wrapupTimeoutMs``/``wrapupPrompt`` (what the platform applies to this
    participant) win over the cached queue settings, which may be stale."""
    time_boxed = queue.time_boxed or participant_prompt in TIMED_PROMPTS
    timeout_ms = participant_timeout_ms or queue.acw_timeout_ms
    due = acw_started_at + timedelta(seconds=policy.grace_seconds)
    if not (time_boxed and timeout_ms):
        return due, None
    deadline = (
        acw_started_at
        + timedelta(milliseconds=timeout_ms)
        - timedelta(seconds=policy.timeout_margin_seconds)
    )
    deadline = max(deadline, acw_started_at)
    return min(due, deadline), deadline


SEND_SLACK_SECONDS = 0.25  # how late past its deadline a write due at it may still leave


def send_slack(margin_seconds: float) -> float:
    """How long past a time-boxed item's deadline a write may still leave: the moment it takes a
    write due at the deadline to get out (its turn, the mark's fsync), and never more than a quarter
    of the margin, so at least three quarters of it is left for the write's flight."""
    return min(SEND_SLACK_SECONDS, margin_seconds / 4)


def races_timeout_stamp(
    deadline: datetime | None, margin_seconds: float, now: datetime
) -> float | None:
    """Seconds to hold back a write sent ``now`` so that it does not race the platform's
    ININ-WRAP-UP-TIMEOUT stamp; None when it may leave.

    The deadline is the timeout less the margin, the longest a write may take. Past the deadline
    (by more than the slack) the write is held back until the margin has also passed the timeout,
    when a fresh read shows the stamp (too late) or, on a platform slow to stamp or not stamping,
    that the write no longer races it."""
    if deadline is None:
        return None
    late_by = (now - deadline).total_seconds()
    window_ends = 2 * margin_seconds  # the timeout (deadline + margin), then the margin again
    if late_by <= send_slack(margin_seconds) or late_by >= window_ends:
        return None
    return window_ends - late_by


def check_summary(check: StateCheck) -> str:
    """One history line for a state check: what it found."""
    if check.outcome is not None:
        return f"{check.outcome.value}: {check.detail}"
    return check.detail or "in ACW without a code"


def new_work_item(decision: NeedsDefault, queue: Queue, policy: QueuePolicy) -> WorkItem:
    """The work item a "needs a default" decision starts, due and deadline from the policy."""
    due, deadline = schedule_for(
        decision.acw_started_at,
        queue,
        policy,
        participant_timeout_ms=decision.wrapup_timeout_ms,
        participant_prompt=decision.wrapup_prompt,
    )
    return WorkItem(
        conversation_id=decision.conversation_id,
        participant_id=decision.participant_id,
        queue_id=decision.queue_id,
        acw_started_at=decision.acw_started_at,
        due_at=due,
        deadline=deadline,
        media_type=decision.media_type,
    )


def sighting_proves(decision: NeedsDefault, item: WorkItem, fetched: bool) -> bool:
    """Whether a sighting "in ACW without a code" stands in for a GET before the write: a read just
    made (``fetched``), or an event on a queue without grace, written at once, so the state it shows
    is only as old as its delivery. After a grace period an event proves nothing: it may be a late
    copy, with the agent's code on its way behind it. A state nobody can read proves nothing."""
    if decision.uncertain:
        return False
    return fetched or item.due_at <= item.acw_started_at
