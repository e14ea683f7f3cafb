"""Wiring and lifecycle of the daemon.

Start order (one log line per phase): auth -> code table -> ledger (+ resume) -> health endpoint ->
subscriber connected and subscribed -> READY. Shutdown: STOPPING, stop intake, close the socket,
let in-flight writes finish within the drain deadline, keep the rest in the ledger, close.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

import structlog
from prometheus_client import CollectorRegistry

from wrapupd import __version__
from wrapupd.applier import Applier, ApplierConfig
from wrapupd.clock import Clock, SystemClock
from wrapupd.code_cache import (
    CodeCache,
    Directory,
    QueueRule,
    find_queue,
    pick_code,
    resolve_all,
)
from wrapupd.detector import decide
from wrapupd.errors import PlatformError, ResolutionError
from wrapupd.events import ConversationEvent, ConversationSnapshot, Queue, TopicResult
from wrapupd.genesys.client import GenesysClient, Timeouts
from wrapupd.health import HealthServer
from wrapupd.ledger import Ledger, open_ledger
from wrapupd.metrics import Metrics
from wrapupd.oneshot import OneShotResult, apply_once
from wrapupd.ratelimit import Priority, RateLimiter
from wrapupd.reconciler import Reconciler, ReconcilerConfig
from wrapupd.sdnotify import Notifier, WatchdogPinger
from wrapupd.settings import Settings
from wrapupd.subscriber import Subscriber, SubscriberConfig

log = structlog.get_logger("wrapupd.service")

KNOWN_CONVERSATIONS_CAP = 50_000
LEDGER_FILE = "wrapupd.sqlite3"


@dataclass(frozen=True, slots=True)
class DaemonOptions:
    """Everything the daemon needs, as plain values (built from the settings by the CLI)."""

    api_host: str
    client_id: str
    client_secret: str
    rules: tuple[QueueRule, ...]
    state_dir: Path
    listen: tuple[str, int] | None = ("127.0.0.1", 9464)
    dry_run: bool = False
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    budget_per_minute: float = 270.0
    rate_limit_per_minute: float = 300.0
    token_renew_margin: float = 300.0
    code_refresh_seconds: float = 300.0
    verify_codes_at_start_max: int = 50
    drain_seconds: float = 20.0
    retention_days: float = 14.0
    subscriber: SubscriberConfig = field(default_factory=SubscriberConfig)
    applier: ApplierConfig = field(default_factory=ApplierConfig)
    reconciler: ReconcilerConfig = field(default_factory=ReconcilerConfig)


class Daemon:
    def __init__(
        self,
        options: DaemonOptions,
        *,
        clock: Clock | None = None,
        notifier: Notifier | None = None,
        registry: CollectorRegistry | None = None,
        on_new_token: Callable[[str], None] | None = None,
    ) -> None:
        self.options = options
        self.clock = clock or SystemClock()
        self.notifier = notifier or Notifier()
        self.metrics = Metrics(registry or CollectorRegistry(), version=__version__)
        self.client = GenesysClient(
            api_host=options.api_host,
            client_id=options.client_id,
            client_secret=options.client_secret,
            timeouts=Timeouts(connect=options.connect_timeout, read=options.read_timeout),
            max_workers=max(4, options.applier.workers * 2),
            renew_margin_seconds=options.token_renew_margin,
            clock=self.clock,
            on_response=self.metrics.api_response,
            on_new_token=on_new_token,
            on_rate_limit=self._observe_rate_limit,
        )
        self.limiter = RateLimiter(options.budget_per_minute, clock=self.clock)
        self.codes = CodeCache(
            self.client,
            options.rules,
            clock=self.clock,
            limiter=self.limiter,
            verify_at_start_max=options.verify_codes_at_start_max,
        )
        self.ledger: Ledger | None = None
        self.subscriber: Subscriber | None = None
        self.applier: Applier | None = None
        self.reconciler: Reconciler | None = None
        self.health: HealthServer | None = None
        self.health_address: tuple[str, int] | None = None
        self._known: OrderedDict[str, int] = OrderedDict()
        self._tasks: list[asyncio.Task[None]] = []  # run until stop; one ending is a failure
        self._oneshots: list[asyncio.Task[None]] = []  # finish on their own
        self._watched: frozenset[str] = frozenset()

    # --- start -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bring every part up; returns once the socket is connected and subscribed."""
        log.info(
            "starting",
            version=__version__,
            api_host=self.options.api_host,
            dry_run=self.options.dry_run,
        )
        await self.client.start()
        log.info("authenticated", token_expires_at=_iso(self.client.token_expires_at))
        await self.codes.load()
        self._watched = self.codes.queue_ids
        self.metrics.code_table_loaded(self.clock.now().timestamp())
        for entry in self.codes.entries():
            log.info(
                "queue_watched",
                queue=entry.queue.name,
                queue_id=entry.queue_id,
                code=entry.code.name,
                code_id=entry.code.id,
                grace_s=entry.grace_seconds,
                acw=entry.queue.wrapup_prompt,
            )
        await self._open_ledger()
        self._build_parts()
        assert self.applier is not None and self.subscriber is not None
        self.applier.resume()
        await self._start_health()
        self._spawn_background()
        await self.subscriber.ready.wait()
        assert self.reconciler is not None
        self.reconciler.request("startup")
        _freeze_startup_objects()
        self.notifier.ready()
        self.notifier.status(f"watching {len(self._watched)} queues")
        log.info("ready", queues=len(self._watched), pending=self.applier.pending_count)

    async def _open_ledger(self) -> None:
        path = self.options.state_dir / LEDGER_FILE
        with contextlib.suppress(OSError):  # the ledger explains a directory it cannot use
            self.options.state_dir.mkdir(parents=True, exist_ok=True)
        self.ledger = await open_ledger(path, clock=self.clock)
        purged = await self.ledger.purge(
            self.clock.now() - timedelta(days=self.options.retention_days)
        )
        log.info("ledger_opened", path=str(path), purged=purged)

    def _build_parts(self) -> None:
        assert self.ledger is not None
        self.subscriber = Subscriber(
            api=self.client,
            queue_ids=sorted(self._watched),
            on_event=self._on_event,
            on_gap=self._on_gap,
            metrics=self.metrics,
            clock=self.clock,
            config=self.options.subscriber,
            on_state=self.notifier.status,
        )
        self.applier = Applier(
            client=self.client,
            ledger=self.ledger,
            lookup=self.codes.lookup,
            continuity=self.subscriber,
            limiter=self.limiter,
            metrics=self.metrics,
            clock=self.clock,
            config=self.options.applier,
        )
        self.reconciler = Reconciler(
            finder=self.client,
            queue_ids=lambda: sorted(self._watched),
            on_snapshot=self._on_rest_snapshot,
            known_since_gap=self._known_since_gap,
            limiter=self.limiter,
            metrics=self.metrics,
            clock=self.clock,
            config=self.options.reconciler,
        )

    async def _start_health(self) -> None:
        if self.options.listen is None:
            return
        host, port = self.options.listen
        self.health = HealthServer(host, port, readiness=self.readiness, metrics=self.metrics)
        self.health_address = await self.health.start()
        log.info("health_listening", address=f"{self.health_address[0]}:{self.health_address[1]}")

    def _spawn_background(self) -> None:
        assert self.subscriber and self.applier and self.reconciler
        jobs: dict[str, Awaitable[None]] = {
            "subscriber": self.subscriber.run(),
            "applier": self.applier.run(),
            "reconciler": self.reconciler.run(),
            "code_refresh": self._refresh_codes_forever(),
            "token_keeper": self._keep_token_fresh(),
            "ledger_purge": self._purge_forever(),
        }
        if self.notifier.watchdog_interval() is not None:
            pinger = WatchdogPinger(self.notifier, clock=self.clock, is_healthy=self._healthy)
            jobs["watchdog"] = pinger.run()
        for name, job in jobs.items():
            self._tasks.append(asyncio.create_task(_supervised(name, job), name=name))
        if not self.codes.verified:
            self._oneshots.append(
                asyncio.create_task(_supervised("code_verify", self._verify_codes()))
            )

    def _observe_rate_limit(self, count: int, allowed: int, reset_in: float) -> None:
        """Keep our share of the platform's window (the reserve stays free for other tools), one
        request short of it for a response still on its way."""
        share = min(1.0, self.options.budget_per_minute / self.options.rate_limit_per_minute)
        self.limiter.observe(allowed * share - count - 1, reset_in)

    # --- events ------------------------------------------------------------------------------

    def _on_event(self, event: ConversationEvent, epoch: int) -> None:
        conversation = event.conversation
        self._remember(conversation.id, epoch)
        decisions = decide(conversation, self._watched)
        if decisions and self.applier is not None:
            self.applier.submit(decisions, epoch=epoch)

    def _on_rest_snapshot(self, snapshot: ConversationSnapshot) -> None:
        assert self.subscriber is not None and self.applier is not None
        decisions = decide(snapshot, self._watched)
        if decisions:
            before = self.applier.pending_count
            self.applier.submit(
                decisions, epoch=self.subscriber.epoch if self.subscriber.connected else None
            )
            self.metrics.reconcile_found(max(0, self.applier.pending_count - before))

    def _on_gap(self, reason: str) -> None:
        self._known.clear()
        if self.reconciler is not None:
            self.reconciler.request(reason)

    def _remember(self, conversation_id: str, epoch: int) -> None:
        self._known[conversation_id] = epoch
        self._known.move_to_end(conversation_id)
        if len(self._known) > KNOWN_CONVERSATIONS_CAP:
            self._known.popitem(last=False)

    def _known_since_gap(self, conversation_id: str) -> bool:
        return (
            self.subscriber is not None
            and self._known.get(conversation_id) == self.subscriber.epoch
        )

    # --- background jobs ---------------------------------------------------------------------

    async def _verify_codes(self) -> None:
        """Large tables: verify each queue's default code in the background (a one-off job)."""
        while not self.codes.verified:
            try:
                await self.codes.verify()
            except PlatformError as exc:
                log.warning("code_verify_failed", error=str(exc), retry_in_s=30)
                await self.clock.sleep(30)
        self._watched = self.codes.queue_ids
        log.info("code_table_verified", queues=len(self._watched), dropped=len(self.codes.problems))

    async def _refresh_codes_forever(self) -> None:
        while True:
            await self.clock.sleep(self.options.code_refresh_seconds)
            if await self.codes.refresh():
                self.metrics.code_table_loaded(self.clock.now().timestamp())

    async def _keep_token_fresh(self) -> None:
        """Renew before expiry even when no API call is due: the channel dies with its token."""
        while True:
            expires = self.client.token_expires_at
            if expires is None:
                await self.clock.sleep(5)
                continue
            lifetime_left = (expires - self.clock.now()).total_seconds()
            wait = max(0.0, lifetime_left - min(self.options.token_renew_margin, lifetime_left / 2))
            await self.clock.sleep(wait)
            try:
                await self.client.renew_token()
                log.info("token_renewed", expires_at=_iso(self.client.token_expires_at))
            except PlatformError as exc:
                log.warning("token_renew_failed", error=str(exc))
                await self.clock.sleep(5)

    async def _purge_forever(self) -> None:
        while True:
            await self.clock.sleep(3600)
            if self.ledger is not None:
                await self.ledger.purge(
                    self.clock.now() - timedelta(days=self.options.retention_days)
                )

    # --- health ------------------------------------------------------------------------------

    def readiness(self) -> Mapping[str, tuple[bool, str]]:
        sub = self.subscriber
        expires = self.client.token_expires_at
        token_ok = expires is not None and expires > self.clock.now()
        age = sub.heartbeat_age() if sub else None
        fresh_limit = (
            self.options.subscriber.heartbeat_timeout + self.options.subscriber.ping_timeout
        )
        rejected = sub.rejected_topics if sub else []
        return {
            "token": (token_ok, f"expires {_iso(expires)}" if expires else "no token"),
            "socket": (
                bool(sub and sub.connected),
                "connected" if sub and sub.connected else "disconnected",
            ),
            "heartbeat": self._heartbeat_check(age, fresh_limit),
            "codes": (self.codes.loaded, self._codes_detail()),
            "subscriptions": (
                not rejected,
                "all permitted" if not rejected else ", ".join(r.topic for r in rejected),
            ),
        }

    def _codes_detail(self) -> str:
        if not self.codes.loaded:
            return "not loaded"
        verified = "verified" if self.codes.verified else "assignments being verified"
        problems = (
            f"; {len(self.codes.problems)} dropped (code_not_assigned)"
            if self.codes.problems
            else ""
        )
        return f"{len(self.codes.queue_ids)} queues, {verified}{problems}"

    def _heartbeat_check(self, age: float | None, limit: float) -> tuple[bool, str]:
        """Fresh when a frame arrived within the limit; a socket just opened counts as fresh."""
        sub = self.subscriber
        if age is None:
            connected = bool(sub and sub.connected)
            return connected, "connected, no frame yet" if connected else "never"
        return age <= limit, f"last frame {age:.1f}s ago"

    def _healthy(self) -> bool:
        sub = self.subscriber
        if sub is None or sub.last_frame_at is None:
            return True  # still starting: systemd's start timeout covers this phase
        age = sub.heartbeat_age() or 0.0
        return age <= 3 * self.options.subscriber.heartbeat_timeout

    # --- reload and shutdown -----------------------------------------------------------------

    async def reload(self, rules: Sequence[QueueRule]) -> None:
        """Re-resolve queues and codes; on any problem the old table stays and the error is raised."""
        self.notifier.reloading()
        try:
            directory = Directory(self.client, self.limiter, Priority.BACKGROUND)
            verify = len(rules) <= self.options.verify_codes_at_start_max
            table = await resolve_all(directory, rules, verify=verify)
            if set(table) != set(self._watched):
                raise ResolutionError(
                    "the set of watched queues changed; topics are fixed per channel, restart wrapupd to apply it "
                    f"(was {len(self._watched)} queues, now {len(table)})"
                )
            self.codes.replace_rules(rules)
            self.codes.install(table)
            log.info("reloaded", queues=len(table))
        finally:
            self.notifier.ready()

    async def stop(self) -> None:
        self.notifier.stopping()
        self.notifier.status("draining")
        log.info("stopping", pending=self.applier.pending_count if self.applier else 0)
        if self.applier is not None:
            self.applier.stop_intake()
        if self.subscriber is not None:
            self.subscriber.stop()
        drained = True
        if self.applier is not None:
            drained = await self.applier.drain(self.options.drain_seconds)
        for task in self._tasks + self._oneshots:
            task.cancel()
        for task in self._tasks + self._oneshots:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.health is not None:
            await self.health.stop()
        await self.client.close()
        pending = self.applier.pending_count if self.applier else 0
        if self.ledger is not None:
            await self.ledger.close()
        log.info("stopped", drained=drained, pending_kept=pending)

    async def wait_failed(self) -> str:
        """Returns the name of the first background job that ended (which must not happen)."""
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
        return next(iter(done)).get_name()


