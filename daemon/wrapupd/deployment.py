"""Problems only an operator can fix, that hold all work until fixed: a refresh token the platform
refused (``wrapupd login`` again), or an org that refuses client-credentials wrap-up writes (switch
to the authorization-code grant). Each is logged once with its remedy, raised as a metric and a
failing readiness check, and cleared when the daemon sees it fixed; no work item ends because of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from wrapupd.metrics import Metrics
from wrapupd.retry import LOGIN_REQUIRED, USER_CONTEXT_REQUIRED, Hold

log = structlog.get_logger("wrapupd.deployment")

KNOWN_PROBLEMS = (LOGIN_REQUIRED, USER_CONTEXT_REQUIRED)


@dataclass(frozen=True, slots=True)
class Problem:
    """What the platform said, and what the operator must do."""

    detail: str
    remedy: str


class DeploymentProblems:
    """The deployment problems in force; the readiness check ``deployment`` reads them."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._active: dict[str, Problem] = {}
        for problem in KNOWN_PROBLEMS:
            metrics.set_deployment_problem(problem, False)

    def hold(self, verdict: Hold) -> None:
        """A work item was held for this problem: report it, once until it clears."""
        self.report(verdict.problem, verdict.detail, verdict.remedy)

    def report(self, problem: str, detail: str, remedy: str) -> None:
        """Log the problem with its remedy and raise the metric, unless already in force."""
        if problem in self._active:
            return
        self._active[problem] = Problem(detail, remedy)
        self._metrics.set_deployment_problem(problem, True)
        log.error("deployment_problem", problem=problem, error=detail, remedy=remedy)

    def clear(self, problem: str) -> None:
        """The daemon saw the problem fixed (a renewal succeeded, a write was accepted)."""
        if self._active.pop(problem, None) is None:
            return
        self._metrics.set_deployment_problem(problem, False)
        log.info("deployment_problem_resolved", problem=problem)

    def active(self, problem: str) -> bool:
        """Whether this problem is in force."""
        return problem in self._active

    def check(self) -> tuple[bool, str]:
        """The readiness check: ok, or each problem with its remedy."""
        if not self._active:
            return True, "no deployment problem"
        return False, "; ".join(f"{k}: {p.remedy}" for k, p in self._active.items())
