"""Queue -> default wrap-up code and policy: resolved at start, verified and refreshed in the
background, reloaded on request.

The hot path (:meth:`CodeCache.lookup`) never does I/O. Resolution follows the platform's rule that a
code can only be applied on a queue it is assigned to, so each default code is verified among the
queue's own codes. Queues come from one listing (not one call per queue), every call is paced by the
shared rate limiter, and a refresh or a reload that fails keeps the table in force.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

import structlog

from wrapupd.clock import Clock
from wrapupd.directory import Directory, QueueDirectory
from wrapupd.errors import PlatformError, ResolutionError
from wrapupd.events import Queue, QueuePolicy, WrapupCode
from wrapupd.metrics import Metrics
from wrapupd.queue_selectors import describe, selected
from wrapupd.ratelimit import Priority, RateLimiter

log = structlog.get_logger("wrapupd.code_cache")

_MAX_LISTED = 25
_MAX_RATE_LIMITED = 20
_VERIFY_RETRY_SECONDS = 30.0
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ResolvedQueue:
    """A configured queue as the platform knows it, with its default code and its policy."""

    queue: Queue
    code: WrapupCode
    policy: QueuePolicy
    verified: bool = True  # the code was seen among the codes assigned to the queue

    @property
    def queue_id(self) -> str:
        """The platform's id of the queue."""
        return self.queue.id


def _listing(names: Sequence[str]) -> str:
    shown = sorted(names)[:_MAX_LISTED]
    more = len(names) - len(shown)
    return ", ".join(repr(n) for n in shown) + (f" and {more} more" if more > 0 else "") or "none"


