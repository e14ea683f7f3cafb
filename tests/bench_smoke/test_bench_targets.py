"""The bench gate: a missed target or a >20 % regression of a compared figure fails the run."""

from __future__ import annotations

from typing import Any

from bench.targets import failures, judge


def results() -> dict[str, Any]:
    """Every issue-14 figure, each meeting its target."""
    base: dict[str, Any] = {
        "startup": {"rss_at_ready_mb": 60.0, "ready_s": 0.5},
        "intake": {"durable_items_per_s": 30_000},
        "parse_detect": {"mixed_best_round_per_s": 60_000},
        "latency_repeats": [{"p99": 8.0}, {"p99": 9.0}, {"p99": 7.0}],
        "runs": [
            {"scenario": "latency", "contender": "wrapupd", "calls_per_applied": 1.02},
            {"scenario": "peak", "contender": "wrapupd", "latency_ms": {"p99": 20.0}},
            {
                "scenario": "throughput",
                "contender": "wrapupd",
                "extra": {"budget_used": 0.99, "rate_limited_during_traffic": 0},
            },
        ],
        "ready": [
            {
                "queues": 10_000,
                "emulator_limit_per_min": 300,
                "ok": True,
                "ready_s": 8.0,
                "topics_subscribed": 10_000,
            },
        ],
        "known_conversations": {"mb_at_cap": 4.0},
        "failover": {"max_s": 12.0, "median_s": 10.0},
    }
    return base


def test_every_target_met_and_nothing_regressed_passes() -> None:
    assert failures(judge(results(), results())) == []


def test_one_run_over_the_p99_target_fails_even_if_the_others_are_fine() -> None:
    slow = results()
    slow["latency_repeats"][1]["p99"] = 10.5
    assert any("worst of 3" in f for f in failures(judge(slow, None)))


def test_a_single_429_fails_the_budget_row_whatever_the_share() -> None:
    r = results()
    r["runs"][2]["extra"]["rate_limited_during_traffic"] = 1
    assert any("rate budget" in f for f in failures(judge(r, None)))


def test_every_topic_must_be_subscribed_for_the_10000_queue_row() -> None:
    r = results()
    r["ready"][0]["topics_subscribed"] = 9_000
    assert any("10,000 queues" in f for f in failures(judge(r, None)))


def test_a_compared_figure_more_than_20_percent_worse_fails() -> None:
    before = results()
    before["intake"]["durable_items_per_s"] = 40_000  # now 30,000: 25 % down, still above target
    assert any(
        "regressed" in f and "durable intake" in f for f in failures(judge(results(), before))
    )


def test_within_20_percent_passes() -> None:
    before = results()
    before["startup"]["rss_at_ready_mb"] = 52.0  # now 60: 15 % up
    assert failures(judge(results(), before)) == []


def test_latency_tails_are_held_to_their_targets_only() -> None:
    before = results()
    before["latency_repeats"] = [{"p99": 2.0}, {"p99": 2.0}, {"p99": 2.0}]
    assert failures(judge(results(), before)) == []


def test_a_failover_slower_than_15_s_fails() -> None:
    r = results()
    r["failover"]["max_s"] = 15.2
    assert any("failover" in f for f in failures(judge(r, None)))


def test_a_failover_that_could_not_be_measured_fails() -> None:
    r = results()
    r["failover"] = {"items": 20, "repeats": 3, "target_s": 15.0, "error": "FailoverError: ..."}
    assert any("failover" in f and "None" in f for f in failures(judge(r, None)))


def test_the_failover_time_is_held_to_its_target_only() -> None:
    before = results()
    before["failover"]["max_s"] = 6.0  # now 12 s: twice as long, still within 15 s
    assert failures(judge(results(), before)) == []
