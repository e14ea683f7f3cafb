"""``python -m bench.ledger_intake``: durable intake of new work items, in items per second.

Opens a ledger in a temporary directory (or ``--url postgresql://...``, password in
``WRAPUPD_LEDGER_PASSWORD``), takes on ``--items`` new participants the way the applier does
(``add_pending`` on the event loop, yielding every 1,000 as a burst of frames would), then waits for
``flush()``: the figure counts only items that are on disk (SQLite ``synchronous=FULL``). Also
reported: the event loop's own share (how fast ``add_pending`` returns), and a writing mark's
round trip under that load.

``--write-path`` measures instead what a grace-0 write waits for in the ledger, at ``--rate``
writes/s: a new item due at once, its ``writing`` mark awaited (the milliseconds reported), a
history note and the outcome queued after, as the applier does; and how many commits that took
per write (the item and its mark share one when the writer works as designed).

``--baseline REV`` measures the single-file ledger of an older commit instead (one fsync per
commit, on the event loop), loaded from git, so the figure before and after can be compared on
one machine in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from wrapupd.events import Outcome, WorkItem
from wrapupd.ledger import HistoryKind, Ledger, ledger_path, open_ledger
from wrapupd.ledger.backend import Session

REPO = Path(__file__).resolve().parent.parent
BASELINE_REV = "27d3fb2"  # the last commit with one fsync per commit on the event loop
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def work_items(count: int) -> list[WorkItem]:
    """New participants with the platform's UUID ids, due after a 30 s grace."""
    return [
        WorkItem(
            conversation_id=str(uuid.uuid4()),
            participant_id=str(uuid.uuid4()),
            queue_id="c3a4fbd8-5fd6-4b0b-9b6b-6c6a4a3c2e11",
            acw_started_at=T0,
            due_at=T0 + timedelta(seconds=30),
            deadline=T0 + timedelta(seconds=115),
            media_type="call",
        )
        for _ in range(count)
    ]


async def measure_group_commit(location: str | Path, count: int) -> dict[str, Any]:
    """This ledger: intake on the loop, the writer thread commits in batches."""
    items = work_items(count)
    ledger = await open_ledger(location, password=os.environ.get("WRAPUPD_LEDGER_PASSWORD"))
    try:
        started = time.perf_counter()
        on_loop = 0.0
        for n in range(0, count, 1000):
            burst = time.perf_counter()
            for item in items[n : n + 1000]:
                ledger.add_pending(item, queue_name="Support")
            on_loop += time.perf_counter() - burst
            await asyncio.sleep(0)
        await ledger.flush()
        durable_s = time.perf_counter() - started
        mark_started = time.perf_counter()
        await ledger.mark_writing(items[0].key, 1, "code")
        mark_ms = (time.perf_counter() - mark_started) * 1000
    finally:
        await ledger.close()
    return {
        "ledger": "group commit",
        "backend": ledger.kind,
        "items": count,
        "durable_items_per_s": round(count / durable_s),
        "event_loop_items_per_s": round(count / on_loop),
        "mark_writing_ms": round(mark_ms, 2),
    }


def count_commits(ledger: Ledger) -> list[int]:
    """A one-element counter of the writer's commits from now on."""
    backend = ledger._backend  # a measurement looks inside
    real = backend.transaction
    commits = [0]

    @contextlib.contextmanager
    def counted() -> Iterator[Session]:
        with real() as session:
            yield session
        commits[0] += 1

    backend.transaction = counted  # type: ignore[method-assign]
    return commits


async def measure_write_path(location: str | Path, count: int, rate: float) -> dict[str, Any]:
    """Grace-0 writes at ``rate``/s: the awaited mark's milliseconds, and commits per write."""
    ledger = await open_ledger(location, password=os.environ.get("WRAPUPD_LEDGER_PASSWORD"))
    commits, waits = count_commits(ledger), []
    try:
        started = time.perf_counter()
        for n in range(count):
            now = datetime.now(UTC)
            item = WorkItem(str(uuid.uuid4()), str(uuid.uuid4()), "q", now, now, None)
            asked = time.perf_counter()
            ledger.add_pending(item, queue_name="Support")
            await asyncio.sleep(0)  # the worker takes the item a loop turn later
            await ledger.mark_writing(item.key, 1, "code")
            waits.append((time.perf_counter() - asked) * 1000)
            ledger.note(item.key, HistoryKind.CHECK, "in ACW without a code")
            ledger.record_outcome(item.key, Outcome.APPLIED, "applied")
            await asyncio.sleep(max(0.0, started + (n + 1) / rate - time.perf_counter()))
    finally:
        await ledger.close()
    waits.sort()
    return {
        "ledger": "write path",
        "backend": ledger.kind,
        "writes": count,
        "rate_per_s": rate,
        "mark_ms_p50": round(waits[count // 2], 2),
        "mark_ms_p99": round(waits[min(count - 1, int(count * 0.99))], 2),
        "commits_per_write": round(commits[0] / count, 2),
    }


async def durable_intake(count: int, runs: int) -> dict[str, Any]:
    """``runs`` group-commit measurements, each on a fresh SQLite ledger; medians beside them."""
    done = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="wrapupd-intake-") as directory:
            done.append(await measure_group_commit(ledger_path(directory), count))
    return {
        "items": count,
        "runs": done,
        "durable_items_per_s": round(statistics.median(r["durable_items_per_s"] for r in done)),
        "event_loop_items_per_s": round(
            statistics.median(r["event_loop_items_per_s"] for r in done)
        ),
        "mark_writing_ms": round(statistics.median(r["mark_writing_ms"] for r in done), 2),
    }


def load_baseline(rev: str) -> Any:
    """The ledger module as it was at ``rev``."""
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{rev}:daemon/wrapupd/ledger.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "baseline_ledger.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("baseline_ledger", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure_baseline(directory: Path, count: int, rev: str) -> dict[str, Any]:
    """The old ledger: each add_pending is its own committed, fsynced transaction."""
    items = work_items(count)
    ledger = load_baseline(rev).Ledger.open(directory / "baseline.sqlite3")
    try:
        started = time.perf_counter()
        for item in items:
            ledger.add_pending(item)
        elapsed = time.perf_counter() - started
    finally:
        ledger.close()
    rate = round(count / elapsed)
    return {
        "ledger": f"one fsync per commit ({rev})",
        "backend": "sqlite",
        "items": count,
        "durable_items_per_s": rate,
        "event_loop_items_per_s": rate,  # every insert and its fsync ran on the loop
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger_intake", description=__doc__)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--url", help="a PostgreSQL ledger instead of a SQLite file")
    parser.add_argument("--baseline", nargs="?", const=BASELINE_REV, metavar="REV")
    parser.add_argument("--write-path", action="store_true", help="grace-0 writes, see above")
    parser.add_argument("--rate", type=float, default=50.0, help="writes/s for --write-path")
    args = parser.parse_args(argv)
    if args.write_path:
        with tempfile.TemporaryDirectory(prefix="wrapupd-intake-") as directory:
            location = args.url or ledger_path(directory)
            count = min(args.items, 500)
            print(json.dumps(asyncio.run(measure_write_path(location, count, args.rate))))
        return 0
    with tempfile.TemporaryDirectory(prefix="wrapupd-intake-") as directory:
        results = [
            asyncio.run(measure_group_commit(args.url or ledger_path(directory), args.items))
        ]
        if args.baseline:
            baseline_items = min(args.items, 5_000)  # a few seconds at a few thousand a second
            results.append(measure_baseline(Path(directory), baseline_items, args.baseline))
    for result in results:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
