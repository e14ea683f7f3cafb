"""Reading stored rows back into the ledger's types (both backends)."""

from __future__ import annotations

from datetime import datetime

from wrapupd.events import ItemState, Outcome, WorkItem
from wrapupd.ledger.backend import Row
from wrapupd.ledger.model import HistoryEntry, HistoryKind, LedgerRow, Replica, as_datetime

ITEM_COLUMNS = (
    "conversation_id, participant_id, queue_id, acw_started_at, due_at, deadline, state,"
    " attempts, outcome, code_id, detail, media_type, updated_at, queue_name, user_id, code_name,"
    " created_at, finished_at, latency_ms, lease_owner, lease_expires_at, created_by"
)
EVENT_COLUMNS = "at, kind, detail, attempt, code_id, owner"
REPLICA_COLUMNS = "owner, started_at, last_seen, detail"
KEY_WHERE = "conversation_id = ? AND participant_id = ?"


def _required(value: object) -> datetime:
    moment = as_datetime(value)
    assert moment is not None  # a NOT NULL column
    return moment


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _int(value: object) -> int | None:
    return None if value is None else int(str(value))


def item_from(row: Row) -> WorkItem:
    """The first 13 columns of :data:`ITEM_COLUMNS` as a work item."""
    return WorkItem(
        conversation_id=str(row[0]),
        participant_id=str(row[1]),
        queue_id=str(row[2]),
        acw_started_at=_required(row[3]),
        due_at=_required(row[4]),
        deadline=as_datetime(row[5]),
        state=ItemState(str(row[6])),
        attempts=int(str(row[7])),
        outcome=None if row[8] is None else Outcome(str(row[8])),
        code_id=_text(row[9]),
        detail=_text(row[10]),
        media_type=_text(row[11]),
        updated_at=as_datetime(row[12]),
    )


def ledger_row_from(row: Row) -> LedgerRow:
    """Every column of :data:`ITEM_COLUMNS`."""
    return LedgerRow(
        item=item_from(row),
        queue_name=_text(row[13]),
        user_id=_text(row[14]),
        code_name=_text(row[15]),
        created_at=as_datetime(row[16]),
        finished_at=as_datetime(row[17]),
        latency_ms=_int(row[18]),
        lease_owner=_text(row[19]),
        lease_expires_at=as_datetime(row[20]),
        created_by=_text(row[21]),
    )


def event_from(row: Row) -> HistoryEntry:
    """A row of :data:`EVENT_COLUMNS`."""
    return HistoryEntry(
        at=_required(row[0]),
        kind=HistoryKind(str(row[1])),
        detail=_text(row[2]),
        attempt=_int(row[3]),
        code_id=_text(row[4]),
        owner=_text(row[5]),
    )


def replica_from(row: Row) -> Replica:
    """A row of :data:`REPLICA_COLUMNS`."""
    return Replica(
        owner=str(row[0]),
        started_at=_required(row[1]),
        last_seen=_required(row[2]),
        detail=_text(row[3]),
    )
