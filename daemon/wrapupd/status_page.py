"""The status page: one self-contained HTML document rendered from a :class:`StatusReport`.

Every value on it comes from the platform or the ledger (queue and code names, details), so each
one is escaped, and the page carries a Content-Security-Policy that allows its own stylesheet
(by hash) and nothing else: no script, no image, no request to anywhere. It reloads itself with a
meta refresh, which needs no script either. Ages ("12 s ago") are computed against the report's
own ``generated_at``, so the same report always renders the same page.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Iterable, Sequence
from datetime import datetime

from wrapupd.status_report import (
    ChannelStatus,
    Check,
    Problem,
    QueueStatus,
    RateBudget,
    RecentOutcome,
    StatusReport,
    age_text,
)

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d232a;background:#f4f6f8}
header{display:flex;align-items:center;gap:16px;padding:14px 24px;background:#1d232a;color:#fff}
header h1{font-size:18px;margin:0;font-weight:600}
header .meta{margin-left:auto;color:#b8c2cc;font-size:12px;text-align:right}
main{padding:16px 24px;display:grid;gap:16px;max-width:1200px}
section{background:#fff;border:1px solid #dde3e9;border-radius:6px;padding:12px 16px}
h2{font-size:15px;margin:0 0 8px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eef1f4;vertical-align:top}
th{font-weight:600;color:#56616c;font-size:12px;text-transform:uppercase;letter-spacing:.03em}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:3px 10px;border-radius:12px;font-weight:700;font-size:13px}
.ready{background:#1f883d;color:#fff}.not-ready{background:#cf222e;color:#fff}
.dry{background:#9a6700;color:#fff}
.ok{color:#1f883d;font-weight:600}.bad{color:#cf222e;font-weight:600}
.problems{border-color:#cf222e;background:#fff5f5}
.problems li{margin:4px 0}.remedy{color:#56616c}
.muted{color:#6e7781}
meter{width:240px;height:14px;vertical-align:middle}
code{font-size:12px}
"""

_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()

CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
"""Sent with the page: only its own stylesheet may apply; nothing may load or run."""


def _e(value: object) -> str:
    """Escaped for HTML text and attribute values alike."""
    return html.escape(str(value), quote=True)


def _when(moment: datetime | None, now: datetime) -> str:
    """The age, with the exact UTC time as a tooltip."""
    if moment is None:
        return '<span class="muted">never</span>'
    return f'<time datetime="{_e(moment.isoformat())}" title="{_e(moment.isoformat())}">{_e(age_text(moment, now))}</time>'


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: frozenset[int]) -> str:
    """A table from already-escaped cells; columns in ``numeric`` are right-aligned."""

    def cls(index: int) -> str:
        return ' class="num"' if index in numeric else ""

    head = "".join(f"<th{cls(i)}>{_e(h)}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f"<td{cls(i)}>{cell}</td>" for i, cell in enumerate(row)) + "</tr>"
        for row in rows
    )
    if not body:
        body = f'<tr><td class="muted" colspan="{len(headers)}">none</td></tr>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _ok(ok: bool, yes: str = "ok", no: str = "failing") -> str:
    return f'<span class="ok">{_e(yes)}</span>' if ok else f'<span class="bad">{_e(no)}</span>'


def _header(report: StatusReport) -> str:
    badge = (
        '<span class="badge ready" id="readiness">READY</span>'
        if report.ready
        else '<span class="badge not-ready" id="readiness">NOT READY</span>'
    )
    dry = ' <span class="badge dry">DRY RUN</span>' if report.dry_run else ""
    now = report.generated_at
    started = f"started {_e(age_text(report.started_at, now))} · " if report.started_at else ""
    return (
        f"<header><h1>wrapupd</h1>{badge}{dry}"
        f'<div class="meta">version {_e(report.version)}<br>{started}'
        f'as of <time datetime="{_e(now.isoformat())}">{_e(now.strftime("%Y-%m-%d %H:%M:%S UTC"))}</time>'
        "</div></header>"
    )