def _freeze_startup_objects() -> None:
    """Move everything alive after start-up (the SDK's ~200 MB of modules and models) out of the
    collector's reach, so that a full collection during a burst of events does not stall writes."""
    gc.collect()
    gc.freeze()


async def _supervised(name: str, job: Awaitable[None]) -> None:
    try:
        await job
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("background_job_crashed", job=name)
        raise


def _iso(value: object) -> str | None:
    return value.isoformat() if value is not None and hasattr(value, "isoformat") else None


# --- from settings to plain values ---------------------------------------------------------------


def rules_from_settings(settings: Settings) -> tuple[QueueRule, ...]:
    return tuple(
        QueueRule(
            queue=p.queue,
            default_code=p.default_code,
            grace_seconds=p.grace_seconds,
            timeout_margin_seconds=p.timeout_margin_seconds,
            notes=p.notes,
        )
        for p in settings.queue_policies()
    )


def options_from_settings(settings: Settings) -> DaemonOptions:
    g, d = settings.genesys, settings.daemon
    return DaemonOptions(
        api_host=settings.api_host,
        client_id=g.client_id,
        client_secret=g.client_secret.get_secret_value(),
        rules=rules_from_settings(settings),
        state_dir=d.state_dir,
        listen=(settings.http.host, settings.http.port),
        dry_run=d.dry_run,
        connect_timeout=g.connect_timeout_seconds,
        read_timeout=g.read_timeout_seconds,
        budget_per_minute=g.rate_budget_per_minute,
        rate_limit_per_minute=g.rate_limit_per_minute,
        token_renew_margin=g.token_renew_margin_seconds,
        code_refresh_seconds=d.code_refresh_seconds,
        drain_seconds=d.drain_seconds,
        retention_days=d.retention_days,
        subscriber=SubscriberConfig(
            heartbeat_timeout=d.heartbeat_timeout_seconds, renew_interval=d.channel_renew_seconds
        ),
        applier=ApplierConfig(dry_run=d.dry_run, workers=d.workers, max_attempts=d.max_attempts),
        reconciler=ReconcilerConfig(interval=d.reconcile_interval_seconds),
    )


