"""The failover row of ``make bench`` runs at a tiny size and yields a well-formed record.

Two real ``wrapupd run`` replicas, a real throwaway PostgreSQL and the emulator, through the same
function the bench calls (``bench.failover.failover_figure``). Only the record's shape and the
gate's and the report's handling of it are checked here: the figure itself is the bench's to judge.
"""

from __future__ import annotations

import os

import pytest
from bench import failover, report_targets, targets

from postgres import find_bindir

pytestmark = pytest.mark.timeout(240)


def require_postgres() -> None:
    if find_bindir() is None:
        reason = "PostgreSQL server binaries (initdb) not found: apt-get install postgresql"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (.ci/run installs it; CI must not skip these tests)")
        pytest.skip(reason)


def test_one_tiny_failover_gives_a_row_the_gate_and_the_report_read() -> None:
    require_postgres()
    row = failover.failover_figure(items=2, repeats=1)

    assert "error" not in row, row["error"]
    assert row["items"] == 2 and row["repeats"] == 1 and row["target_s"] == 15.0
    assert len(row["runs"]) == 1
    run = row["runs"][0]
    assert run["items"] == 2
    assert 0 < run["failover_median_s"] <= run["failover_max_s"]
    assert row["max_s"] == run["failover_max_s"]
    assert 0 < row["median_s"] <= row["max_s"]
    assert len(row["load_avg_1_5_15"]) == 3

    verdict = next(
        v for v in targets.judge({"runs": [], "failover": row}, None) if v["key"] == "failover"
    )
    assert verdict["value"] == row["max_s"] and verdict["target"] == 15
    assert verdict["met"] is (row["max_s"] <= 15)

    table = "\n".join(report_targets.failover_table({"failover": row}))
    assert f"| 1 | 2 | {row['max_s']:.2f} |" in table
