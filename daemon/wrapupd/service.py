"""Wiring and lifecycle of the daemon: every part built at once, then startup -> serve -> shutdown.

Startup, one log line per step: ``starting``, ``authenticated``, ``queue_watched`` (each), the
ledger ``ledger_opened``, ``health_listening``, the socket connected and subscribed, ``ready``.
Serve: every part runs under one ``asyncio.TaskGroup`` until the shutdown trigger returns (a part
that crashes or stops ends the daemon with :class:`~wrapupd.errors.BackgroundJobFailed`).
Shutdown: ``stopping``, stop intake, close the socket, let in-flight writes finish within the
drain deadline, cancel the rest (unfinished items stay in the ledger), close, ``stopped``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from prometheus_client import CollectorRegistry

from wrapupd import __version__
from wrapupd.applier import Applier
from wrapupd.clock import Clock, SystemClock
from wrapupd.code_cache import CodeCache
from wrapupd.errors import BackgroundJobFailed, PlatformError
from wrapupd.events import QueuePolicy
from wrapupd.genesys.client import GenesysClient, Timeouts
from wrapupd.health import HealthServer
from wrapupd.intake import Intake
from wrapupd.ledger import Ledger, ledger_path, open_ledger_blocking
from wrapupd.metrics import Metrics
from wrapupd.options import DaemonOptions
from wrapupd.queue_follower import follow_queue_changes
from wrapupd.ratelimit import RateLimiter
from wrapupd.readiness import Checks, readiness, watchdog_healthy
from wrapupd.reconciler import Reconciler
from wrapupd.replicas import Replicas, wait_for_shared_ledger
from wrapupd.sdnotify import Notifier, WatchdogPinger
from wrapupd.subscriber import Subscriber

log = structlog.get_logger("wrapupd.service")

PURGE_INTERVAL_SECONDS = 3600.0
QUEUE_FOLLOW_SECONDS = 5.0
TOKEN_RETRY_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Parts:
    """Every part of one daemon, built together before anything starts."""

    client: GenesysClient
    limiter: RateLimiter
    metrics: Metrics
    codes: CodeCache
    ledger: Ledger
    subscriber: Subscriber
    applier: Applier
    reconciler: Reconciler
    intake: Intake
    replicas: Replicas


def build_client(
    options: DaemonOptions,
    *,
    clock: Clock | None = None,
    metrics: Metrics | None = None,
    limiter: RateLimiter | None = None,
    on_new_token: Callable[[str], None] | None = None,
) -> GenesysClient:
    """The platform client for these options (the daemon's, and the one-off commands')."""
    return GenesysClient(
        api_host=options.api_host,
        client_id=options.client_id,
        client_secret=options.client_secret,
        timeouts=Timeouts(connect=options.connect_timeout, read=options.read_timeout),
        max_workers=max(4, options.applier.workers * 2),
        renew_margin_seconds=options.token_renew_margin,
        clock=clock,
        on_response=metrics.api_response if metrics is not None else None,
        on_new_token=on_new_token,
        on_rate_limit=_rate_limit_observer(options, limiter) if limiter is not None else None,
    )


def _rate_limit_observer(
    options: DaemonOptions, limiter: RateLimiter
) -> Callable[[int, int, float], None]:
    """Keep our share of the platform's window (the reserve stays free for other tools), one
    request short of it for a response still on its way."""
    share = min(1.0, options.budget_per_minute / options.rate_limit_per_minute)

    def observe(count: int, allowed: int, reset_in: float) -> None:
        limiter.observe(allowed * share - count - 1, reset_in)

    return observe


def build_parts(
    options: DaemonOptions,
    *,
    clock: Clock,
    registry: CollectorRegistry,
    on_state: Callable[[str], None],
    on_new_token: Callable[[str], None] | None = None,
) -> Parts:
    """Every part, wired; nothing talks to the platform yet (the ledger is opened)."""
    ledger = _open_ledger(options, clock)  # first: a local problem stops start-up before any I/O
    metrics = Metrics(registry, version=__version__)
    limiter = RateLimiter(options.budget_per_minute, clock=clock)
    metrics.watch_rate_limiter(limiter)
    client = build_client(
        options, clock=clock, metrics=metrics, limiter=limiter, on_new_token=on_new_token
    )
    replicas = Replicas(
        ledger,
        clock=clock,
        config=options.replicas,
        budget_per_minute=options.budget_per_minute,
        set_budget=limiter.set_rate,
        on_reconciler=lambda: reconciler.request("role_taken"),
    )
    codes = CodeCache(
        client,
        options.policies,
        clock=clock,
        metrics=metrics,
        limiter=limiter,
        verify_at_start_max=options.verify_codes_at_start_max,
        refresh_seconds=options.code_refresh_seconds,
    )
    subscriber = Subscriber(
        api=client,
        queue_ids=lambda: codes.queue_ids,
        metrics=metrics,
        clock=clock,
        config=options.subscriber,
        on_state=on_state,
    )
    applier = Applier(
        client=client,
        ledger=ledger,
        lookup=codes.lookup,
        continuity=subscriber,
        limiter=limiter,
        metrics=metrics,
        clock=clock,
        config=options.applier,
        replicas=replicas,
    )
    reconciler = Reconciler(
        finder=client,
        queue_ids=lambda: codes.queue_ids if replicas.is_reconciler else (),
        limiter=limiter,
        metrics=metrics,
        clock=clock,
        config=options.reconciler,
    )
    intake = Intake(
        watched=lambda: codes.queue_ids,
        applier=applier,
        socket=subscriber,
        sweeps=reconciler,
        metrics=metrics,
    )
    return Parts(
        client, limiter, metrics, codes, ledger, subscriber, applier, reconciler, intake, replicas
    )


def _open_ledger(options: DaemonOptions, clock: Clock) -> Ledger:
    """The shared PostgreSQL ledger when ``[ledger] url`` is set, else SQLite in the state dir."""
    owner = options.replicas.name
    if options.ledger_url is not None:
        return wait_for_shared_ledger(
            lambda: open_ledger_blocking(
                options.ledger_url or "", clock=clock, owner=owner, password=options.ledger_password
            )
        )
    with contextlib.suppress(OSError):  # the ledger explains a directory it cannot use
        options.state_dir.mkdir(parents=True, exist_ok=True)
    return open_ledger_blocking(ledger_path(options.state_dir), clock=clock, owner=owner)


class Daemon:
    """One wrapupd daemon: its parts, its lifecycle, and what it reports to /readyz and systemd."""

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
        self.parts = build_parts(
            options,
            clock=self.clock,
            registry=registry or CollectorRegistry(),
            on_state=self.notifier.status,
            on_new_token=on_new_token,
        )
        self.status_page = (
            HealthServer(*options.listen, readiness=self.readiness, metrics=self.parts.metrics)
            if options.listen is not None
            else None
        )
        self.status_address: tuple[str, int] | None = None
        self.ready = asyncio.Event()
        self._stopping = False
        self._drained = False

    # --- the lifecycle --------------------------------------------------------------------------

    async def serve(self, shutdown_trigger: Callable[[], Awaitable[object]]) -> None:
        """Start, serve until ``shutdown_trigger()`` returns, shut down; always closes what it opened.

        Raises what start-up raises (``ConfigError``, ``PlatformError``, ``LedgerError``), or
        :class:`BackgroundJobFailed` when a part crashes or stops while serving."""
        stop = asyncio.ensure_future(shutdown_trigger())
        try:
            if await _unless(stop, self._startup()):
                await self._serve(stop)
        finally:
            stop.cancel()
            await self._close()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Parts]:
        """Serve in a task while the block runs, from ready to shut down (the demo, the tests,
        the benchmarks); a failure of the daemon is raised when the block ends."""
        stop = asyncio.Event()
        task = asyncio.create_task(self.serve(stop.wait), name="wrapupd")
        try:
            started = await _unless(task, self.ready.wait())
        except BaseException:
            stop.set()
            await asyncio.wait({task})
            raise
        if not started:
            task.result()  # start-up failed: raise why
            raise BackgroundJobFailed("the daemon stopped before it was ready")
        try:
            yield self.parts
        finally:
            stop.set()
            await asyncio.wait({task})
        task.result()

    async def _startup(self) -> None:
        log.info(
            "starting",
            version=__version__,
            api_host=self.options.api_host,
            dry_run=self.options.dry_run,
        )
        p = self.parts
        await p.client.start()
        expires = p.client.token_expires_at
        log.info("authenticated", token_expires_at=expires.isoformat() if expires else None)
        await p.codes.load()
        self._log_watched()
        cutoff = self.clock.now() - timedelta(days=self.options.retention_days)
        log.info(
            "ledger_opened",
            path=p.ledger.location,
            kind=p.ledger.kind,
            replica=p.ledger.owner,
            purged=await p.ledger.purge(cutoff),
        )
        p.applier.resume()
        if self.status_page is not None:
            self.status_address = host, port = await self.status_page.start()
            log.info("health_listening", address=f"{host}:{port}")

    def _log_watched(self) -> None:
        for entry in self.parts.codes.entries():
            log.info(
                "queue_watched",
                queue=entry.queue.name,
                queue_id=entry.queue_id,
                code=entry.code.name,
                code_id=entry.code.id,
                grace_s=entry.policy.grace_seconds,
                acw=entry.queue.wrapup_prompt,
            )

    async def _serve(self, stop: asyncio.Future[Any]) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                jobs = [group.create_task(self._supervised(n, j), name=n) for n, j in self._jobs()]
                if await _unless(stop, self.parts.subscriber.ready.wait()):
                    self._announce_ready()
                    await stop
                await self._shutdown(jobs)
        except BaseExceptionGroup as failure:
            raise BackgroundJobFailed(_describe_failure(failure)) from failure

    def _jobs(self) -> list[tuple[str, Coroutine[Any, Any, None]]]:
        p = self.parts
        jobs = [
            ("subscriber", p.subscriber.run(p.intake)),
            ("applier", p.applier.run()),
            ("reconciler", p.reconciler.run(p.intake)),
            ("code_cache", p.codes.run()),
            ("token_keeper", self._keep_token_fresh()),
            ("ledger_purge", self._purge_forever()),
            ("replicas", p.replicas.run(p.applier.resume)),
            (
                "queue_follower",
                follow_queue_changes(
                    p.codes,
                    p.subscriber,
                    p.reconciler,
                    self.clock,
                    min(QUEUE_FOLLOW_SECONDS, self.options.code_refresh_seconds),
                ),
            ),
        ]
        if self.notifier.watchdog_interval() is not None:
            pinger = WatchdogPinger(self.notifier, clock=self.clock, is_healthy=self.healthy)
            jobs.append(("watchdog", pinger.run()))
        return jobs

    async def _supervised(self, name: str, job: Awaitable[None]) -> None:
        """Run a part until shutdown: a crash is logged, and a part that stops on its own is a failure."""
        try:
            await job
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("background_job_crashed", job=name)
            raise BackgroundJobFailed(f"{name} crashed: {type(exc).__name__}: {exc}") from exc
        if not self._stopping:
            raise BackgroundJobFailed(f"{name} stopped")

    def _announce_ready(self) -> None:
        self.parts.reconciler.request("startup")
        _freeze_startup_objects()
        queues = len(self.parts.codes.queue_ids)
        self.notifier.ready()
        self.notifier.status(f"watching {queues} queues")
        log.info("ready", queues=queues, pending=self.parts.applier.pending_count)
        self.ready.set()

    async def _shutdown(self, jobs: Sequence[asyncio.Task[None]]) -> None:
        self._stopping = True
        self.notifier.stopping()
        self.notifier.status("draining")
        applier = self.parts.applier
        log.info("stopping", pending=applier.pending_count)
        applier.stop_intake()
        self.parts.subscriber.stop()
        self._drained = await applier.drain(self.options.drain_seconds)
        self.parts.replicas.retire()
        for job in jobs:
            job.cancel()

    async def _close(self) -> None:
        if self.status_page is not None:
            await self.status_page.stop()
        await self.parts.client.close()
        pending = self.parts.applier.pending_count
        await self.parts.ledger.close()
        log.info("stopped", drained=self._drained, pending_kept=pending)

    # --- jobs of the service itself ---------------------------------------------------------------

    async def _keep_token_fresh(self) -> None:
        """Renew before expiry even when no API call is due: the channel dies with its token."""
        client, margin = self.parts.client, self.options.token_renew_margin
        while True:
            expires = client.token_expires_at
            if expires is None:
                await self.clock.sleep(TOKEN_RETRY_SECONDS)
                continue
            lifetime_left = (expires - self.clock.now()).total_seconds()
            await self.clock.sleep(max(0.0, lifetime_left - min(margin, lifetime_left / 2)))
            try:
                await client.renew_token()
                renewed = client.token_expires_at
                log.info("token_renewed", expires_at=renewed.isoformat() if renewed else None)
            except PlatformError as exc:
                log.warning("token_renew_failed", error=str(exc))
                await self.clock.sleep(TOKEN_RETRY_SECONDS)

    async def _purge_forever(self) -> None:
        while True:
            await self.clock.sleep(PURGE_INTERVAL_SECONDS)
            await self.parts.ledger.purge(
                self.clock.now() - timedelta(days=self.options.retention_days)
            )

    # --- what others ask --------------------------------------------------------------------------

    def readiness(self) -> Checks:
        """The named checks of ``/readyz``."""
        sub = self.options.subscriber
        p = self.parts
        fresh = sub.heartbeat_timeout + sub.ping_timeout
        health = p.ledger.health()
        checks = dict(readiness(p.client, p.subscriber, p.codes, self.clock, fresh))
        checks["ledger"] = (health.available, health.detail)
        return checks

    def healthy(self) -> bool:
        """What the watchdog pings on: frames still arrive."""
        return watchdog_healthy(
            self.parts.subscriber, 3 * self.options.subscriber.heartbeat_timeout
        )

    async def reload(self, policies: Sequence[QueuePolicy]) -> None:
        """Re-resolve queues and codes; on any problem the old table stays and the error is raised."""
        self.notifier.reloading()
        try:
            await self.parts.codes.reload(policies)
        finally:
            self.notifier.ready()


async def _unless(stop: asyncio.Future[Any], work: Awaitable[Any]) -> bool:
    """Run ``work`` unless ``stop`` finishes first (then ``work`` is cancelled); True when it ran."""
    task = asyncio.ensure_future(work)
    await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False


def _describe_failure(failure: BaseExceptionGroup[BaseException]) -> str:
    return "; ".join(str(e) for e in failure.exceptions)


def _freeze_startup_objects() -> None:
    """Move everything alive after start-up (the SDK's ~200 MB of modules and models) out of the
    collector's reach, so that a full collection during a burst of events does not stall writes."""
    gc.collect()
    gc.freeze()
