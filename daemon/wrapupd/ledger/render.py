"""The operator's views of the ledger: a terminal table, an item's history, CSV and JSON lines."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TextIO

from wrapupd.ledger.model import EXPORT_COLUMNS, ExportRecord, ItemHistory, LedgerRow, iso

LIST_COLUMNS = (
    "conversation",
    "participant",
    "queue",
    "state",
    "attempts",
    "code",
    "updated",
    "detail",
)
DETAIL_WIDTH = 60


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Plain aligned columns, a header and a rule; no colour, so it pipes and greps well."""
    cells = [[_text(value) for value in row] for row in rows]
    widths = [max([len(h), *(len(row[n]) for row in cells)]) for n, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return iso(value)
    return str(value)


def _short(text: str | None) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= DETAIL_WIDTH else text[: DETAIL_WIDTH - 1] + "…"


def render_items(rows: Iterable[LedgerRow]) -> str:
    """``wrapupd ledger list`` and ``redrive``: one line per item."""
    return table(
        LIST_COLUMNS,
        (
            (
                r.item.conversation_id,
                r.item.participant_id,
                r.queue_name or r.item.queue_id,
                r.status,
                r.item.attempts,
                r.code_name or r.item.code_id,
                r.item.updated_at,
                _short(r.item.detail),
            )
            for r in rows
        ),
    )


def render_history(histories: Iterable[ItemHistory]) -> str:
    """``wrapupd ledger show``: each item's facts, then its history line by line."""
    blocks = []
    for history in histories:
        row, item = history.row, history.row.item
        facts = [
            f"conversation {item.conversation_id}  participant {item.participant_id}",
            f"queue {row.queue_name or '?'} ({item.queue_id})  user {row.user_id or '?'}",
            f"state {row.status}  attempts {item.attempts}  code {row.code_name or item.code_id or '-'}",
            f"acw started {iso(item.acw_started_at)}  due {iso(item.due_at)}",
            *_lease(row),
        ]
        events = table(
            ("at", "event", "detail", "attempt", "code", "by"),
            ((e.at, e.kind.value, e.detail, e.attempt, e.code_id, e.owner) for e in history.events),
        )
        blocks.append("\n".join([*facts, "", events]))
    return "\n\n".join(blocks)


def _lease(row: LedgerRow) -> list[str]:
    """Which replica holds the item's write lease (PostgreSQL ledgers), when one does."""
    if row.lease_owner is None:
        return []
    until = iso(row.lease_expires_at) if row.lease_expires_at else "?"
    return [f"leased by {row.lease_owner} until {until}"]


def _plain(record: ExportRecord) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, value in zip(EXPORT_COLUMNS, record.values(), strict=True):
        out[name] = iso(value) if isinstance(value, datetime) else getattr(value, "value", value)
    return out


def write_csv(records: Iterable[ExportRecord], out: TextIO) -> int:
    """The export as CSV with a header row (booleans ``true``/``false``); the number of records."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for record in records:
        row = _plain(record)
        writer.writerow([_csv_cell(row[name]) for name in EXPORT_COLUMNS])
        count += 1
    return count


def _csv_cell(value: object) -> object:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


def write_jsonl(records: Iterable[ExportRecord], out: TextIO) -> int:
    """The export as one JSON object per line, keys in column order; the number of records."""
    count = 0
    for record in records:
        out.write(json.dumps(_plain(record), ensure_ascii=False) + "\n")
        count += 1
    return count
