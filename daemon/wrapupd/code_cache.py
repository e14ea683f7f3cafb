"""Queue -> default wrap-up code, resolved once at start and refreshed in the background.

The hot path (:meth:`CodeCache.lookup`) never does I/O. Resolution follows the platform's rule that a
code can only be applied on a queue it is assigned to, so codes are looked up among the queue's own
codes, never the org-wide list. A refresh that fails keeps the last good table.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from wrapupd.clock import Clock
from wrapupd.errors import NotFound, PlatformError, ResolutionError
from wrapupd.events import Queue, WrapupCode

log = structlog.get_logger("wrapupd.code_cache")

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_MAX_LISTED = 25


class QueueDirectory(Protocol):
    async def list_queues(self, name: str | None = None) -> list[Queue]: ...
    async def get_queue(self, queue_id: str) -> Queue: ...
    async def list_queue_wrapup_codes(self, queue_id: str) -> list[WrapupCode]: ...


@dataclass(frozen=True, slots=True)
class QueueRule:
    """What the operator configured for one queue (names or ids, as written)."""

    queue: str
    default_code: str
    grace_seconds: float
    timeout_margin_seconds: float
    notes: str | None


@dataclass(frozen=True, slots=True)
class ResolvedQueue:
    queue: Queue
    code: WrapupCode
    grace_seconds: float
    timeout_margin_seconds: float
    notes: str | None

    @property
    def queue_id(self) -> str:
        return self.queue.id


def looks_like_id(value: str) -> bool:
    return bool(_GUID.match(value))


def _listing(names: Sequence[str]) -> str:
    shown = sorted(names)[:_MAX_LISTED]
    more = len(names) - len(shown)
    return ", ".join(repr(n) for n in shown) + (f" and {more} more" if more > 0 else "") or "none"


async def resolve_queue(directory: QueueDirectory, reference: str) -> Queue:
    """Find a queue by id or exact name; raise :class:`ResolutionError` listing what exists."""
    if looks_like_id(reference):
        try:
            return await directory.get_queue(reference)
        except NotFound:
            pass
    matches = [q for q in await directory.list_queues(name=reference) if q.name == reference]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        ids = ", ".join(q.id for q in matches)
        raise ResolutionError(
            f"queue {reference!r} is ambiguous: {len(matches)} queues have that name ({ids}); use the id"
        )
    existing = [q.name for q in await directory.list_queues()]
    raise ResolutionError(
        f"queue {reference!r} not found (by id or exact name); queues this client can see: {_listing(existing)}"
    )


def pick_code(queue: Queue, codes: Sequence[WrapupCode], reference: str) -> WrapupCode:
    """Find the default code among the codes assigned to ``queue``: id, exact name, then unique case-insensitive name."""
    for code in codes:
        if reference in (code.id, code.name):
            return code
    folded = [c for c in codes if c.name.casefold() == reference.casefold()]
    if len(folded) == 1:
        return folded[0]
    raise ResolutionError(
        f"default_code {reference!r} is not assigned to queue {queue.name!r} ({queue.id}); "
        f"codes assigned to it: {_listing([c.name for c in codes])}. "
        "Assign the code to the queue in Genesys Cloud (Admin > Queues > Wrap-up Codes) or pick one of these"
    )


async def resolve_rule(directory: QueueDirectory, rule: QueueRule) -> ResolvedQueue:
    queue = await resolve_queue(directory, rule.queue)
    codes = await directory.list_queue_wrapup_codes(queue.id)
    code = pick_code(queue, codes, rule.default_code)
    return ResolvedQueue(queue, code, rule.grace_seconds, rule.timeout_margin_seconds, rule.notes)


async def resolve_all(
    directory: QueueDirectory, rules: Sequence[QueueRule]
) -> dict[str, ResolvedQueue]:
    """Resolve every rule; report every unresolvable one at once, not just the first."""
    table: dict[str, ResolvedQueue] = {}
    problems: list[str] = []
    for index, rule in enumerate(rules):
        try:
            resolved = await resolve_rule(directory, rule)
        except ResolutionError as exc:
            problems.append(f"queues[{index}]: {exc}")
            continue
        if resolved.queue_id in table:
            problems.append(
                f"queues[{index}]: queue {rule.queue!r} is configured twice (id {resolved.queue_id})"
            )
            continue
        table[resolved.queue_id] = resolved
    if problems:
        raise ResolutionError("\n".join(problems))
    return table


class CodeCache:
    """The resolved table, with a single-flight background refresh."""

    def __init__(
        self, directory: QueueDirectory, rules: Sequence[QueueRule], *, clock: Clock
    ) -> None:
        self._directory = directory
        self._rules = tuple(rules)
        self._clock = clock
        self._table: dict[str, ResolvedQueue] = {}
        self._refreshing: asyncio.Task[dict[str, ResolvedQueue]] | None = None
        self.loaded_at: float | None = None
        self.last_error: str | None = None

    @property
    def loaded(self) -> bool:
        return self.loaded_at is not None

    @property
    def queue_ids(self) -> frozenset[str]:
        return frozenset(self._table)

    def lookup(self, queue_id: str | None) -> ResolvedQueue | None:
        return self._table.get(queue_id) if queue_id else None

    def entries(self) -> list[ResolvedQueue]:
        return list(self._table.values())

    async def load(self) -> None:
        """First resolution: any problem is fatal (start-up stops with the message)."""
        self._install(await resolve_all(self._directory, self._rules))

    async def refresh(self) -> bool:
        """Re-resolve; on any failure keep the last good table. Concurrent callers share one refresh."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(resolve_all(self._directory, self._rules))
        try:
            table = await asyncio.shield(self._refreshing)
        except (ResolutionError, PlatformError) as exc:
            self.last_error = str(exc)
            log.warning("code_table_refresh_failed", error=str(exc), kept_queues=len(self._table))
            return False
        self._install(table)
        return True

    def replace_rules(self, rules: Sequence[QueueRule]) -> None:
        self._rules = tuple(rules)

    def _install(self, table: dict[str, ResolvedQueue]) -> None:
        changed = {
            qid: (r.code.id, r.code.name)
            for qid, r in table.items()
            if (old := self._table.get(qid)) is None or old.code != r.code
        }
        self._table = table
        self.loaded_at = self._clock.monotonic()
        self.last_error = None
        if changed:
            log.info("code_table_loaded", queues=len(table), changed=len(changed))

    async def refresh_forever(self, interval: float) -> None:
        while True:
            await self._clock.sleep(interval)
            await self.refresh()
