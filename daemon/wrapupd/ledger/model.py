"""The ledger's own value types: what it answers besides :class:`wrapupd.events.WorkItem`."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime

from wrapupd.events import ItemState, Outcome, WorkItem

Key = tuple[str, str]

# Outcomes after which a later sighting of the participant still in ACW without a code reopens the
# item: nothing of ours is on the participant. APPLIED (our code landed), ALREADY_CODED (someone
# chose) and DRY_RUN (by design nothing is written) stay finished.
REOPENABLE = frozenset({Outcome.FAILED, Outcome.TOO_LATE, Outcome.FORBIDDEN, Outcome.INVALID_CODE})
# What an operator may put back to pending with ``redrive``: the above, and dry-run items once
# dry_run is off. The daemon checks the participant's state by GET before any write.
REDRIVABLE = REOPENABLE | {Outcome.DRY_RUN}
# One record per code applied (or, with dry_run, that would have been): the audit export.
EXPORTED = (Outcome.APPLIED, Outcome.DRY_RUN)

EXPORT_COLUMNS = (
    "conversation_id",
    "participant_id",
    "queue_id",
    "queue_name",
    "user_id",
    "code_id",
    "code_name",
    "acw_started_at",
    "applied_at",
    "latency_ms",
    "outcome",
    "dry_run",
)


@dataclass(frozen=True, slots=True)
class QueueActivity:
    """One queue's work in the ledger, for the status page."""

    pending: int
    applied_since: int
    last_applied_at: datetime | None


class Known(enum.IntEnum):
    """What this process knows of a participant, without reading the disk."""

    OPEN = 0  # pending or writing
    SUCCEEDED = 1  # finished for good (applied, coded by someone, dry run)
    REOPENABLE = 2  # finished without our code on it: a new sighting in ACW reopens it

    @classmethod
    def after(cls, outcome: Outcome) -> Known:
        """The index state an item takes when it ends with ``outcome``."""
        return cls.REOPENABLE if outcome in REOPENABLE else cls.SUCCEEDED


class Claim(enum.StrEnum):
    """The answer to a lease request on one work item."""

    MINE = "mine"  # granted: free, or already ours
    TAKEN_OVER = "taken_over"  # granted: another replica's lease expired; re-check by GET first
    HELD = "held"  # another replica holds a live lease: do not write
    FINISHED = "finished"  # the item already has an outcome
    UNKNOWN = "unknown"  # no such item

    @property
    def granted(self) -> bool:
        """True when the caller now holds the lease and may write (after its state check)."""
        return self in (Claim.MINE, Claim.TAKEN_OVER)


@dataclass(frozen=True, slots=True)
class LeaseAnswer:
    """A lease request's :class:`Claim`, and until when the other replica holds it (``HELD``)."""

    claim: Claim
    held_until: datetime | None = None


class HistoryKind(enum.StrEnum):
    """One line of an item's history (``wrapupd ledger show``)."""

    SEEN = "seen"  # a replica took the participant on (``add_pending``)
    CHECK = "check"  # a state check and what it found (noted by the applier)
    WRITE = "write"  # the durable mark before a PATCH
    RETRY = "retry"  # back to pending after a retryable failure
    OUTCOME = "outcome"  # finished, with the reason
    REOPEN = "reopen"  # seen again in ACW without a code after a finish that left none
    REDRIVE = "redrive"  # an operator put it back to pending
    LEASE = "lease"  # a replica took (or took over) the item's lease


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One dated line of an item's history, so an operator can see why it ended as it did."""

    at: datetime
    kind: HistoryKind
    detail: str | None = None
    attempt: int | None = None
    code_id: str | None = None
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """A work item with what the operator's tools show beside it."""

    item: WorkItem
    queue_name: str | None = None
    user_id: str | None = None
    code_name: str | None = None
    created_at: datetime | None = None
    finished_at: datetime | None = None
    latency_ms: int | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    created_by: str | None = None

    @property
    def status(self) -> str:
        """The outcome when finished, else the state: what ``wrapupd ledger list`` shows."""
        item = self.item
        if item.state is ItemState.DONE and item.outcome is not None:
            return item.outcome.value
        return item.state.value


@dataclass(frozen=True, slots=True)
class ItemHistory:
    """A work item with its history, oldest first: what ``wrapupd ledger show`` prints."""

    row: LedgerRow
    events: tuple[HistoryEntry, ...]


@dataclass(frozen=True, slots=True)
class ExportRecord:
    """One applied code for reporting, in :data:`EXPORT_COLUMNS` order."""

    conversation_id: str
    participant_id: str
    queue_id: str
    queue_name: str | None
    user_id: str | None
    code_id: str | None
    code_name: str | None
    acw_started_at: datetime
    applied_at: datetime | None
    latency_ms: int | None
    outcome: Outcome
    dry_run: bool

    def values(self) -> tuple[object, ...]:
        """The fields in :data:`EXPORT_COLUMNS` order."""
        return tuple(getattr(self, name) for name in EXPORT_COLUMNS)


@dataclass(frozen=True, slots=True)
class Replica:
    """A live replica as its heartbeat row shows it."""

    owner: str
    started_at: datetime
    last_seen: datetime
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class LedgerHealth:
    """Whether the ledger's storage takes writes now; what the readiness check shows."""

    available: bool
    detail: str
    queued: int  # writes waiting in memory for the disk
    unavailable_for_s: float | None = None  # real seconds since the storage began to fail


def iso(moment: datetime) -> str:
    """Fixed-width ISO UTC text, so that string comparison orders by time (SQLite, exports)."""
    if moment.tzinfo is not UTC:
        refuse_naive(moment)
        moment = moment.astimezone(UTC)
    # What isoformat(timespec="microseconds") gives, in two-thirds of its time (four per new item).
    return _ISO_UTC % (
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
        moment.microsecond,
    )


_ISO_UTC = "%04d-%02d-%02dT%02d:%02d:%02d.%06d+00:00"


def refuse_naive(moment: datetime) -> None:
    """ValueError for a time without a zone: the ledger stores UTC and cannot guess."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            f"naive datetime {moment!r}: the ledger stores UTC, pass an aware datetime"
        )


def as_datetime(value: object) -> datetime | None:
    """A stored time back as an aware UTC datetime (SQLite keeps text, PostgreSQL timestamptz)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value))
