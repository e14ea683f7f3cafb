"""``wrapupd check``: authenticate, resolve every queue and its code, and try the topic subscriptions.

It prints one row per configured queue and exits 0 when every row is ok, 78 otherwise, so a
deployment can be validated before the daemon runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from wrapupd import logs
from wrapupd.clock import SystemClock
from wrapupd.code_cache import Directory, find_queue, pick_code
from wrapupd.commands import EX_CONFIG, EX_OK
from wrapupd.commands.ha_check import channel_budget, ledger_row
from wrapupd.errors import ResolutionError
from wrapupd.events import Queue, QueuePolicy, TopicResult
from wrapupd.genesys.client import GenesysClient
from wrapupd.genesys.notifications import queue_id_from_topic, queue_topic
from wrapupd.options import DaemonOptions
from wrapupd.queue_selectors import describe, selected
from wrapupd.ratelimit import RateLimiter
from wrapupd.service import build_client
from wrapupd.settings import Settings


@dataclass(frozen=True, slots=True)
class CheckRow:
    """One configured queue: what it resolved to, and whether that is usable."""

    queue: str
    code: str
    status: str
    ok: bool
    queue_id: str | None = None


@dataclass(frozen=True, slots=True)
class CheckReport:
    """Every row of the check, printable as a table."""

    rows: tuple[CheckRow, ...]

    @property
    def ok(self) -> bool:
        """Every queue and code resolved and every topic permitted."""
        return all(r.ok for r in self.rows)

    def table(self) -> str:
        """The rows as an aligned text table with a verdict line."""
        headers = ("queue", "default code", "status")
        cells = [headers, *((r.queue, r.code, r.status) for r in self.rows)]
        widths = [max(len(row[i]) for row in cells) for i in range(3)]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in cells
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines.append("")
        lines.append("all good" if self.ok else "problems found: see the status column")
        return "\n".join(lines)


async def command(args: argparse.Namespace, settings: Settings) -> int:
    """``wrapupd check``: print the table; exit 0 when all is well, 78 otherwise."""
    report = await check_deployment(settings, on_new_token=logs.add_secret)
    print(report.table())
    return EX_OK if report.ok else EX_CONFIG


async def check_deployment(
    settings: Settings, *, on_new_token: Callable[[str], None] | None = None
) -> CheckReport:
    """Authenticate, resolve every queue and verify its code, and try the topic subscriptions."""
    options = settings.daemon_options()
    client = build_client(options, on_new_token=on_new_token)
    directory = Directory(client, RateLimiter(options.budget_per_minute, clock=SystemClock()))
    try:
        await client.start()
        queues = await directory.queues()
        named = [p for p in options.policies if not p.is_selector]
        rows = [await _check_policy(directory, queues, policy) for policy in named]
        rows += await _selected_rows(directory, queues, options.policies, rows)
        resolved = {r.queue_id: r.queue for r in rows if r.ok and r.queue_id}  # id -> label
        rows = await _check_topics(client, resolved, rows)
        return CheckReport((*rows, *await _deployment_rows(options, len(resolved))))
    finally:
        await client.close()


async def _deployment_rows(options: DaemonOptions, queues: int) -> list[CheckRow]:
    """The ledger (reachable, schema understood) and the channels the queues need."""
    where, status, ok = await ledger_row(options)
    channels, fits = channel_budget(queues, shared=options.ledger_url is not None)
    return [
        CheckRow("(ledger)", where, status, ok),
        CheckRow("(channels)", f"{queues} queues", channels, fits),
    ]


async def _selected_rows(
    directory: Directory,
    queues: Sequence[Queue],
    policies: Sequence[QueuePolicy],
    named: list[CheckRow],
) -> list[CheckRow]:
    """One row per queue a selector picks; one without its default code is skipped, not fatal."""
    selectors = [p for p in policies if p.is_selector]
    taken = [r.queue_id for r in named if r.queue_id]
    rows = []
    for queue, policy in selected(queues, selectors, taken):
        label, how = f"{queue.name} ({queue.id})", describe(policy)
        try:
            code = pick_code(queue, await directory.queue_codes(queue.id), policy.default_code)
        except ResolutionError:
            status = f"skipped ({how}): {policy.default_code!r} is not assigned to this queue"
            rows.append(CheckRow(label, policy.default_code, status, True))
            continue
        rows.append(CheckRow(label, f"{code.name} ({code.id})", f"ok ({how})", True, queue.id))
    return rows


async def _check_policy(
    directory: Directory, queues: Sequence[Queue], policy: QueuePolicy
) -> CheckRow:
    try:
        queue = find_queue(queues, policy.queue)
        code = pick_code(queue, await directory.queue_codes(queue.id), policy.default_code)
    except ResolutionError as exc:
        return CheckRow(policy.queue, policy.default_code, str(exc), False)
    return CheckRow(f"{queue.name} ({queue.id})", f"{code.name} ({code.id})", "ok", True, queue.id)


async def _check_topics(
    client: GenesysClient, resolved: dict[str, str], rows: list[CheckRow]
) -> list[CheckRow]:
    """Subscribe a throw-away channel (ignoreErrors) to learn which topics the role may not see."""
    if not resolved:
        return rows
    channel = await client.create_channel()
    results = await client.subscribe(channel.id, [queue_topic(q) for q in resolved])
    await client.subscribe(channel.id, [])  # leave nothing subscribed behind
    rejected = {queue_id_from_topic(r.topic): r for r in results if not r.permitted}
    return [_with_topic(row, rejected.get(row.queue_id or "")) for row in rows]


def _with_topic(row: CheckRow, rejection: TopicResult | None) -> CheckRow:
    if rejection is None:
        return row
    missing = ", ".join(rejection.missing_permissions) or "unknown"
    status = f"topic rejected ({rejection.rejection_reason}); missing permissions: {missing}"
    return replace(row, status=status, ok=False)
