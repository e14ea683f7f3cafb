"""The ledger as the operator reads it: list, show, redrive, export (both backends).

These run on their own connection (a SQLite WAL reader, a pooled PostgreSQL connection), so
``wrapupd ledger ...`` is safe beside a running daemon: reads never wait on its writer and see only
what is committed, i.e. on disk. ``redrive`` is the one write: one transaction that puts finished
items back to pending and flags them; the daemon picks flagged items up
(:meth:`wrapupd.ledger.Ledger.take_redriven`) and checks each participant by GET before any write.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from wrapupd.clock import Clock
from wrapupd.events import ItemState, Outcome, WorkItem
from wrapupd.ledger.backend import Backend, Params, Session
from wrapupd.ledger.model import (
    EXPORTED,
    REDRIVABLE,
    ExportRecord,
    HistoryEntry,
    HistoryKind,
    ItemHistory,
    LedgerRow,
    QueueActivity,
    as_datetime,
)
from wrapupd.ledger.ops import INSERT_EVENT, event_row
from wrapupd.ledger.rows import (
    EVENT_COLUMNS,
    ITEM_COLUMNS,
    KEY_WHERE,
    event_from,
    item_from,
    ledger_row_from,
)

# The words ``wrapupd ledger list --state`` takes beside the outcomes' own.
STATE_ALIASES = {"agent_coded": Outcome.ALREADY_CODED.value}
_EXPORTED_SQL = ", ".join(f"'{outcome.value}'" for outcome in EXPORTED)


def state_choices() -> list[str]:
    """Every value ``--state`` accepts."""
    return [s.value for s in ItemState] + [o.value for o in Outcome] + sorted(STATE_ALIASES)


def _state_filter(state: str) -> tuple[str, Params]:
    word = STATE_ALIASES.get(state, state)
    if word in {s.value for s in ItemState}:
        return "state = ?", (word,)
    if word in {o.value for o in Outcome}:
        return "state = 'done' AND outcome = ?", (word,)
    raise ValueError(f"unknown state {state!r}: one of {', '.join(state_choices())}")


def _queue_filter(queue: str) -> tuple[str, Params]:
    return "(queue_id = ? OR lower(queue_name) = lower(?))", (queue, queue)


class LedgerQueries:
    """Reads (and the operator's redrive) on a ledger; see the module docstring."""

    def __init__(self, backend: Backend, *, clock: Clock, owner: str) -> None:
        self._backend = backend
        self._clock = clock
        self._owner = owner

    def close(self) -> None:
        """Release the connections (tools only: the daemon's :class:`Ledger` closes its own)."""
        self._backend.close()

    def get(self, key: tuple[str, str]) -> WorkItem | None:
        """The item as committed, or None."""
        with self._backend.reading() as s, self._backend.errors("get"):
            row = s.one(f"SELECT {ITEM_COLUMNS} FROM work_items WHERE {KEY_WHERE}", key)
        return None if row is None else item_from(row)

    def unfinished(self) -> list[WorkItem]:
        """PENDING and WRITING items, soonest due first: what a restart must resume."""
        with self._backend.reading() as s, self._backend.errors("unfinished"):
            rows = s.all(
                f"SELECT {ITEM_COLUMNS} FROM work_items WHERE state != 'done'"
                " ORDER BY due_at, conversation_id, participant_id"
            )
        return [item_from(row) for row in rows]

    def outcome_counts(self) -> dict[Outcome, int]:
        """How many finished items ended each way (every outcome present, zero when none)."""
        counts = dict.fromkeys(Outcome, 0)
        with self._backend.reading() as s, self._backend.errors("outcome_counts"):
            rows = s.all(
                "SELECT outcome, count(*) FROM work_items WHERE state = 'done' GROUP BY outcome"
            )
        for outcome, count in rows:
            counts[Outcome(str(outcome))] = int(str(count))
        return counts

    def queue_activity(self, applied_since: datetime) -> dict[str, QueueActivity]:
        """Per queue id: unfinished items, codes applied since ``applied_since``, the last one's time."""
        with self._backend.reading() as s, self._backend.errors("queue_activity"):
            rows = s.all(
                "SELECT queue_id,"
                " sum(CASE WHEN state != 'done' THEN 1 ELSE 0 END),"
                " sum(CASE WHEN outcome = 'applied' AND finished_at >= ? THEN 1 ELSE 0 END),"
                " max(CASE WHEN outcome = 'applied' THEN finished_at END)"
                " FROM work_items GROUP BY queue_id",
                (s.ts(applied_since),),
            )
        return {
            str(queue): QueueActivity(int(str(pending)), int(str(applied)), as_datetime(last))
            for queue, pending, applied, last in rows
        }

    def list_items(
        self,
        *,
        state: str | None = None,
        queue: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[LedgerRow]:
        """Items by state or outcome, queue (id or name) and last change, newest change first."""
        with self._backend.reading() as s, self._backend.errors("list"):
            where, params = _where(s, state, queue, since)
            rows = s.all(
                f"SELECT {ITEM_COLUMNS} FROM work_items WHERE {where}"
                " ORDER BY updated_at DESC, conversation_id, participant_id LIMIT ?",
                (*params, max(0, limit)),
            )
        return [ledger_row_from(row) for row in rows]

    def show(self, conversation_id: str, participant_id: str | None = None) -> list[ItemHistory]:
        """Each matching item with its whole history, oldest event first."""
        where, params = "conversation_id = ?", [conversation_id]
        if participant_id is not None:
            where, params = KEY_WHERE, [conversation_id, participant_id]
        with self._backend.reading() as s, self._backend.errors("show"):
            rows = s.all(f"SELECT {ITEM_COLUMNS} FROM work_items WHERE {where} ORDER BY 2", params)
            found = []
            for row in map(ledger_row_from, rows):
                events = s.all(
                    f"SELECT {EVENT_COLUMNS} FROM item_events WHERE {KEY_WHERE} ORDER BY id",
                    row.item.key,
                )
                found.append(ItemHistory(row, (_seen(row), *map(event_from, events))))
        return found

    def redrive(
        self, *, state: str = Outcome.FAILED.value, queue: str | None = None, dry_run: bool = False
    ) -> list[LedgerRow]:
        """Put finished items ending ``state`` back to pending; the rows as they were."""
        outcome = Outcome(STATE_ALIASES.get(state, state))
        if outcome not in REDRIVABLE:
            allowed = ", ".join(sorted(o.value for o in REDRIVABLE))
            raise ValueError(f"cannot redrive {state!r} items: one of {allowed}")
        now = self._clock.now()
        with self._backend.transaction() as s, self._backend.errors("redrive"):
            where, params = _where(s, outcome.value, queue, None)
            rows = [
                ledger_row_from(row)
                for row in s.all(
                    f"SELECT {ITEM_COLUMNS} FROM work_items WHERE {where}"
                    f" ORDER BY updated_at, conversation_id, participant_id{s.for_update}",
                    params,
                )
            ]
            if not dry_run and rows:
                keys = [row.item.key for row in rows]
                s.run_many(
                    "UPDATE work_items SET state = 'pending', outcome = NULL, attempts = 0,"
                    " due_at = ?, finished_at = NULL, updated_at = ?, redriven = 1,"
                    f" lease_owner = NULL, lease_expires_at = NULL WHERE {KEY_WHERE}",
                    [(s.ts(now), s.ts(now), *key) for key in keys],
                )
                detail = f"by an operator, after {outcome.value}"
                s.run_many(
                    INSERT_EVENT,
                    [
                        event_row(s, k, now, HistoryKind.REDRIVE, detail=detail, owner=self._owner)
                        for k in keys
                    ],
                )
        return rows

    def export(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[ExportRecord]:
        """One record per applied (or dry-run) code, by time applied, then conversation."""
        with self._backend.reading() as s, self._backend.errors("export"):
            clauses, params = [f"state = 'done' AND outcome IN ({_EXPORTED_SQL})"], []
            if since is not None:
                clauses.append("finished_at >= ?")
                params.append(s.ts(since))
            if until is not None:
                clauses.append("finished_at < ?")
                params.append(s.ts(until))
            sql = (
                f"SELECT {ITEM_COLUMNS} FROM work_items WHERE {' AND '.join(clauses)}"
                " ORDER BY finished_at, conversation_id, participant_id"
            )
            for row in s.stream(sql, tuple(params)):
                yield _export_record(ledger_row_from(row))


def _where(
    s: Session, state: str | None, queue: str | None, since: datetime | None
) -> tuple[str, tuple[object, ...]]:
    """The WHERE clause of ``list`` and ``redrive``."""
    clauses, params = ["1 = 1"], list[object]()
    if state is not None:
        clause, values = _state_filter(state)
        clauses.append(clause)
        params.extend(values)
    if queue is not None:
        clause, values = _queue_filter(queue)
        clauses.append(clause)
        params.extend(values)
    if since is not None:
        clauses.append("updated_at >= ?")
        params.append(s.ts(since))
    return " AND ".join(clauses), tuple(params)


def _seen(row: LedgerRow) -> HistoryEntry:
    """The first line of every history: when and by whom the item was taken on."""
    item = row.item
    return HistoryEntry(
        at=row.created_at or item.acw_started_at,
        kind=HistoryKind.SEEN,
        detail=f"in ACW without a code on {row.queue_name or item.queue_id}",
        owner=row.created_by,
    )


def _export_record(row: LedgerRow) -> ExportRecord:
    item = row.item
    assert item.outcome is not None  # only finished items are exported
    return ExportRecord(
        conversation_id=item.conversation_id,
        participant_id=item.participant_id,
        queue_id=item.queue_id,
        queue_name=row.queue_name,
        user_id=row.user_id,
        code_id=item.code_id,
        code_name=row.code_name,
        acw_started_at=item.acw_started_at,
        applied_at=row.finished_at,
        latency_ms=row.latency_ms,
        outcome=item.outcome,
        dry_run=item.outcome is Outcome.DRY_RUN,
    )
