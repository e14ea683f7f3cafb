"""The ledger's writes as SQL, run by the writer thread inside one batch transaction.

Every write is guarded in SQL by the state it expects (the first outcome wins, nothing moves a
finished item but a reopen or a redrive), so replicas sharing a PostgreSQL ledger cannot undo each
other. Each transition that matters to an operator adds a row to ``item_events``, the item's
history. Consecutive new items (and history notes) are inserted with one ``executemany``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from wrapupd.events import Outcome
from wrapupd.ledger.backend import Session
from wrapupd.ledger.model import REOPENABLE, Claim, HistoryKind, Key, as_datetime
from wrapupd.ledger.rows import ITEM_COLUMNS, KEY_WHERE, REPLICA_COLUMNS, item_from, replica_from
from wrapupd.ledger.writer import Op

INSERT_ITEM = (
    "INSERT INTO work_items (conversation_id, participant_id, queue_id, queue_name, user_id,"
    " acw_started_at, due_at, deadline, state, attempts, code_id, detail, media_type, created_at,"
    " created_by, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (conversation_id, participant_id) DO NOTHING"
)
INSERT_EVENT = (
    "INSERT INTO item_events (conversation_id, participant_id, at, kind, detail, attempt,"
    " code_id, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_REOPENABLE_SQL = ", ".join(f"'{outcome.value}'" for outcome in sorted(REOPENABLE))
_NOT_DONE = f"{KEY_WHERE} AND state != 'done'"


def event_row(
    s: Session, key: Key, at: datetime, kind: HistoryKind, **extra: Any
) -> tuple[Any, ...]:
    """Parameters of :data:`INSERT_EVENT`."""
    return (
        *key,
        s.ts(at),
        kind.value,
        extra.get("detail"),
        extra.get("attempt"),
        extra.get("code_id"),
        extra.get("owner"),
    )


def _add_many(s: Session, batch: list[tuple[Any, ...]]) -> None:
    """New items; their first history line is read from ``created_at``/``created_by``."""
    rows = []
    ts = s.ts
    for item, queue_name, user_id, now, owner in batch:
        stamp = ts(now)
        rows.append(
            (
                item.conversation_id,
                item.participant_id,
                item.queue_id,
                queue_name,
                user_id,
                ts(item.acw_started_at),
                ts(item.due_at),
                None if item.deadline is None else ts(item.deadline),
                item.attempts,
                item.code_id,
                item.detail,
                item.media_type,
                stamp,
                owner,
                stamp,
            )
        )
    s.run_many(INSERT_ITEM, rows)


def _note_many(s: Session, batch: list[tuple[Any, ...]]) -> None:
    s.run_many(
        INSERT_EVENT, [event_row(s, key, at, kind, **extra) for key, at, kind, extra in batch]
    )


def _changed(s: Session, sql: str, params: tuple[Any, ...], event: tuple[Any, ...] | None) -> bool:
    """Run one guarded UPDATE; note ``event`` in the history when it changed the row."""
    changed = s.run(sql, params) == 1
    if changed and event is not None:
        s.run(INSERT_EVENT, event)
    return changed


def _mark_writing(
    s: Session, key: Key, attempt: int, code_id: str, now: datetime, owner: str, leased: bool
) -> bool:
    sql = f"UPDATE work_items SET state = 'writing', attempts = ?, code_id = ?, updated_at = ? WHERE {_NOT_DONE}"
    params: tuple[Any, ...] = (attempt, code_id, s.ts(now), *key)
    if leased:
        sql += " AND lease_owner = ? AND lease_expires_at > ?"
        params += (owner, s.ts(now))
    event = event_row(s, key, now, HistoryKind.WRITE, attempt=attempt, code_id=code_id, owner=owner)
    return _changed(s, sql, params, event)


def _back_to_pending(
    s: Session, key: Key, due_at: datetime, detail: str | None, now: datetime, owner: str
) -> bool:
    sql = f"UPDATE work_items SET state = 'pending', due_at = ?, detail = ?, updated_at = ? WHERE {_NOT_DONE}"
    event = event_row(s, key, now, HistoryKind.RETRY, detail=detail, owner=owner)
    return _changed(s, sql, (s.ts(due_at), detail, s.ts(now), *key), event)


def _reschedule(
    s: Session, key: Key, due_at: datetime, detail: str | None, now: datetime, owner: str
) -> bool:
    sql = (
        f"UPDATE work_items SET due_at = ?, updated_at = ? WHERE {KEY_WHERE} AND state = 'pending'"
    )
    event = (
        None
        if detail is None
        else event_row(s, key, now, HistoryKind.RETRY, detail=detail, owner=owner)
    )
    return _changed(s, sql, (s.ts(due_at), s.ts(now), *key), event)


def _record_outcome(
    s: Session,
    key: Key,
    outcome: Outcome,
    detail: str | None,
    code_id: str | None,
    extra: dict[str, Any],
    now: datetime,
    owner: str,
) -> bool:
    sql = (
        "UPDATE work_items SET state = 'done', outcome = ?, detail = ?, code_id = coalesce(?, code_id),"
        " code_name = coalesce(?, code_name), latency_ms = ?, finished_at = ?, updated_at = ?,"
        f" lease_owner = NULL, lease_expires_at = NULL, redriven = 0 WHERE {_NOT_DONE}"
    )
    code_name, latency_ms = extra.get("code_name"), extra.get("latency_ms")
    params = (outcome.value, detail, code_id, code_name, latency_ms, s.ts(now), s.ts(now), *key)
    text = f"{outcome.value}: {detail}" if detail else outcome.value
    event = event_row(s, key, now, HistoryKind.OUTCOME, detail=text, code_id=code_id, owner=owner)
    return _changed(s, sql, params, event)


def _reopen(s: Session, key: Key, due_at: datetime, detail: str, now: datetime, owner: str) -> bool:
    sql = (
        "UPDATE work_items SET state = 'pending', outcome = NULL, attempts = 0, due_at = ?,"
        " detail = ?, finished_at = NULL, updated_at = ?, lease_owner = NULL,"
        f" lease_expires_at = NULL WHERE {KEY_WHERE} AND state = 'done'"
        f" AND outcome IN ({_REOPENABLE_SQL})"
    )
    event = event_row(s, key, now, HistoryKind.REOPEN, detail=detail, owner=owner)
    return _changed(s, sql, (s.ts(due_at), detail, s.ts(now), *key), event)


def _purge(s: Session, older_than: datetime) -> list[Key]:
    rows = s.all(
        "DELETE FROM work_items WHERE state = 'done' AND updated_at < ?"
        " RETURNING conversation_id, participant_id",
        (s.ts(older_than),),
    )
    keys = [(str(c), str(p)) for c, p in rows]
    s.run_many(f"DELETE FROM item_events WHERE {KEY_WHERE}", keys)
    return keys


def _claim(
    s: Session, key: Key, owner: str, expires: datetime, now: datetime
) -> tuple[Claim, Outcome | None, datetime | None]:
    """The answer, the outcome when the item is finished (the caller's index learns it), and the
    holder's lease end when another replica holds it."""
    row = s.one(
        f"SELECT state, outcome, lease_owner, lease_expires_at FROM work_items"
        f" WHERE {KEY_WHERE}{s.for_update}",
        key,
    )
    if row is None:
        return Claim.UNKNOWN, None, None
    state, outcome, holder, until = row
    if state == "done":
        return Claim.FINISHED, None if outcome is None else Outcome(str(outcome)), None
    other = holder is not None and holder != owner
    held_until = as_datetime(until) or now
    if other and held_until > now:
        return Claim.HELD, None, held_until
    s.run(
        f"UPDATE work_items SET lease_owner = ?, lease_expires_at = ? WHERE {KEY_WHERE}",
        (owner, s.ts(expires), *key),
    )
    if holder != owner:
        detail = f"taken over from {holder} (lease expired)" if other else "taken"
        s.run(INSERT_EVENT, event_row(s, key, now, HistoryKind.LEASE, detail=detail, owner=owner))
    return (Claim.TAKEN_OVER if other else Claim.MINE), None, None


def _renew(s: Session, key: Key, owner: str, expires: datetime) -> bool:
    sql = f"UPDATE work_items SET lease_expires_at = ? WHERE {_NOT_DONE} AND lease_owner = ?"
    return s.run(sql, (s.ts(expires), *key, owner)) == 1


def _release(s: Session, key: Key, owner: str) -> bool:
    sql = f"UPDATE work_items SET lease_owner = NULL, lease_expires_at = NULL WHERE {KEY_WHERE} AND lease_owner = ?"
    return s.run(sql, (*key, owner)) == 1


def _heartbeat(s: Session, owner: str, now: datetime, detail: str | None) -> None:
    s.run(
        "INSERT INTO replicas (owner, started_at, last_seen, detail) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (owner) DO UPDATE SET last_seen = excluded.last_seen, detail = excluded.detail",
        (owner, s.ts(now), s.ts(now), detail),
    )


def _retire(s: Session, owner: str) -> None:
    s.run("DELETE FROM replicas WHERE owner = ?", (owner,))
    s.run("DELETE FROM roles WHERE owner = ?", (owner,))


def _live_replicas(s: Session, seen_since: datetime) -> list[Any]:
    rows = s.all(
        f"SELECT {REPLICA_COLUMNS} FROM replicas WHERE last_seen >= ? ORDER BY owner",
        (s.ts(seen_since),),
    )
    return [replica_from(row) for row in rows]


def _claim_role(s: Session, role: str, owner: str, expires: datetime, now: datetime) -> bool:
    rows = s.all(
        "INSERT INTO roles (role, owner, expires_at) VALUES (?, ?, ?) ON CONFLICT (role) DO UPDATE"
        " SET owner = excluded.owner, expires_at = excluded.expires_at"
        " WHERE roles.owner = excluded.owner OR roles.expires_at <= ? RETURNING owner",
        (role, owner, s.ts(expires), s.ts(now)),
    )
    return bool(rows)


def _take_redriven(s: Session) -> list[Any]:
    rows = s.all(
        "UPDATE work_items SET redriven = 0 WHERE redriven = 1 AND state = 'pending'"
        f" RETURNING {ITEM_COLUMNS}"
    )
    return [item_from(row) for row in rows]


_BULK: dict[str, Callable[[Session, list[tuple[Any, ...]]], None]] = {
    "add": _add_many,
    "note": _note_many,
    # Nothing to write: its receipt resolves with its batch, so all queued before it is on disk.
    "flush": lambda s, batch: None,
}
_SINGLE: dict[str, Callable[..., object]] = {
    "mark_writing": _mark_writing,
    "back_to_pending": _back_to_pending,
    "reschedule": _reschedule,
    "record_outcome": _record_outcome,
    "reopen": _reopen,
    "purge": _purge,
    "claim": _claim,
    "renew": _renew,
    "release": _release,
    "heartbeat": _heartbeat,
    "retire": _retire,
    "live_replicas": _live_replicas,
    "claim_role": _claim_role,
    "take_redriven": _take_redriven,
}


def execute(s: Session, ops: list[Op]) -> list[object]:
    """Run ``ops`` in order; one result per op (None for the bulk ones)."""
    results: list[object] = []
    n = 0
    while n < len(ops):
        kind = ops[n].kind
        bulk = _BULK.get(kind)
        if bulk is None:
            results.append(_SINGLE[kind](s, *ops[n].args))
            n += 1
            continue
        end = n
        while end < len(ops) and ops[end].kind == kind:
            end += 1
        bulk(s, [op.args for op in ops[n:end]])
        results.extend([None] * (end - n))
        n = end
    return results
