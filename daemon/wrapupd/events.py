"""wrapupd's own frozen value types.

The Genesys adapter converts everything the platform sends (REST models, WebSocket frames) into
these, so no other module ever sees an SDK model or a raw payload.

The types built once per frame or per participant (snapshots, participants, communications,
conversation events, decisions) are frozen ``msgspec`` structs rather than dataclasses: the same
immutable values (equality, hashing, ``match``), built in C at a seventh of a frozen dataclass's
cost, which on the frame path was most of the work once the JSON was decoded. They hold no
reference cycles, so the garbage collector does not track them (``gc=False``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

# --- what the operator configured ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueuePolicy:
    """One queue's policy as configured (``[defaults]`` merged in): the one type that travels from
    the settings through the code cache to the applier's schedule."""

    queue: str  # name or id, as written ("" for a selector)
    default_code: str  # name or id, as written
    grace_seconds: float
    timeout_margin_seconds: float
    notes: str | None
    match: str | None = None  # selector: a case-insensitive glob on queue names
    division: str | None = None  # selector: every queue of this division (name or id)
    all_queues: bool = False  # selector: every queue the client can see

    @property
    def is_selector(self) -> bool:
        """This entry selects queues (match, division, all) rather than naming one."""
        return bool(self.match or self.division or self.all_queues)


# --- the platform's objects, as far as wrapupd needs them -------------------------------------


@dataclass(frozen=True, slots=True)
class WrapupCode:
    """A wrap-up code: its id (what a write carries) and its name (what people read)."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Queue:
    """A queue and its after-call-work settings."""

    id: str
    name: str
    # acwSettings.wrapupPrompt as the REST API spells it: MANDATORY, OPTIONAL, MANDATORY_TIMEOUT,
    # MANDATORY_FORCED_TIMEOUT, AGENT_REQUESTED (or None when the platform omits it).
    wrapup_prompt: str | None = None
    acw_timeout_ms: int | None = None
    division_id: str | None = None
    division_name: str | None = None

    @property
    def time_boxed(self) -> bool:
        """ACW ends on its own after ``acw_timeout_ms`` (and the platform stamps its timeout code)."""
        return self.wrapup_prompt in ("MANDATORY_TIMEOUT", "MANDATORY_FORCED_TIMEOUT")


@dataclass(frozen=True, slots=True)
class Channel:
    """A notification channel. Its id and connectUri are credentials: never in a repr."""

    id: str = field(repr=False)
    connect_uri: str = field(repr=False)
    expires: datetime | None


@dataclass(frozen=True, slots=True)
class TopicResult:
    """One topic of a subscription answer (``ignoreErrors=true`` marks each Permitted/Rejected)."""

    topic: str
    permitted: bool
    rejection_reason: str | None = None
    missing_permissions: tuple[str, ...] = ()


# --- conversation snapshots --------------------------------------------------------------------


class Communication(msgspec.Struct, frozen=True, gc=False):
    """One medium of a participant (a call, a chat, ...) with its own after-call-work state."""

    id: str
    media_type: str  # call, callback, chat, email, message, ...
    state: str | None
    acw_state: (
        str | None
    )  # afterCallWork.state: pending | complete | skipped | notApplicable | unknown
    wrapup_code: str | None  # communication-level wrapup.code, if any


class Participant(msgspec.Struct, frozen=True, gc=False):
    """One participant of a conversation, as far as wrap-up is concerned."""

    id: str
    purpose: str | None
    user_id: str | None
    queue_id: str | None
    start_acw_time: datetime | None
    end_acw_time: datetime | None
    wrapup_code: str | None  # participant-level wrapup.code (id, or ININ-* literal, or a name)
    wrapup_prompt: str | None = None  # lowercase in events: mandatory, optional, timeout, ...
    wrapup_timeout_ms: int | None = None
    communications: tuple[Communication, ...] = ()

    @property
    def media_type(self) -> str | None:
        """The first communication's medium (call, chat, email, ...), if any."""
        return self.communications[0].media_type if self.communications else None


class ConversationSnapshot(msgspec.Struct, frozen=True, gc=False):
    """A conversation at one moment. Every event and every GET carries all of it; a snapshot read
    from an event (a ``v2.routing.queues.{id}.conversations`` frame) keeps only the agent legs that
    entered ACW, the only ones a decision reads, and one read by ``GET /api/v2/conversations/{id}``
    keeps every participant."""

    id: str
    participants: tuple[Participant, ...]


