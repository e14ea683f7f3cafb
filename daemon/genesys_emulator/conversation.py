"""Conversations and their wrap-up rules: the part of the state-and-rules model that changes.

One conversation = a customer, an ACD leg per queue and one or more agent legs, each with one
communication of the conversation's media. Rules raise ``ApiError`` so handlers stay thin.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from .errors import ApiError, bad_request
from .org import Queue, WrapupCode

MEDIA = ("call", "callback", "chat", "email", "message")
MEDIA_ARRAY = {
    "call": "calls",
    "callback": "callbacks",
    "chat": "chats",
    "email": "emails",
    "message": "messages",
}
ARRAY_MEDIA = {array: media for media, array in MEDIA_ARRAY.items()}
TIMEOUT_CODE = "ININ-WRAP-UP-TIMEOUT"


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Communication:
    media: str
    id: str = field(default_factory=new_id)
    state: str = "alerting"
    initial_state: str = "alerting"
    held: bool = False
    connected_at: float | None = None
    disconnected_at: float | None = None
    disconnect_type: str | None = None
    acw_state: str | None = None  # pending | complete | skipped
    acw_start: float | None = None
    acw_end: float | None = None


@dataclass
class AppliedWrapup:
    code: str
    name: str
    notes: str | None
    tags: list[str]
    duration_s: int
    end_time: float | None
    by: str  # agent | api | timeout
    provisional: bool = False


@dataclass
class Participant:
    purpose: str  # customer | acd | agent
    name: str
    queue_id: str | None
    comm: Communication
    start: float
    user_id: str | None = None
    id: str = field(default_factory=new_id)
    address: str = ""
    connected_at: float | None = None
    end_at: float | None = None
    wrapup_prompt: str | None = None  # the queue's ACW setting, upper case
    timeout_ms: int | None = None
    wrapup_expected: bool = False
    wrapup_required: bool = False
    acw_start: float | None = None
    acw_end: float | None = None
    wrapup: AppliedWrapup | None = None
    skipped: bool = False
    api_wrapup_calls: int = 0  # every wrap-up write that reached the server (faulted ones too)
    api_wrapup_writes: int = 0  # writes that got past auth, limits and faults to the wrap-up rules
    history: list[tuple[str, str, float]] = field(default_factory=list)  # (by, code id, at)
    answers: bool = True  # False: a leg that alerts and rings out unanswered (not responding)

    @property
    def in_acw(self) -> bool:
        return (
            self.acw_start is not None and self.acw_end is None and self.comm.acw_state == "pending"
        )

    @property
    def outcome_by(self) -> str | None:
        if self.skipped:
            return "skipped"
        if self.wrapup is not None and not self.wrapup.provisional:
            return self.wrapup.by
        return None


@dataclass
class Conversation:
    media: str
    queue_id: str
    start: float
    id: str = field(default_factory=new_id)
    participants: list[Participant] = field(default_factory=list)
    end: float | None = None
    silent: bool = False
    talk_over: bool = False
    waiting: list[Participant] = field(default_factory=list)  # offered after the unanswered legs

    def participant(self, participant_id: str) -> Participant | None:
        return next((p for p in self.participants if p.id == participant_id), None)

    @property
    def agents(self) -> list[Participant]:
        return [p for p in self.participants if p.purpose == "agent"]

    @property
    def answering(self) -> list[Participant]:
        """Agent legs that are (or will be) answered; not-responding legs excluded."""
        return [p for p in self.participants if p.purpose == "agent" and p.answers] + self.waiting

    @property
    def customer(self) -> Participant:
        return self.participants[0]

    def queue_ids(self) -> list[str]:
        seen: list[str] = []
        for p in self.participants:
            if p.queue_id and p.queue_id not in seen:
                seen.append(p.queue_id)
        return seen


# --- lifecycle transitions (used by the traffic engine) -------------------------------------


def connect(p: Participant, now: float) -> None:
    p.connected_at = p.comm.connected_at = now
    p.comm.state = "connected"


def disconnect(p: Participant, now: float, disconnect_type: str) -> None:
    p.end_at = p.comm.disconnected_at = now
    p.comm.state = "disconnected"
    p.comm.disconnect_type = disconnect_type


def ring_out(p: Participant, now: float) -> None:
    """An alerting agent leg nobody answered: it ends without ACW (``wrapupRequired`` false)."""
    disconnect(p, now, "transfer.noanswer")
    p.wrapup_expected = False


def start_acw(p: Participant, now: float) -> None:
    """An answered agent leg ended: ACW opens (pending) with the queue's prompt."""
    p.wrapup_required = True
    p.acw_start = p.comm.acw_start = now
    p.comm.acw_state = "pending"


