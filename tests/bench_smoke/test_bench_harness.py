"""The benchmark harness itself runs: one contender and one baseline on a tiny load, figures sane.

Benchmarks never run in ``make test``; this only checks that the harness, the contenders and the
report generator work end to end, in seconds.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from bench import report
from bench.__main__ import PLANS, latency_scenario
from bench.contenders.tutorial import TutorialContender
from bench.contenders.wrapupd_runner import WrapupdContender
from bench.harness import Scenario, Traffic, run_scenario

pytestmark = pytest.mark.timeout(60)


def tiny_scenario() -> Scenario:
    base = latency_scenario(PLANS["tiny"])
    traffic = Traffic(
        rate_per_s=10, duration_s=1.0, queues=("Support", "Unwatched Queue"), mix={"nothing": 1.0}
    )
    return Scenario(
        name="latency",
        traffic=traffic,
        setup=base.setup,
        emulator_args=base.emulator_args,
        settle_s=5,
    )


async def test_wrapupd_and_tutorial_codes_every_watched_participant(tmp_path: Path) -> None:
    scenario = tiny_scenario()
    runs = [await run_scenario(c, scenario) for c in (WrapupdContender(), TutorialContender())]
    for run in runs:
        assert run.participants > 0, run.contender
        assert run.applied == run.participants, run.as_json()
        assert run.missed == run.late == run.doubled == run.overwritten == run.stray == 0, (
            run.as_json()
        )
        assert run.latencies_ms and run.calls_by_endpoint
    wrapupd, tutorial = (r.as_json() for r in runs)
    # A proof of state after the last wait, then the write: at most two calls per applied code
    # (issue 11's rule); the tutorial also reads before it writes, but without the proof's rules.
    assert wrapupd["calls_per_applied_during_traffic"] <= 2.0
    assert (
        wrapupd["calls_per_applied_during_traffic"] <= tutorial["calls_per_applied_during_traffic"]
    )

    if importlib.util.find_spec("matplotlib") is None:
        pytest.skip("the report needs the bench extra (matplotlib); the harness part passed")
    results = {
        "mode": "smoke",
        "plan": PLANS["tiny"].__dict__,
        "timestamp": "smoke",
        "wall_s": 0,
        "machine": {"processor": "test", "cpus": 1, "platform": "test", "python": "3"},
        "runs": [wrapupd, tutorial],
        "parse_detect": {
            "per_size": {"1": {"bytes": 1, "per_s": 1}},
            "mix": {1: 1.0},
            "mixed_per_s": 1,
        },
        "rss": {"error": "not measured in the smoke test"},
        "ready": [],
    }
    doc = report.write(results, tmp_path / "PERFORMANCE.md")
    text = doc.read_text()
    assert "| wrapupd |" in text and "| tutorial |" in text
    assert (tmp_path / "img" / "bench-latency.png").stat().st_size > 0
