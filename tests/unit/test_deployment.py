"""Deployment problems are reported once with their remedy, raise a metric and a failing readiness
check, and clear when the daemon sees them fixed."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from wrapupd.deployment import DeploymentProblems
from wrapupd.metrics import Metrics
from wrapupd.retry import LOGIN_REMEDY, LOGIN_REQUIRED, USER_CONTEXT_REQUIRED, Hold


def gauge(metrics: Metrics, problem: str) -> float | None:
    return metrics.registry.get_sample_value("wrapupd_deployment_problem", {"problem": problem})


def test_a_problem_is_logged_once_however_many_items_it_holds() -> None:
    metrics = Metrics(CollectorRegistry())
    problems = DeploymentProblems(metrics)
    assert gauge(metrics, LOGIN_REQUIRED) == gauge(metrics, USER_CONTEXT_REQUIRED) == 0
    with capture_logs() as logs:
        for _ in range(5):
            problems.hold(Hold(LOGIN_REQUIRED, "refresh token revoked", LOGIN_REMEDY))
    reported = [e for e in logs if e["event"] == "deployment_problem"]
    assert len(reported) == 1 and reported[0]["log_level"] == "error"
    assert reported[0]["remedy"] == LOGIN_REMEDY and reported[0]["problem"] == LOGIN_REQUIRED
    assert gauge(metrics, LOGIN_REQUIRED) == 1
    ok, detail = problems.check()
    assert not ok and "wrapupd login" in detail


def test_a_cleared_problem_lowers_the_metric_and_may_be_reported_again() -> None:
    metrics = Metrics(CollectorRegistry())
    problems = DeploymentProblems(metrics)
    problems.report(LOGIN_REQUIRED, "expired", LOGIN_REMEDY)
    with capture_logs() as logs:
        problems.clear(LOGIN_REQUIRED)
        problems.clear(LOGIN_REQUIRED)  # nothing in force: nothing said
    assert [e["event"] for e in logs] == ["deployment_problem_resolved"]
    assert gauge(metrics, LOGIN_REQUIRED) == 0 and problems.check()[0]
    problems.report(LOGIN_REQUIRED, "expired again", LOGIN_REMEDY)
    assert problems.active(LOGIN_REQUIRED)
