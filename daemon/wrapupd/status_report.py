"""What the status page, ``/status.json`` and ``wrapupd status`` show: one frozen value, built by the service.

The service fills a :class:`StatusReport` from its parts when asked (:class:`StatusSource`); the
health listener renders it as HTML or JSON, and the terminal command reads the JSON back into the
same types. Plain values only, so a renderer cannot reach into a live part, and nothing secret can
travel: channels are named by :func:`wrapupd.logs.channel_tag`, never by id or connectUri.

Times are timezone-aware UTC datetimes. ``applied_today`` counts since 00:00 UTC.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pydantic import TypeAdapter

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class Check:
    """One readiness check, as ``/readyz`` names it (``token``, ``socket``, ``heartbeat`` ...)."""

    name: str
    ok: bool
    detail: str = ""


class ProblemKind(enum.StrEnum):
    """Conditions an operator must act on; the daemon cannot fix them by waiting."""

    MISSING_PERMISSIONS = "missing_permissions"
    CODE_NOT_ASSIGNED = "code_not_assigned"
    USER_CONTEXT_REQUIRED = "user_context_required"
    SWEEP_STALLED = "sweep_stalled"
    LEDGER_UNAVAILABLE = "ledger_unavailable"
    REFRESH_TOKEN_EXPIRED = "refresh_token_expired"


# What to do about each kind, in the operator's words (shown beside the problem).
REMEDIES: dict[ProblemKind, str] = {
    ProblemKind.MISSING_PERMISSIONS: "grant the OAuth client's role the permissions named, then reload",
    ProblemKind.CODE_NOT_ASSIGNED: "assign the wrap-up code to the queue in Admin > Queues, or change default_code",
    ProblemKind.USER_CONTEXT_REQUIRED: "the platform refuses this write for a client-credentials grant: run `wrapupd login` to use a user grant",
    ProblemKind.SWEEP_STALLED: "reconciliation is not finishing: check the logs for the failing conversation and the API's health",
    ProblemKind.LEDGER_UNAVAILABLE: "the ledger cannot be written (disk full, permissions, database down): intake is stopped until it is back",
    ProblemKind.REFRESH_TOKEN_EXPIRED: "the user grant's refresh token expired: run `wrapupd login` again",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing to act on: its kind, what it concerns (a queue, a topic, "reconciler"), and detail."""

    kind: ProblemKind
    subject: str
    detail: str = ""

    @property
    def remedy(self) -> str:
        """What the operator should do about it."""
        return REMEDIES[self.kind]


@dataclass(frozen=True, slots=True)
class ChannelStatus:
    """One notification channel and its socket. ``tag`` is ``channel_tag(id)``, never the id."""

    tag: str
    shard: int
    topics: int
    rejected_topics: int
    connected: bool
    state: str
    connected_since: datetime | None = None
    last_frame_at: datetime | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RateBudget:
    """The shared API budget: what is configured, what the last minute used, who waits, any pause."""

    per_minute: float
    used_last_minute: int
    waiting: int = 0
    paused_for_s: float = 0.0


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """One watched queue: its default code and grace, and what happened on it."""

    name: str
    default_code: str
    grace_seconds: float
    pending: int
    applied_today: int
    last_applied_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RecentOutcome:
    """One finished work item, newest first in the report."""

    at: datetime
    queue: str
    conversation_id: str
    outcome: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class StatusReport:
    """Everything the page shows, as of ``generated_at``."""

    generated_at: datetime
    version: str
    started_at: datetime | None
    dry_run: bool
    checks: tuple[Check, ...]
    channels: tuple[ChannelStatus, ...]
    budget: RateBudget
    queues: tuple[QueueStatus, ...]
    recent: tuple[RecentOutcome, ...]
    problems: tuple[Problem, ...]

    @property
    def ready(self) -> bool:
        """Ready exactly when every check passes, as ``/readyz`` decides."""
        return all(check.ok for check in self.checks)


class StatusSource(Protocol):
    """What the health listener asks for each page load; the service implements it."""

    async def status_report(self) -> StatusReport:
        """A fresh report; may read the ledger (off the event loop) but never calls the platform."""
        ...


def checks_from_readiness(readiness: Mapping[str, tuple[bool, str]]) -> tuple[Check, ...]:
    """The readiness checks as ``/readyz`` reports them, so the page and the probe always agree."""
    return tuple(Check(name, bool(ok), detail) for name, (ok, detail) in readiness.items())


def age_text(moment: datetime | None, now: datetime) -> str:
    """``"12 s ago"``, ``"4 min ago"``, ``"3 h ago"``, ``"2 d ago"``; ``"never"`` for None."""
    if moment is None:
        return "never"
    seconds = max(0.0, (now - moment).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{seconds:.0f} s ago"


@functools.cache
def _adapter() -> TypeAdapter[StatusReport]:
    """Built on first use (a page load, ``wrapupd status``): building it is ~20 ms of start-up."""
    from pydantic import TypeAdapter

    return TypeAdapter(StatusReport)


def report_to_json(report: StatusReport) -> dict[str, Any]:
    """The ``/status.json`` document: the report's fields plus ``ready`` and each problem's remedy."""
    document: dict[str, Any] = _adapter().dump_python(report, mode="json")
    document["schema"] = SCHEMA_VERSION
    document["ready"] = report.ready
    for entry, problem in zip(document["problems"], report.problems, strict=True):
        entry["remedy"] = problem.remedy
    return document


def report_from_json(document: object) -> StatusReport:
    """Parse a ``/status.json`` document; raises ``ValueError`` when it is not one."""
    if not isinstance(document, dict) or document.get("schema") != SCHEMA_VERSION:
        raise ValueError(f"not a wrapupd status document (schema {SCHEMA_VERSION} expected)")
    fields = {k: v for k, v in document.items() if k not in ("schema", "ready")}
    return _adapter().validate_python(fields)