def find_queue(queues: Sequence[Queue], reference: str) -> Queue:
    """A queue by id or exact name among ``queues``; raise :class:`ResolutionError` listing what exists."""
    matches = [q for q in queues if reference in (q.id, q.name)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        ids = ", ".join(q.id for q in matches)
        raise ResolutionError(
            f"queue {reference!r} is ambiguous: {len(matches)} queues have that name ({ids}); use the id"
        )
    raise ResolutionError(
        f"queue {reference!r} not found (by id or exact name); queues this client can see: {_listing([q.name for q in queues])}"
    )


def pick_code(queue: Queue, codes: Sequence[WrapupCode], reference: str) -> WrapupCode:
    """Find the default code among the codes assigned to ``queue``: id, exact name, then unique case-insensitive name."""
    code = _match_code(codes, reference)
    if code is None:
        raise ResolutionError(
            f"default_code {reference!r} is not assigned to queue {queue.name!r} ({queue.id}); "
            f"codes assigned to it: {_listing([c.name for c in codes])}. "
            "Assign the code to the queue in Genesys Cloud (Admin > Queues > Wrap-up Codes) or pick one of these"
        )
    return code


def _match_code(codes: Sequence[WrapupCode], reference: str) -> WrapupCode | None:
    for code in codes:
        if reference in (code.id, code.name):
            return code
    folded = [c for c in codes if c.name.casefold() == reference.casefold()]
    return folded[0] if len(folded) == 1 else None


async def resolve_all(
    directory: QueueDirectory | Directory,
    policies: Sequence[QueuePolicy],
    *,
    verify: bool = True,
    skipped: list[str] | None = None,
) -> dict[str, ResolvedQueue]:
    """Resolve every policy with one queue listing and one code listing, then (``verify``) check
    each code against the codes assigned to its queue. Every problem of an entry naming a queue is
    reported at once (fatal); queues picked by selectors without their code go to ``skipped``."""
    d = directory if isinstance(directory, Directory) else Directory(directory, None)
    queues = await d.queues()
    org_codes = None if verify else await d.all_codes()
    lookup = _Lookup.of(queues, org_codes)
    table: dict[str, ResolvedQueue] = {}
    problems: list[str] = []
    for index, policy in enumerate(policies):
        if policy.is_selector:
            continue
        try:
            resolved = await _resolve_policy(d, lookup, policy, verify=verify)
        except ResolutionError as exc:
            problems.append(f"queues[{index}]: {exc}")
            continue
        if resolved.queue_id in table:
            problems.append(
                f"queues[{index}]: queue {policy.queue!r} is configured twice (id {resolved.queue_id})"
            )
            continue
        table[resolved.queue_id] = resolved
    if problems:
        raise ResolutionError("\n".join(problems))
    selectors = [p for p in policies if p.is_selector]
    found = await _resolve_selected(d, lookup, selectors, table, verify=verify)
    if skipped is not None:
        skipped[:] = found
    return table


def _by_reference(items: Sequence[T], *keys: Callable[[T], str]) -> dict[str, list[T]]:
    """Each item under each of its keys, in listing order."""
    index: dict[str, list[T]] = {}
    for item in items:
        for key in {key_of(item) for key_of in keys}:
            index.setdefault(key, []).append(item)
    return index


@dataclass(frozen=True)
class _Lookup:
    """The listings indexed once, so resolving N policies is not N scans of N queues (quadratic:
    ~50 s at 10,000 queues): each lookup narrows a listing to the candidates a full scan would match."""

    queues: Sequence[Queue]
    org_codes: Sequence[WrapupCode] | None
    queue_refs: dict[str, list[Queue]]
    code_refs: dict[str, list[WrapupCode]]
    code_folded: dict[str, list[WrapupCode]]

    @classmethod
    def of(cls, queues: Sequence[Queue], org_codes: Sequence[WrapupCode] | None) -> _Lookup:
        codes = org_codes or ()
        return cls(
            queues,
            org_codes,
            _by_reference(queues, lambda q: q.id, lambda q: q.name),
            _by_reference(codes, lambda c: c.id, lambda c: c.name),
            _by_reference(codes, lambda c: c.name.casefold()),
        )

    def queue(self, reference: str) -> Queue:
        return find_queue(self.queue_refs.get(reference) or self.queues, reference)

    def org_code(self, reference: str) -> WrapupCode | None:
        exact = self.code_refs.get(reference)
        return _match_code(exact or self.code_folded.get(reference.casefold(), []), reference)


async def _resolve_selected(
    d: Directory,
    lookup: _Lookup,
    selectors: Sequence[QueuePolicy],
    table: dict[str, ResolvedQueue],
    *,
    verify: bool,
) -> list[str]:
    """Add the queues the selectors pick; those without their default code are skipped, reported."""
    skipped = []
    for queue, policy in selected(lookup.queues, selectors, table):
        try:
            table[queue.id] = await _resolve_policy(
                d, lookup, replace(policy, queue=queue.id), verify=verify
            )
        except ResolutionError:
            skipped.append(
                f"queue {queue.name!r} ({queue.id}), selected by {describe(policy)}: default_code"
                f" {policy.default_code!r} is not assigned to it; skipped"
            )
    return skipped


async def _resolve_policy(
    d: Directory, lookup: _Lookup, policy: QueuePolicy, *, verify: bool
) -> ResolvedQueue:
    queue = lookup.queue(policy.queue)
    org_codes = lookup.org_codes
    if verify or org_codes is None:
        code = pick_code(queue, await d.queue_codes(queue.id), policy.default_code)
        return ResolvedQueue(queue, code, policy, verified=True)
    found = lookup.org_code(policy.default_code)
    if found is None:
        raise ResolutionError(
            f"default_code {policy.default_code!r} for queue {queue.name!r}: no wrap-up code with that id or name "
            f"exists in the org; codes: {_listing([c.name for c in org_codes])}"
        )
    return ResolvedQueue(queue, found, policy, verified=False)


async def verify_assignments(
    d: Directory, table: dict[str, ResolvedQueue]
) -> tuple[dict[str, ResolvedQueue], list[str]]:
    """Check each not-yet-verified entry against its queue's assigned codes; drop and report the bad ones."""
    checked: dict[str, ResolvedQueue] = {}
    problems: list[str] = []
    for queue_id, entry in table.items():
        if entry.verified:
            checked[queue_id] = entry
            continue
        try:
            code = pick_code(entry.queue, await d.queue_codes(queue_id), entry.code.id)
        except ResolutionError as exc:
            problems.append(str(exc))
            continue
        checked[queue_id] = replace(entry, code=code, verified=True)
    return checked, problems


class CodeCache:
    """The resolved table, with a single-flight background refresh, verification and reload.

    Small tables are fully verified before start-up completes (an unassigned code stops it). Above
    ``verify_at_start_max`` queues, verifying each queue's codes would hold start-up for minutes of
    rate budget, so names are resolved from two org-wide listings, the daemon goes ready, and each
    assignment is verified in the background at background priority; until then the platform's own
    refusal of an unassigned code (reported as ``invalid_code``) is the safety net.
    """

    def __init__(
        self,
        directory: QueueDirectory,
        policies: Sequence[QueuePolicy],
        *,
        clock: Clock,
        metrics: Metrics,
        limiter: RateLimiter | None = None,
        verify_at_start_max: int = 50,
        refresh_seconds: float = 300.0,
    ) -> None:
        self._start = Directory(directory, limiter, Priority.LIVE)
        self._background = Directory(directory, limiter, Priority.BACKGROUND)
        self._policies = tuple(policies)
        self._clock = clock
        self._metrics = metrics
        self._verify_at_start_max = verify_at_start_max
        self._refresh_seconds = refresh_seconds
        self._table: dict[str, ResolvedQueue] = {}
        self._queue_ids: frozenset[str] = frozenset()
        self._refreshing: asyncio.Task[dict[str, ResolvedQueue]] | None = None
        self.loaded = False
        self.problems: list[str] = []
        self.skipped: list[str] = []
        self._reported: set[str] = set()
        self._refresh_skipped: list[str] = []

    @property
    def verified(self) -> bool:
        """Every entry's code was seen among the codes assigned to its queue."""
        return all(e.verified for e in self._table.values())

    @property
    def queue_ids(self) -> frozenset[str]:
        """The watched queues (the hot path tests membership in this set)."""
        return self._queue_ids

    def lookup(self, queue_id: str | None) -> ResolvedQueue | None:
        """The entry of a watched queue, without I/O; None for any other queue."""
        return self._table.get(queue_id) if queue_id else None

    def entries(self) -> list[ResolvedQueue]:
        """Every entry of the table in force."""
        return list(self._table.values())

    def _verify_now(self, policies: Sequence[QueuePolicy]) -> bool:
        return len(policies) <= self._verify_at_start_max

    async def load(self) -> None:
        """First resolution: a problem with a named queue is fatal (start-up stops with the
        message); a selected queue without its code is skipped and reported."""
        policies, skipped = self._policies, list[str]()
        verify = self._verify_now(policies)
        self.install(await resolve_all(self._start, policies, verify=verify, skipped=skipped))
        self._report_skipped(skipped)

    def _report_skipped(self, skipped: list[str]) -> None:
        """A log line once per skipped queue, the count as a metric, the list for ``check``."""
        for problem in skipped:
            if problem not in self._reported:
                log.error("queue_without_default_code", error=problem)
        self._reported = set(skipped)
        self.skipped = list(skipped)
        self._metrics.queues_skipped(len(skipped))

    async def run(self) -> None:
        """Background job: verify what start-up could not, and refresh periodically, until cancelled."""
        async with asyncio.TaskGroup() as group:
            if not self.verified:
                group.create_task(self._verify_until_done())
            group.create_task(self._refresh_forever())

    async def _verify_until_done(self) -> None:
        while not self.verified:
            try:
                await self.verify()
            except PlatformError as exc:
                log.warning("code_verify_failed", error=str(exc), retry_in_s=_VERIFY_RETRY_SECONDS)
                await self._clock.sleep(_VERIFY_RETRY_SECONDS)
        log.info("code_table_verified", queues=len(self._table), dropped=len(self.problems))

    async def _refresh_forever(self) -> None:
        while True:
            await self._clock.sleep(self._refresh_seconds)
            await self.refresh()

    async def verify(self) -> list[str]:
        """Verify what start-up could not (large tables); drop and report codes not assigned to their queue."""
        if self.verified:
            return []
        table, problems = await verify_assignments(self._background, dict(self._table))
        for problem in problems:
            log.error(
                "code_not_assigned",
                error=problem,
                hint="the queue is not watched until this is fixed",
            )
        self.problems = problems
        self.install(table)
        return problems

    async def refresh(self) -> bool:
        """Re-resolve; on any failure keep the last good table. Concurrent callers share one refresh."""
        if self._refreshing is None or self._refreshing.done():
            policies = self._policies  # large tables: listings only
            self._refreshing = asyncio.create_task(
                resolve_all(
                    self._background,
                    policies,
                    verify=self._verify_now(policies),
                    skipped=self._refresh_skipped,
                )
            )
        try:
            table = await asyncio.shield(self._refreshing)
        except (ResolutionError, PlatformError) as exc:
            log.warning("code_table_refresh_failed", error=str(exc), kept_queues=len(self._table))
            return False
        self.install(table)
        self._report_skipped(self._refresh_skipped)
        return True

    async def reload(self, policies: Sequence[QueuePolicy]) -> None:
        """Re-resolve with new policies; on any problem the table in force stays and the error is raised.

        The watched queues cannot change here: topics are fixed per channel."""
        table = await resolve_all(self._background, policies, verify=self._verify_now(policies))
        if set(table) != set(self._table):
            raise ResolutionError(
                "the set of watched queues changed; topics are fixed per channel, restart wrapupd to apply it "
                f"(was {len(self._table)} queues, now {len(table)})"
            )
        self._policies = tuple(policies)
        self.install(table)
        log.info("code_table_reloaded", queues=len(table))

    def _keep_verified(self, entry: ResolvedQueue) -> ResolvedQueue:
        old = self._table.get(entry.queue_id)
        if not entry.verified and old is not None and old.verified and old.code.id == entry.code.id:
            return replace(entry, verified=True)
        return entry

    def install(self, table: dict[str, ResolvedQueue]) -> None:
        """Put a resolved table in force (an entry verified before stays verified)."""
        table = {qid: self._keep_verified(entry) for qid, entry in table.items()}
        changed = {
            qid: (r.code.id, r.code.name)
            for qid, r in table.items()
            if (old := self._table.get(qid)) is None or old.code != r.code
        }
        self._table = table
        self._queue_ids = frozenset(table)
        self.loaded = True
        self._metrics.code_table_loaded(self._clock.now().timestamp())
        if changed:
            log.info(
                "code_table_loaded", queues=len(table), changed=len(changed), verified=self.verified
            )