# --- notification frames -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """``channel.metadata`` "WebSocket Heartbeat" (or a pong, which proves the same: alive)."""

    pong: bool = False


@dataclass(frozen=True, slots=True)
class SocketClosing:
    """``v2.system.socket_closing``: the service will close this socket soon; reconnect first."""


@dataclass(frozen=True, slots=True)
class ChannelEnded:
    """``v2.system.no_longer_subscribed.*`` or ``v2.system.token_revoked.*``: this channel is done."""

    topic: str
    reason: str | None = None


class ConversationEvent(msgspec.Struct, frozen=True, gc=False):
    """A ``v2.routing.queues.{id}.conversations`` frame: the queue's topic and the snapshot."""

    topic: str
    queue_id: str
    conversation: ConversationSnapshot


@dataclass(frozen=True, slots=True)
class UnknownFrame:
    """A frame wrapupd does not act on (unknown topic) or cannot read (malformed): counted, logged."""

    topic: str | None
    problem: str  # "unknown_topic" | "malformed_json" | "bad_envelope" | "bad_conversation"
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ControlFrame:
    """An in-socket answer without a topic: ``{"result": "404", "message": …}`` when the channel
    is gone (expired, replaced, its token expired), ``{"result": "200", "status": "subscribed"}``
    acknowledging a subscribe, ``{"result": "400", …}`` refusing one."""

    result: int
    status: str | None = None
    message: str | None = None

    @property
    def channel_gone(self) -> bool:
        """The channel no longer exists: replace it now, and reconcile the gap."""
        return self.result == 404

    @property
    def acknowledged(self) -> bool:
        """A subscribe or unsubscribe the platform accepted."""
        return 200 <= self.result < 300


Frame = Heartbeat | SocketClosing | ChannelEnded | ConversationEvent | ControlFrame | UnknownFrame


# --- detector decisions and the work they create ---------------------------------------------


class NeedsDefault(msgspec.Struct, frozen=True, gc=False):
    """An agent participant on a watched queue sits in ACW with no code."""

    conversation_id: str
    participant_id: str
    queue_id: str
    acw_started_at: datetime
    media_type: str | None = None
    user_id: str | None = None
    # The snapshot shows no readable ACW state (no ``afterCallWork``, ``unknown``, an enum value the
    # SDK does not know): only a state check can tell, and such a sighting never reopens an item.
    uncertain: bool = False
    wrapup_timeout_ms: int | None = None  # the participant's own ACW timeout, when it has one
    wrapup_prompt: str | None = None  # the participant's own prompt (lowercase, as in events)


class ResolvedReason(enum.StrEnum):
    """Why a participant no longer needs a default code."""

    CODED = "coded"  # a code appeared (the agent's, or a system ININ-* code)
    ACW_ENDED = "acw_ended"  # endAcwTime set, or afterCallWork complete/skipped, without a code


class NoLongerNeeded(msgspec.Struct, frozen=True, gc=False):
    """A participant we may be waiting on no longer needs a default."""

    conversation_id: str
    participant_id: str
    reason: ResolvedReason
    code: str | None = None


Decision = NeedsDefault | NoLongerNeeded


class Outcome(enum.StrEnum):
    """How a work item ended (recorded in the ledger, counted in metrics)."""

    APPLIED = "applied"
    ALREADY_CODED = "already_coded"
    TOO_LATE = "too_late"
    INVALID_CODE = "invalid_code"
    FORBIDDEN = "forbidden"
    FAILED = "failed"
    DRY_RUN = "dry_run"


class ItemState(enum.StrEnum):
    """Where a work item stands in the ledger."""

    PENDING = "pending"  # waiting for its due time
    WRITING = "writing"  # a PATCH may be in flight: re-check by GET before any second write
    DONE = "done"  # has an outcome


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One participant that needs (or needed) a default code: the ledger's row."""

    conversation_id: str
    participant_id: str
    queue_id: str
    acw_started_at: datetime
    due_at: datetime
    deadline: datetime | None  # on time-boxed queues: the platform's timeout less the margin
    state: ItemState = ItemState.PENDING
    attempts: int = 0
    outcome: Outcome | None = None
    code_id: str | None = None
    detail: str | None = None
    media_type: str | None = None
    updated_at: datetime | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        """(conversation id, participant id): one item per participant, ever."""
        return (self.conversation_id, self.participant_id)