def _end_acw(p: Participant, now: float, state: str) -> None:
    p.acw_end = p.comm.acw_end = now
    p.comm.acw_state = state


def apply_code(
    p: Participant, code: WrapupCode | str, now: float, by: str, notes: str | None = None
) -> None:
    code_id, name = (code, code) if isinstance(code, str) else (code.id, code.name)
    duration = round(now - (p.acw_start or now))
    p.wrapup = AppliedWrapup(code_id, name, notes, [], duration, now, by)
    p.history.append((by, code_id, now))
    _end_acw(p, now, "complete")


def overwrite_code(p: Participant, code: WrapupCode, now: float, notes: str | None) -> None:
    """``overwrite_allowed``: an API code after ACW ended replaces the last one (last write wins).

    ACW's end stays where it was; the write is recorded in ``history`` like any other.
    """
    ended_at = p.acw_end or now
    duration = round(ended_at - (p.acw_start or ended_at))
    p.wrapup = AppliedWrapup(code.id, code.name, notes, [], duration, ended_at, "api")
    p.skipped = False
    p.history.append(("api", code.id, now))
    if p.comm.acw_state == "skipped":
        p.comm.acw_state = "complete"


def store_provisional(p: Participant, code: WrapupCode, notes: str | None) -> None:
    p.wrapup = AppliedWrapup(code.id, code.name, notes, [], 0, None, "api", provisional=True)


def skip(p: Participant, now: float) -> None:
    p.skipped = True
    _end_acw(p, now, "skipped")


def stamp_timeout(p: Participant, now: float) -> None:
    apply_code(p, TIMEOUT_CODE, now, by="timeout")


def end_acw_without_code(p: Participant, now: float) -> None:
    """Control-plane ``end_acw``: ACW closes as the platform would for an agent who logs off."""
    _end_acw(p, now, "complete")


def conversation_finished(conv: Conversation) -> bool:
    """The conversation ends when talk is over and the last agent finished ACW."""
    return conv.talk_over and not any(p.in_acw for p in conv.agents)


# --- the wrap-up rules (REST) ---------------------------------------------------------------


def check_wrapup_target(p: Participant, overwrite_allowed: bool = False) -> None:
    """Only an agent participant, in ACW, not yet coded, can be wrapped up.

    With ``overwrite_allowed`` any agent participant whose ACW started may be (re)coded.
    """
    if p.purpose != "agent" or p.user_id is None:
        raise bad_request(f"Participant {p.id} is not a user participant and cannot be wrapped up.")
    if p.acw_start is None:
        raise bad_request(f"Participant {p.id} is not in after-call work.")
    if not p.in_acw and not overwrite_allowed:
        raise bad_request(
            f"Participant {p.id} has already completed after-call work; wrap-up can no longer "
            "be changed."
        )


def resolve_code(queue: Queue, codes: list[WrapupCode], code_ref: object) -> WrapupCode:
    if not isinstance(code_ref, str) or not code_ref:
        raise bad_request("A wrap-up code is required: wrapup.code must be a wrap-up code id.")
    found = next((c for c in codes if c.id == code_ref), None)
    if found is None:
        raise ApiError(
            400,
            "bad.request",
            f"Wrap-up code {code_ref} is not assigned to queue {queue.id}.",
            {"codeId": code_ref, "queueId": queue.id},
        )
    return found
