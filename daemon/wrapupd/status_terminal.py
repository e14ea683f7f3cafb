"""``wrapupd status``: the status page's facts as plain text tables, for an ssh session.

It reads ``/status.json`` from a running daemon's health listener (never the ledger or the
platform), so it shows exactly what the page shows. Values come from the platform, so control
characters are replaced before they reach the terminal: a queue named with an escape sequence
must not repaint the operator's screen.

Exit codes: 0 when the daemon is ready, 1 when it answers but is not ready or has problems to act
on, 69 (EX_UNAVAILABLE) when it cannot be reached or does not answer with a status document.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import TextIO
from urllib.parse import urlsplit, urlunsplit

from wrapupd.status_report import StatusReport, age_text, report_from_json

EX_OK = 0
EX_NOT_READY = 1
EX_UNAVAILABLE = 69
DEFAULT_TIMEOUT_S = 5.0
MAX_DOCUMENT_BYTES = 4 * 1024 * 1024


class StatusUnavailable(Exception):
    """The daemon could not be reached, or did not answer with a status document."""


def status_url(host: str, port: int) -> str:
    """The ``/status.json`` URL for a ``[http] listen`` address; a wildcard host means loopback."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/status.json"


def _document_url(url: str) -> str:
    """``http://h:p`` and ``http://h:p/`` mean the listener: ask it for ``/status.json``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise StatusUnavailable(f"not an http(s) URL: {url!r}")
    path = parts.path if parts.path.endswith("/status.json") else "/status.json"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def fetch_report(url: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> StatusReport:
    """Read the report from a running daemon; raises :class:`StatusUnavailable`."""
    target = _document_url(url)
    try:
        with urllib.request.urlopen(target, timeout=timeout) as response:
            body = response.read(MAX_DOCUMENT_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise StatusUnavailable(f"{target} answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StatusUnavailable(f"{target} unreachable: {reason}") from None
    if len(body) > MAX_DOCUMENT_BYTES:
        raise StatusUnavailable(f"{target} sent more than {MAX_DOCUMENT_BYTES} bytes")
    try:
        return report_from_json(json.loads(body))
    except ValueError as exc:
        raise StatusUnavailable(f"{target} did not send a status document ({exc})") from None


def _clean(value: object) -> str:
    """Printable text only: control characters become ``?``."""
    return "".join(ch if ch.isprintable() else "?" for ch in str(value))


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """Left-aligned columns as wide as their widest cell, two spaces apart."""
    cells = [[_clean(h) for h in headers], *([_clean(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return lines if rows else [*lines, "(none)"]


def _summary(report: StatusReport) -> list[str]:
    state = "READY" if report.ready else "NOT READY"
    dry = "  (dry run)" if report.dry_run else ""
    started = (
        f", started {age_text(report.started_at, report.generated_at)}" if report.started_at else ""
    )
    b = report.budget
    paused = f", paused {b.paused_for_s:.0f} s after a 429" if b.paused_for_s > 0 else ""
    return [
        f"wrapupd {_clean(report.version)}: {state}{dry}{started}",
        f"as of {report.generated_at.strftime('%Y-%m-%d %H:%M:%S UTC')}",
        f"API budget: {b.used_last_minute} of {b.per_minute:g} requests in the last minute, {b.waiting} waiting{paused}",
    ]


def _problems(report: StatusReport) -> list[str]:
    if not report.problems:
        return []
    lines = [f"NEEDS ATTENTION ({len(report.problems)})"]
    for p in report.problems:
        detail = f" - {_clean(p.detail)}" if p.detail else ""
        lines += [f"  * {p.kind.value}: {_clean(p.subject)}{detail}", f"    -> {p.remedy}"]
    return lines


def _sections(report: StatusReport) -> list[tuple[str, list[str]]]:
    now = report.generated_at
    checks = format_table(
        ("check", "state", "detail"),
        [(c.name, "ok" if c.ok else "FAILING", c.detail) for c in report.checks],
    )
    channels = format_table(
        ("shard", "channel", "socket", "topics", "rejected", "last frame"),
        [
            (c.shard, c.tag, c.state, c.topics, c.rejected_topics, age_text(c.last_frame_at, now))
            for c in report.channels
        ],
    )
    queues = format_table(
        ("queue", "default code", "grace", "pending", "applied today", "last applied"),
        [
            (
                q.name,
                q.default_code,
                f"{q.grace_seconds:g} s",
                q.pending,
                q.applied_today,
                age_text(q.last_applied_at, now),
            )
            for q in report.queues
        ],
    )
    recent = format_table(
        ("when", "queue", "conversation", "outcome", "detail"),
        [
            (age_text(r.at, now), r.queue, r.conversation_id, r.outcome, r.detail)
            for r in report.recent
        ],
    )
    return [
        ("Readiness", checks),
        ("Channels", channels),
        ("Queues", queues),
        ("Recent outcomes", recent),
    ]


def render_report(report: StatusReport) -> str:
    """The whole report as text: summary, problems first, then one table per section."""
    lines = _summary(report)
    problems = _problems(report)
    if problems:
        lines += ["", *problems]
    for title, table in _sections(report):
        lines += ["", title, *(f"  {line}" for line in table)]
    return "\n".join(lines) + "\n"


def exit_code(report: StatusReport) -> int:
    """0 when ready with nothing to act on, else 1."""
    return EX_OK if report.ready and not report.problems else EX_NOT_READY


def run_status(url: str, *, out: TextIO, err: TextIO, timeout: float = DEFAULT_TIMEOUT_S) -> int:
    """``wrapupd status``: fetch, print the tables to ``out``; returns the exit code."""
    try:
        report = fetch_report(url, timeout=timeout)
    except StatusUnavailable as exc:
        err.write(f"wrapupd status: {_clean(exc)}\n")
        return EX_UNAVAILABLE
    out.write(render_report(report))
    return exit_code(report)