def client_for(
    options: DaemonOptions, *, on_new_token: Callable[[str], None] | None = None
) -> GenesysClient:
    return GenesysClient(
        api_host=options.api_host,
        client_id=options.client_id,
        client_secret=options.client_secret,
        timeouts=Timeouts(connect=options.connect_timeout, read=options.read_timeout),
        renew_margin_seconds=options.token_renew_margin,
        on_new_token=on_new_token,
    )


# --- `wrapupd check` -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckRow:
    queue: str
    code: str
    status: str
    ok: bool
    queue_id: str | None = None


@dataclass(frozen=True, slots=True)
class CheckReport:
    rows: tuple[CheckRow, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    def table(self) -> str:
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


async def check_deployment(
    settings: Settings, *, on_new_token: Callable[[str], None] | None = None
) -> CheckReport:
    """Authenticate, resolve every queue and verify its code, and try the topic subscriptions."""
    options = options_from_settings(settings)
    client = client_for(options, on_new_token=on_new_token)
    directory = Directory(client, RateLimiter(options.budget_per_minute, clock=SystemClock()))
    try:
        await client.start()
        queues = await directory.queues()
        rows = [await _check_rule(directory, queues, rule) for rule in options.rules]
        resolved = {r.queue_id: r.queue for r in rows if r.ok and r.queue_id}  # id -> label
        return CheckReport(tuple(await _check_topics(client, resolved, rows)))
    finally:
        await client.close()


async def _check_rule(directory: Directory, queues: Sequence[Queue], rule: QueueRule) -> CheckRow:
    try:
        queue = find_queue(queues, rule.queue)
        code = pick_code(queue, await directory.queue_codes(queue.id), rule.default_code)
    except ResolutionError as exc:
        return CheckRow(rule.queue, rule.default_code, str(exc), False)
    return CheckRow(f"{queue.name} ({queue.id})", f"{code.name} ({code.id})", "ok", True, queue.id)


async def _check_topics(
    client: GenesysClient, resolved: dict[str, str], rows: list[CheckRow]
) -> list[CheckRow]:
    """Subscribe a throw-away channel (ignoreErrors) to learn which topics the role may not see."""
    if not resolved:
        return rows
    from wrapupd.genesys.notifications import queue_id_from_topic, queue_topic

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


# --- `wrapupd apply` -----------------------------------------------------------------------------


async def apply_one(
    settings: Settings,
    *,
    conversation_id: str,
    participant_id: str,
    code_ref: str,
    notes: str | None,
    dry_run: bool,
    clock: Clock,
) -> OneShotResult:
    options = options_from_settings(settings)
    client = client_for(options)
    try:
        await client.start()
        return await apply_once(
            client,
            conversation_id=conversation_id,
            participant_id=participant_id,
            code_ref=code_ref,
            notes=notes if notes is not None else settings.defaults.notes,
            clock=clock,
            dry_run=dry_run or settings.daemon.dry_run,
        )
    finally:
        await client.close()
