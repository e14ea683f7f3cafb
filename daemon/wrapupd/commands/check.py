"""``wrapupd check``: authenticate, resolve every queue and its code, try the topic subscriptions
and the reconciliation's analytics query, and find out whether the org accepts this grant's wrap-up
writes.

It prints one row per configured queue and a line on wrap-up writes, and exits 0 when all is
well, 78 otherwise, so a deployment can be validated before the daemon runs.

The write probe is harmless: a wrap-up PATCH on a conversation id that does not exist. A grant
that may write wrap-ups gets 404 (no such conversation); an org that refuses client-credentials
tokens for the write answers its user-context refusal (400 or 403) before looking the
conversation up, and the remedy is the ``authorization_code`` grant.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from wrapupd import logs
from wrapupd.clock import SystemClock
from wrapupd.code_cache import find_queue, pick_code
from wrapupd.commands import EX_CONFIG, EX_OK
from wrapupd.commands.ha_check import channel_budget, ledger_row
from wrapupd.directory import Directory
from wrapupd.errors import Forbidden, NotFound, PlatformError, ResolutionError
from wrapupd.events import Queue, QueuePolicy, TopicResult
from wrapupd.genesys.client import GenesysClient
from wrapupd.genesys.notifications import queue_id_from_topic, queue_topic
from wrapupd.options import DaemonOptions
from wrapupd.parts import build_client
from wrapupd.queue_selectors import describe, selected
from wrapupd.ratelimit import RateLimiter
from wrapupd.reconciler import ReconcilerConfig, query_interval
from wrapupd.retry import USER_CONTEXT_REMEDY
from wrapupd.settings import Settings


@dataclass(frozen=True, slots=True)
class CheckRow:
    """One configured queue: what it resolved to, and whether that is usable."""

    queue: str
    code: str
    status: str
    ok: bool
    queue_id: str | None = None


# A conversation id no org holds (a fixed, random UUID): the probe write can only be refused.
PROBE_CONVERSATION_ID = "0b5e9a7c-6d1f-4c2e-9a3b-7f8e1d2c3b4a"


@dataclass(frozen=True, slots=True)
class WriteProbe:
    """What the probe write said about this grant's wrap-up writes."""

    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class CheckReport:
    """Every row of the check, printable as a table, and the write probe's verdict."""

    rows: tuple[CheckRow, ...]
    writes: WriteProbe | None = None

    @property
    def ok(self) -> bool:
        """Every queue and code resolved, every topic permitted, and writes accepted."""
        return all(r.ok for r in self.rows) and (self.writes is None or self.writes.ok)

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
        if self.writes is not None:
            lines.append(f"wrap-up writes: {self.writes.detail}")
        lines.append("all good" if self.ok else "problems found: see above")
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
        sweep = await _reconciliation_row(client, list(resolved), options.reconciler)
        return CheckReport(
            (*rows, sweep, *await _deployment_rows(options, len(resolved))),
            await probe_wrapup_write(client),
        )
    finally:
        await client.close()


async def _reconciliation_row(
    client: GenesysClient, queue_ids: list[str], config: ReconcilerConfig
) -> CheckRow:
    """The analytics query a sweep makes: without it a socket gap's events are lost for good."""
    start, end = query_interval(datetime.now(UTC), end_lag=0.0, lookback_days=config.lookback_days)
    label = f"{config.lookback_days} days back"
    try:
        found = await client.query_open_conversations(queue_ids, start, end)
    except Forbidden as exc:
        missing = ", ".join(exc.missing_permissions) or "analytics:conversationDetail:view"
        status = f"refused: the role lacks {missing}; events missed in a socket gap are lost"
        return CheckRow("(reconciliation)", label, status, False)
    except PlatformError as exc:
        return CheckRow("(reconciliation)", label, f"analytics query failed: {exc}", False)
    return CheckRow("(reconciliation)", label, f"ok ({len(found)} open conversations)", True)


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


async def probe_wrapup_write(client: GenesysClient) -> WriteProbe:
    """A wrap-up PATCH on a conversation that does not exist: 404 means writes are accepted."""
    try:
        await client.patch_participant_wrapup(
            PROBE_CONVERSATION_ID,
            PROBE_CONVERSATION_ID,
            code_id=PROBE_CONVERSATION_ID,
            code_name=None,
            notes=None,
        )
    except NotFound:
        return WriteProbe(True, f"accepted for this grant ({client.grant.name})")
    except Forbidden as exc:
        return _refused_write(exc)
    except PlatformError as exc:
        return WriteProbe(False, f"could not be probed: {exc}")
    return WriteProbe(False, "the probe on a conversation that does not exist was accepted (?)")


def _refused_write(exc: Forbidden) -> WriteProbe:
    if exc.user_context_required:
        return WriteProbe(
            False,
            "refused: the org requires a user context for wrap-up writes (client credentials "
            f"cannot be used): {exc}. Remedy: {USER_CONTEXT_REMEDY}",
        )
    missing = ", ".join(exc.missing_permissions) or "conversation:participant:wrapup"
    return WriteProbe(False, f"refused: the role lacks {missing}: {exc}")
