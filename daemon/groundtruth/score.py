"""The one scorer of the emulator's ground truth: what happened to every participant, never what the
daemon says about itself.

Definitions (docs/RELIABILITY.md and docs/PERFORMANCE.md use these words in this sense):

- *watched*: an agent participant on a watched queue that entered after-call work.
- *missed*: a watched participant with no code at the end: still in ACW, or ACW ended uncoded.
  A skip by the agent is the agent's choice, not a miss.
- *late*: a watched participant the platform stamped ``ININ-WRAP-UP-TIMEOUT`` although the daemon
  could have coded it first (see :class:`Excuses`); ``timeout_stamped - late`` were excused. When
  the platform's own timeout is the contender measured (``contender_code="timeout"``), a stamp is
  its result, never late.
- *doubled*: a participant whose wrap-up rules received a second write (``apiWrapupWrites > 1``).
- *overwritten*: an API code in a participant's ``history`` after a code someone else put there (the
  agent's own, or the platform's ``ININ-WRAP-UP-TIMEOUT``); with ``overwrite_allowed`` the platform
  accepts such a write and ``wrapup.by`` says "api", so only the history shows it.
- *raced*: such a write that landed within ``Excuses.race_window_s`` of the other code: the agent
  coded between the daemon's state check and its write's arrival, a window no client can close
  (the platform has no conditional write). Reported, not a broken promise.
- *stray*: a wrap-up call on an unwatched queue's participant, or on a non-agent participant
  (wrap-up calls in the call log that no agent entry accounts for).
- *latency*: ACW start to the contender's code landing (grace period included).
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Entry = dict[str, Any]

_WRITE_PATH = re.compile(
    r"^/api/v2/conversations/(?:\w+/)?\{id\}/participants/\{pid\}"
    r"(?:/communications/\{commId\}/wrapup)?$"
)
PROMISES = ("missed", "doubled", "overwritten", "late", "stray")


@dataclass(frozen=True)
class Excuses:
    """Timeout stamps the daemon could not have prevented, so they count as excused, not late."""

    down: Sequence[tuple[float, float]] = ()  # unix-time windows the daemon was down
    budget: int = 0  # stamps the rate budget could not fit
    acw_timeout_s: Mapping[str, float] = field(default_factory=dict)  # queue id -> ACW timeout
    grace: float = 0.0
    margin: float = 0.0
    race_window_s: float = 0.0  # an overwrite this soon after the other code is *raced*

    def covers(self, entry: Entry) -> bool:
        """The daemon was down from the moment the code was due until the last useful moment."""
        start = timestamp(entry.get("acwStartedAt"))
        if start is None or not self.down:
            return False
        useful = max(0.0, self.acw_timeout_s.get(entry["queueId"], 0.0) - self.margin)
        return _covered(start + min(self.grace, useful), start + useful, self.down)


@dataclass
class Score:
    """Every figure of one run, from the ground truth and the call log."""

    conversations: int = 0
    watched: int = 0
    applied: int = 0
    agent: int = 0
    agent_untouched: int = 0
    skipped: int = 0
    timeout_stamped: int = 0
    missed: int = 0
    late: int = 0
    doubled: int = 0
    overwritten: int = 0
    raced: int = 0
    stray: int = 0
    writes_after_acw: int = 0  # refused writes on participants someone else finished (diagnostic)
    rate_limited: int = 0  # 429 answers in the call log
    latencies_ms: list[float] = field(default_factory=list)
    after_grace_ms: list[float] = field(default_factory=list)
    api_calls: dict[str, int] = field(default_factory=dict)  # "METHOD /path" -> calls
    offenders: dict[str, list[str]] = field(default_factory=dict)

    def broken(self) -> dict[str, int]:
        """The promises this run broke, with how often (empty when every promise held)."""
        return {k: getattr(self, k) for k in PROMISES if getattr(self, k)}

    def note(self, kind: str, entry: Entry) -> None:
        """Keep the entry behind a broken promise, for the failure message."""
        self.offenders.setdefault(kind, []).append(
            f"{entry['conversationId']}/{entry['participantId']} queue={entry['queueId']} "
            f"wrapup={entry.get('wrapup')} writes={writes(entry)} "
            f"calls={entry.get('apiWrapupCalls', 0)} acw={entry.get('acwStartedAt')}"
        )


def score(
    truth: Sequence[Entry],
    calls: Iterable[Mapping[str, Any]],
    watched_ids: Collection[str],
    *,
    grace_by_queue: Mapping[str, float] | None = None,
    excuses: Excuses | None = None,
    window: tuple[float, float] | None = None,
    contender_code: str = "api",
) -> Score:
    """Score one run. ``window`` limits ``applied`` and latency to codes written inside it
    (throughput runs); ``contender_code`` is whose codes are measured ("api", or "timeout" for
    the platform's built-in)."""
    result = Score(conversations=len({e["conversationId"] for e in truth}))
    timeouts: list[Entry] = []
    for entry in truth:
        if entry["queueId"] in watched_ids:
            _count_watched(result, entry, window, contender_code, grace_by_queue or {})
            if _by(entry) == "timeout" and contender_code == "api":
                timeouts.append(entry)
        elif entry.get("apiWrapupCalls", 0):
            result.stray += 1
            result.note("stray", entry)
        _count_writes(result, entry, excuses or Excuses())
    _count_late(result, timeouts, excuses or Excuses())
    _count_calls(result, truth, calls)
    return result


def _by(entry: Entry) -> str | None:
    by = (entry.get("wrapup") or {}).get("by")
    return str(by) if by else None


def _count_watched(
    result: Score,
    entry: Entry,
    window: tuple[float, float] | None,
    contender_code: str,
    grace_by_queue: Mapping[str, float],
) -> None:
    result.watched += 1
    by = _by(entry)
    at = timestamp((entry.get("wrapup") or {}).get("at"))
    in_window = window is None or (at is not None and window[0] <= at <= window[1])
    if by is None:
        result.missed += 1
        result.note("missed", entry)
    elif by == "api":
        result.applied += 1 if in_window else 0
    elif by == "agent":
        result.agent += 1
        result.agent_untouched += 0 if entry.get("apiWrapupCalls", 0) else 1
    elif by == "skipped":
        result.skipped += 1
    elif by == "timeout":
        result.timeout_stamped += 1
    if by in ("agent", "timeout", "skipped") and writes(entry):
        result.writes_after_acw += 1
    start = timestamp(entry.get("acwStartedAt"))
    if by == contender_code and in_window and start is not None and at is not None:
        result.latencies_ms.append((at - start) * 1000)
        result.after_grace_ms.append(
            (at - start - grace_by_queue.get(entry["queueId"], 0.0)) * 1000
        )


def _count_writes(result: Score, entry: Entry, excuses: Excuses) -> None:
    if writes(entry) > 1:
        result.doubled += 1
        result.note("doubled", entry)
    gap = overwrite_gap(entry)
    if gap is None:
        return
    if gap <= excuses.race_window_s:
        result.raced += 1
        result.note("raced", entry)
    else:
        result.overwritten += 1
        result.note("overwritten", entry)


def _count_late(result: Score, timeouts: list[Entry], excuses: Excuses) -> None:
    unexcused = [e for e in timeouts if not excuses.covers(e)]
    by_budget = min(excuses.budget, len(unexcused))
    result.late = len(unexcused) - by_budget
    for entry in unexcused[by_budget:]:
        result.note("late", entry)


def _count_calls(result: Score, truth: Sequence[Entry], calls: Iterable[Mapping[str, Any]]) -> None:
    by_endpoint: Counter[str] = Counter()
    write_calls = 0
    for call in calls:
        count, path = int(call["count"]), str(call["path"])
        by_endpoint[f"{call['method']} {path}"] += count
        result.rate_limited += count if int(call["status"]) == 429 else 0
        if _WRITE_PATH.match(path) and (call["method"] == "PATCH" or path.endswith("/wrapup")):
            write_calls += count
    result.api_calls = dict(sorted(by_endpoint.items()))
    non_agent = write_calls - sum(int(e.get("apiWrapupCalls", 0)) for e in truth)
    if non_agent > 0:
        result.stray += non_agent
        result.offenders.setdefault("stray", []).append(
            f"{non_agent} writes on non-agent participants"
        )


def writes(entry: Entry) -> int:
    """Writes that reached the platform's wrap-up rules (a faulted or rate-limited call did not)."""
    value = entry.get("apiWrapupWrites")
    return int(entry.get("apiWrapupCalls", 0) if value is None else value)


def overwrite_gap(entry: Entry) -> float | None:
    """Seconds from someone else's code to the API code that landed over it (the widest such gap;
    infinite when a time is missing), or None when no API code came after another's."""
    other: float | None = None
    widest: float | None = None
    for change in entry.get("history") or []:
        at = timestamp(change.get("at"))
        if change.get("by") in ("agent", "timeout"):
            other = at if at is not None else float("-inf")
        elif change.get("by") == "api" and other is not None:
            gap = float("inf") if at is None else at - other
            widest = gap if widest is None else max(widest, gap)
    return widest


def unresolved(truth: Iterable[Entry], watched_ids: Collection[str]) -> int:
    """Watched participants still without any outcome (the daemon still owes them a code)."""
    return sum(1 for e in truth if e["queueId"] in watched_ids and _by(e) is None)


def timestamp(value: str | None) -> float | None:
    """An ISO-8601 time of the ground truth (``Z`` or ``+00:00``) as Unix seconds."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100, tenths allowed), None without values."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=1000, method="inclusive")[round(q * 10) - 1]


def _covered(start: float, end: float, windows: Sequence[tuple[float, float]]) -> bool:
    """Is ``[start, end]`` inside the union of ``windows``?"""
    for a, b in sorted(windows):
        if a > start:
            return False
        start = max(start, b)
        if start >= end:
            return True
    return start >= end