def _problems(problems: Sequence[Problem]) -> str:
    if not problems:
        return ""
    items = "".join(
        f"<li><strong>{_e(p.kind.value.replace('_', ' '))}</strong>: {_e(p.subject)}"
        + (f" — {_e(p.detail)}" if p.detail else "")
        + f'<br><span class="remedy">{_e(p.remedy)}</span></li>'
        for p in problems
    )
    return (
        f'<section class="problems" id="problems"><h2>Needs attention ({len(problems)})</h2>'
        f"<ul>{items}</ul></section>"
    )


def _checks(checks: Sequence[Check]) -> str:
    rows = [(_e(c.name), _ok(c.ok), _e(c.detail)) for c in checks]
    return f'<section id="checks"><h2>Readiness</h2>{_table(("check", "state", "detail"), rows, frozenset())}</section>'


def _channels(channels: Sequence[ChannelStatus], now: datetime) -> str:
    rows = [
        (
            _e(c.shard),
            f"<code>{_e(c.tag)}</code>",
            _ok(c.connected, c.state, c.state),
            _e(c.topics),
            _e(c.rejected_topics),
            _when(c.connected_since, now),
            _when(c.last_frame_at, now),
            _e(c.expires_at.strftime("%Y-%m-%d %H:%M UTC")) if c.expires_at else "",
        )
        for c in channels
    ]
    headers = (
        "shard",
        "channel",
        "socket",
        "topics",
        "rejected",
        "connected",
        "last frame",
        "expires",
    )
    return f'<section id="channels"><h2>Channels and sockets</h2>{_table(headers, rows, frozenset({0, 3, 4}))}</section>'


def _budget(budget: RateBudget) -> str:
    paused = (
        f' · <span class="bad">paused {budget.paused_for_s:.0f} s after a 429</span>'
        if budget.paused_for_s > 0
        else ""
    )
    return (
        f'<section id="budget"><h2>API budget</h2>'
        f'<meter min="0" max="{_e(budget.per_minute)}" value="{_e(budget.used_last_minute)}"></meter> '
        f"<strong>{_e(budget.used_last_minute)}</strong> of {_e(f'{budget.per_minute:g}')} requests in the last minute"
        f" · {_e(budget.waiting)} waiting{paused}</section>"
    )


def _queues(queues: Sequence[QueueStatus], now: datetime) -> str:
    rows = [
        (
            _e(q.name),
            _e(q.default_code),
            _e(f"{q.grace_seconds:g} s"),
            _e(q.pending),
            _e(q.applied_today),
            _when(q.last_applied_at, now),
        )
        for q in queues
    ]
    headers = ("queue", "default code", "grace", "pending", "applied today", "last applied")
    return f'<section id="queues"><h2>Queues ({len(queues)})</h2>{_table(headers, rows, frozenset({2, 3, 4}))}</section>'


def _recent(recent: Sequence[RecentOutcome], now: datetime) -> str:
    rows = [
        (
            _when(r.at, now),
            _e(r.queue),
            f"<code>{_e(r.conversation_id)}</code>",
            _e(r.outcome),
            _e(r.detail),
        )
        for r in recent
    ]
    headers = ("when", "queue", "conversation", "outcome", "detail")
    return f'<section id="recent"><h2>Recent outcomes</h2>{_table(headers, rows, frozenset())}</section>'


def render_page(report: StatusReport, *, refresh_seconds: int) -> str:
    """The whole page; it asks the browser to reload it every ``refresh_seconds``."""
    now = report.generated_at
    title = "wrapupd — ready" if report.ready else "wrapupd — NOT READY"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{int(refresh_seconds)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>"
        f"{_header(report)}<main>"
        f"{_problems(report.problems)}{_checks(report.checks)}{_channels(report.channels, now)}"
        f"{_budget(report.budget)}{_queues(report.queues, now)}{_recent(report.recent, now)}"
        "</main></body></html>"
    )
