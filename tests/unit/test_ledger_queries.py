"""The operator's toolbox on both backends: list, show, redrive, export, and how they render."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from ledger_places import T0, Place, item
from wrapupd.clock import ManualClock
from wrapupd.events import ItemState, Outcome
from wrapupd.ledger import EXPORT_COLUMNS, Claim, HistoryKind, Ledger, state_choices
from wrapupd.ledger.render import render_history, render_items, write_csv, write_jsonl


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=T0)


@pytest.fixture
async def filled(place: Place, clock: ManualClock) -> AsyncIterator[Ledger]:
    """Support: c-applied (applied at +10 s), c-failed, c-pending; Sales: s-coded, s-dry (at +20 s)."""
    ledger = await place.open(clock, owner="replica-a")
    ledger.add_pending(item("c-applied"), queue_name="Support", user_id="user-1")
    ledger.add_pending(item("c-failed"), queue_name="Support", user_id="user-2")
    ledger.add_pending(item("c-pending"), queue_name="Support")
    ledger.add_pending(item("s-coded", queue_id="queue-2"), queue_name="Sales")
    ledger.add_pending(item("s-dry", queue_id="queue-2"), queue_name="Sales", user_id="user-3")
    await clock.advance(10)
    await ledger.mark_writing(("c-applied", "agent-1"), 1, "code-1")
    ledger.record_outcome(
        ("c-applied", "agent-1"),
        Outcome.APPLIED,
        "applied Done",
        code_name="Done",
        latency_ms=10_000,
    )
    ledger.record_outcome(("c-failed", "agent-1"), Outcome.FAILED, "gave up after 8 attempts")
    ledger.record_outcome(("s-coded", "agent-1"), Outcome.ALREADY_CODED, "agent chose X")
    await clock.advance(10)
    ledger.record_outcome(
        ("s-dry", "agent-1"), Outcome.DRY_RUN, code_id="code-2", code_name="Other"
    )
    await ledger.flush()
    yield ledger
    await ledger.close()


def conversations(rows: list) -> list[str]:  # type: ignore[type-arg]
    return sorted(row.item.conversation_id for row in rows)


# --- list -------------------------------------------------------------------------------------


async def test_list_filters_by_state_outcome_queue_and_time(filled: Ledger) -> None:
    q = filled.queries
    assert conversations(q.list_items()) == [
        "c-applied",
        "c-failed",
        "c-pending",
        "s-coded",
        "s-dry",
    ]
    assert conversations(q.list_items(state="pending")) == ["c-pending"]
    assert conversations(q.list_items(state="done")) == [
        "c-applied",
        "c-failed",
        "s-coded",
        "s-dry",
    ]
    assert conversations(q.list_items(state="failed")) == ["c-failed"]
    assert conversations(q.list_items(state="agent_coded")) == ["s-coded"]
    assert conversations(q.list_items(queue="sales")) == ["s-coded", "s-dry"]  # a name, any case
    assert conversations(q.list_items(queue="queue-1", state="applied")) == ["c-applied"]
    assert conversations(q.list_items(since=T0 + timedelta(seconds=15))) == ["s-dry"]
    newest_first = q.list_items(limit=2)
    assert [r.item.conversation_id for r in newest_first][0] == "s-dry" and len(newest_first) == 2


async def test_list_refuses_an_unknown_state_and_names_the_choices(filled: Ledger) -> None:
    with pytest.raises(ValueError, match="pending, writing, done, applied"):
        filled.queries.list_items(state="bogus")
    assert "agent_coded" in state_choices()


async def test_the_list_renders_as_a_table_with_a_row_per_item(filled: Ledger) -> None:
    text = render_items(filled.queries.list_items(queue="Support"))
    lines = text.splitlines()
    assert lines[0].split() == [
        "conversation",
        "participant",
        "queue",
        "state",
        "attempts",
        "code",
        "updated",
        "detail",
    ]
    assert len(lines) == 2 + 3
    applied = next(line for line in lines if line.startswith("c-applied"))
    assert "Support" in applied and "applied" in applied and "Done" in applied


# --- show -------------------------------------------------------------------------------------


async def test_show_prints_every_participant_of_a_conversation_with_its_history(
    filled: Ledger,
) -> None:
    filled.add_pending(item("c-applied", "agent-2"), queue_name="Support")
    filled.note(("c-applied", "agent-2"), HistoryKind.CHECK, "GET: coded meanwhile")
    await filled.flush()
    one, two = filled.queries.show("c-applied")
    assert [e.kind for e in one.events] == [
        HistoryKind.SEEN,
        HistoryKind.WRITE,
        HistoryKind.OUTCOME,
    ]
    assert [e.kind for e in two.events] == [HistoryKind.SEEN, HistoryKind.CHECK]
    assert [h.row.item.participant_id for h in filled.queries.show("c-applied", "agent-2")] == [
        "agent-2"
    ]
    assert filled.queries.show("nope") == []
    text = render_history([one])
    assert "queue Support (queue-1)  user user-1" in text
    assert "applied: applied Done" in text and "replica-a" in text


# --- redrive ----------------------------------------------------------------------------------


async def test_redrive_puts_failed_items_back_for_the_daemon_once(
    filled: Ledger,
    place: Place,
    clock: ManualClock,
) -> None:
    tools = place.tools(clock)  # the operator's own connection, beside the running daemon
    try:
        assert conversations(tools.redrive(dry_run=True)) == ["c-failed"]
        assert filled.get(("c-failed", "agent-1")).outcome is Outcome.FAILED  # type: ignore[union-attr]
        touched = tools.redrive(queue="Support")
        assert [(r.item.conversation_id, r.status) for r in touched] == [("c-failed", "failed")]
        assert tools.redrive() == []  # nothing failed any more
    finally:
        tools.close()
    stored = filled.get(("c-failed", "agent-1"))
    assert stored is not None
    assert (stored.state, stored.outcome, stored.attempts) == (ItemState.PENDING, None, 0)
    (taken,) = await filled.take_redriven()
    assert taken.key == ("c-failed", "agent-1")
    assert await filled.take_redriven() == []  # handed out once
    assert (await filled.claim(taken.key, 30)).claim is Claim.MINE
    (history,) = filled.queries.show("c-failed")
    assert history.events[-2].kind is HistoryKind.REDRIVE
    assert history.events[-2].detail == "by an operator, after failed"


async def test_redrive_refuses_outcomes_that_left_a_code(filled: Ledger) -> None:
    with pytest.raises(ValueError, match="cannot redrive 'applied'"):
        filled.queries.redrive(state="applied")
    with pytest.raises(ValueError, match="cannot redrive"):
        filled.queries.redrive(state="agent_coded")


# --- export -----------------------------------------------------------------------------------


async def test_export_has_one_record_per_applied_code_in_a_stable_order(filled: Ledger) -> None:
    records = list(filled.queries.export())
    assert [(r.conversation_id, r.outcome, r.dry_run) for r in records] == [
        ("c-applied", Outcome.APPLIED, False),
        ("s-dry", Outcome.DRY_RUN, True),
    ]
    applied = records[0]
    assert applied.values() == (
        "c-applied", "agent-1", "queue-1", "Support", "user-1", "code-1", "Done",
        T0, T0 + timedelta(seconds=10), 10_000, Outcome.APPLIED, False,
    )  # fmt: skip
    later = T0 + timedelta(seconds=15)
    assert [r.conversation_id for r in filled.queries.export(since=later)] == ["s-dry"]
    assert [r.conversation_id for r in filled.queries.export(until=later)] == ["c-applied"]


async def test_export_writes_csv_and_json_lines_with_the_documented_columns(
    filled: Ledger,
) -> None:
    out = io.StringIO()
    assert write_csv(filled.queries.export(), out) == 2
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == EXPORT_COLUMNS
    assert rows[1] == [
        "c-applied", "agent-1", "queue-1", "Support", "user-1", "code-1", "Done",
        "2026-01-01T09:00:00.000000+00:00", "2026-01-01T09:00:10.000000+00:00", "10000",
        "applied", "false",
    ]  # fmt: skip
    assert rows[2][EXPORT_COLUMNS.index("dry_run")] == "true"
    assert rows[2][EXPORT_COLUMNS.index("latency_ms")] == ""
    lines = io.StringIO()
    assert write_jsonl(filled.queries.export(), lines) == 2
    first = json.loads(lines.getvalue().splitlines()[0])
    assert tuple(first) == EXPORT_COLUMNS
    assert (first["latency_ms"], first["dry_run"], first["outcome"]) == (10_000, False, "applied")


async def test_the_tools_read_beside_a_running_daemon(
    sqlite_place: Place,
) -> None:
    daemon = await sqlite_place.open()
    tools = sqlite_place.tools()
    try:
        daemon.add_pending(item())
        await daemon.flush()
        assert conversations(tools.list_items()) == ["conv-1"]  # what is on disk, at once
        daemon.add_pending(item("conv-2"))
        await daemon.flush()
        assert conversations(tools.list_items()) == ["conv-1", "conv-2"]
    finally:
        tools.close()
        await daemon.close()
