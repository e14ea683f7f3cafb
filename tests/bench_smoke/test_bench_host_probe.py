"""The machine-speed probe of ``make bench``: real readings, kept beside the runs, never a verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import host_probe, report_targets, targets


def test_a_probe_times_the_loop_and_real_fsyncs_and_leaves_no_file(tmp_path: Path) -> None:
    reading = host_probe.probe(tmp_path, "latency run 1 (wrapupd)")

    assert reading["label"] == "latency run 1 (wrapupd)"
    assert reading["loop_ms"] > 0
    assert 0 < reading["fdatasync_p50_ms"] <= reading["fdatasync_max_ms"]
    assert list(tmp_path.iterdir()) == []


def test_fdatasync_gives_one_time_per_sync(tmp_path: Path) -> None:
    times = host_probe.fdatasync_ms(tmp_path, count=3)

    assert len(times) == 3 and all(t > 0 for t in times)


def reading(label: str, loop_ms: float, fsync_max: float) -> dict[str, Any]:
    return {
        "label": label,
        "loop_ms": loop_ms,
        "fdatasync_p50_ms": 0.5,
        "fdatasync_max_ms": fsync_max,
        "load_avg_1m": 0.3,
    }


def sitting() -> dict[str, Any]:
    probes = [
        reading("latency run 1 (wrapupd)", 60.0, 2.0),
        reading("latency run 2 (wrapupd)", 180.0, 9.5),
        reading("peak run", 75.0, 3.0),
        reading("start-up", 70.0, 1.0),
    ]
    tail = {"acw_starts_per_s": 50, "count": 370, "p50": 5.0, "max": 20.0}
    return {
        "host": probes,
        "host_summary": host_probe.summary(probes),
        "latency_repeats": [
            {**tail, "p99": 9.0, "host": probes[0]},
            {**tail, "p99": 14.0, "host": probes[1]},
        ],
        "runs": [
            {
                "scenario": "peak",
                "contender": "wrapupd",
                "extra": {"acw_starts_per_s": 200},
                "latency_ms": {"count": 1500, "p50": 6.0, "p99": 20.0, "max": 30.0},
            }
        ],
        "machine": {},
    }


def test_the_summary_keeps_the_fastest_slowest_and_median_loop_and_the_worst_fsync() -> None:
    s = sitting()["host_summary"]

    assert s == {
        "probes": 4,
        "loop_ms_min": 60.0,
        "loop_ms_median": 72.5,
        "loop_ms_max": 180.0,
        "fdatasync_max_ms": 9.5,
    }


def test_each_p99_run_is_shown_beside_the_probe_taken_right_before_it() -> None:
    table = "\n".join(report_targets.repeats_table(sitting()))

    assert "| 1 | 50 | 370 | 5.0 | 9.0 | 20.0 | 60.0, 0.5 / 2.0 |" in table
    assert "| 2 | 50 | 370 | 5.0 | 14.0 | 20.0 | 180.0, 0.5 / 9.5 |" in table
    assert "| peak (unlimited budget) | 200 | 1500 | 6.0 | 20.0 | 30.0 | 75.0, 0.5 / 3.0 |" in table
    line = report_targets.host_line(sitting())
    assert "60.0 to 180.0 ms (median 72.5)" in line and "the start-up runs, 70.0 ms" in line


def test_a_slow_machine_excuses_nothing_the_p99_run_over_its_target_still_fails() -> None:
    verdict = next(v for v in targets.judge(sitting(), None) if v["key"] == "p99_50")

    assert verdict["value"] == 14.0 and verdict["met"] is False
