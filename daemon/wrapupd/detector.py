"""Decide, from one conversation snapshot, which agents need a default wrap-up code.

PURE: a snapshot in, decisions out; no I/O, no clock, no logging. Every platform event is a full
snapshot and events may arrive late, twice or out of order, so the decision depends only on the
snapshot given (the platform promises no ordering and keeps no events for a socket that is down).
The rule keys on ``startAcwTime`` and
``afterCallWork.state``, never on the communication ``state``: a real capture shows a communication
still ``connected`` while its after-call work is already ``pending``. Only explicit evidence ends a
participant (a code, ``endAcwTime``, ``afterCallWork`` complete or skipped); a state nobody can read
(missing, ``unknown``, ``outdated_sdk_version``) is *uncertain*: the applier checks it by GET.

This sits on the hot path (every frame of every watched queue, and every reconciled conversation),
so the predicates avoid building intermediate collections.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from wrapupd.events import (
    ConversationSnapshot,
    Decision,
    NeedsDefault,
    NoLongerNeeded,
    Participant,
    ResolvedReason,
)

__all__ = [
    "AGENT_PURPOSE",
    "ENDED_ACW",
    "PENDING_ACW",
    "acw_ended",
    "acw_pending",
    "decide",
    "decide_participant",
    "is_watched_agent",
    "may_concern_wrapup",
    "participant_code",
    "participant_in_acw_without_code",
]

AGENT_PURPOSE = "agent"
PENDING_ACW = "pending"
ENDED_ACW = frozenset({"complete", "skipped"})


def decide(snapshot: ConversationSnapshot, watched_queue_ids: Collection[str]) -> list[Decision]:
    """Every decision the snapshot supports, one per watched agent participant that entered ACW.

    ``watched_queue_ids`` is tested with ``in`` once per participant: pass a set or frozenset.
    """
    decisions: list[Decision] = []
    for participant in snapshot.participants:
        decision = decide_participant(snapshot.id, participant, watched_queue_ids)
        if decision is not None:
            decisions.append(decision)
    return decisions


def decide_participant(
    conversation_id: str, participant: Participant, watched_queue_ids: Collection[str]
) -> Decision | None:
    """The decision for one participant, or None when wrapupd has no business with it.

    No business: not an agent, a queue nobody watches, or an agent leg that never entered ACW
    (alerted but unanswered legs have no ``startAcwTime``).
    """
    started = participant.start_acw_time
    queue_id = participant.queue_id
    if started is None or queue_id is None or not is_watched_agent(participant, watched_queue_ids):
        return None
    code = participant_code(participant)
    if code is not None:
        return NoLongerNeeded(conversation_id, participant.id, ResolvedReason.CODED, code)
    if acw_ended(participant):
        return NoLongerNeeded(conversation_id, participant.id, ResolvedReason.ACW_ENDED)
    return NeedsDefault(
        conversation_id=conversation_id,
        participant_id=participant.id,
        queue_id=queue_id,
        acw_started_at=started,
        media_type=participant.media_type,
        user_id=participant.user_id,
        uncertain=not acw_pending(participant),
        wrapup_timeout_ms=participant.wrapup_timeout_ms,
        wrapup_prompt=participant.wrapup_prompt,
    )


def may_concern_wrapup(purpose: str | None, start_acw_time: datetime | None) -> bool:
    """An agent leg that entered ACW: the only participants any decision is about."""
    return start_acw_time is not None and purpose == AGENT_PURPOSE


def is_watched_agent(participant: Participant, watched_queue_ids: Collection[str]) -> bool:
    """An agent leg routed from a queue this daemon is configured for."""
    return (
        participant.purpose == AGENT_PURPOSE
        and participant.queue_id is not None
        and participant.queue_id in watched_queue_ids
    )


def participant_code(participant: Participant) -> str | None:
    """The wrap-up code already on the participant, from its own or any communication's ``wrapup``.

    Any non-empty value counts: an id, a name (events may carry either), or a system ``ININ-*``
    code such as ``ININ-WRAP-UP-TIMEOUT``. Never overwrite what someone else has chosen.
    """
    if participant.wrapup_code:
        return participant.wrapup_code
    for communication in participant.communications:
        if communication.wrapup_code:
            return communication.wrapup_code
    return None


def acw_pending(participant: Participant) -> bool:
    """Some communication still waits for after-call work (``afterCallWork.state == pending``)."""
    for communication in participant.communications:
        if communication.acw_state == PENDING_ACW:
            return True
    return False


def acw_ended(participant: Participant) -> bool:
    """Explicit evidence that after-call work is over: ``endAcwTime``, or no communication pending
    and one ``complete``/``skipped``. Anything else (missing, ``unknown``, a value the SDK does not
    know) proves nothing."""
    if participant.end_acw_time is not None:
        return True
    if acw_pending(participant):
        return False
    return any(c.acw_state in ENDED_ACW for c in participant.communications)


def participant_in_acw_without_code(participant: Participant) -> bool:
    """The platform's own condition for "left in ACW without a code": an agent whose ACW started,
    has not ended, shows no code, and has a communication whose after-call work is ``pending``.

    Queue membership is checked separately (:func:`is_watched_agent`); this is the per-participant
    state test :mod:`wrapupd.rules` also applies to a fresh state before every write.
    """
    return (
        participant.purpose == AGENT_PURPOSE
        and participant.start_acw_time is not None
        and participant.end_acw_time is None
        and participant_code(participant) is None
        and acw_pending(participant)
    )
