"""The daemon's lifecycle: its parts (built at once by :mod:`wrapupd.parts`), then startup ->
serve -> shutdown, uvicorn-style, with the shutdown trigger injected (signals in ``wrapupd run``,
an event in the tests).

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
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from typing import Any

import structlog
from prometheus_client import CollectorRegistry

from wrapupd import __version__, logs
from wrapupd.backoff import jittered_backoff
from wrapupd.clock import Clock, SystemClock
from wrapupd.errors import BackgroundJobFailed, LedgerUnavailable, LoginRequired, PlatformError
from wrapupd.health import HealthServer
from wrapupd.logs import LogOptions
from wrapupd.options import DaemonOptions
from wrapupd.parts import Parts, build_parts
from wrapupd.queue_follower import follow_queue_changes
from wrapupd.readiness import Checks, readiness
from wrapupd.reload_plan import ReloadPlan, plan_reload
from wrapupd.retry import LOGIN_REMEDY, LOGIN_REQUIRED, passes
from wrapupd.sdnotify import Notifier, WatchdogPinger
from wrapupd.status_source import DaemonStatus
from wrapupd.upkeep import keep_token_fresh, purge_forever, purge_once

log = structlog.get_logger("wrapupd.service")

QUEUE_FOLLOW_SECONDS = 5.0
RESTART_HINT = "needs a restart: the running value stays in force until then"


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
        log_options: LogOptions | None = None,
    ) -> None:
        self.options = options
        self.log_options = log_options or LogOptions()
        self.clock = clock or SystemClock()
        self.notifier = notifier or Notifier()
        self.parts = build_parts(
            options,
            clock=self.clock,
            registry=registry or CollectorRegistry(),
            on_state=self.notifier.status,
            on_new_token=on_new_token,
        )
        self.status = _status_source(self, self.parts)
        self.status_page = (
            HealthServer(
                *options.listen,
                readiness=self.readiness,
                metrics=self.parts.metrics,
                status=self.status,
            )
            if options.listen is not None
            else None
        )
        self.status_address: tuple[str, int] | None = None
        self.ready = asyncio.Event()
        self._stopping = False
        self._drained = False
        self._job_tasks: list[asyncio.Task[None]] = []

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
        if self.status_page is not None:  # alive (not ready) while start-up waits out an outage
            self.status_address = host, port = await self.status_page.start()
            log.info("health_listening", address=f"{host}:{port}")
        await self._until_reachable("authenticate", p.client.start)
        expires = p.client.token_expires_at
        log.info("authenticated", token_expires_at=expires.isoformat() if expires else None)
        await self._until_reachable("load_codes", p.codes.load)
        self._log_watched()
        log.info(
            "ledger_opened",
            path=str(p.ledger.location),
            kind=p.ledger.kind,
            replica=p.ledger.owner,
            purged=await purge_once(p.ledger, self.clock, self.options.retention_days),
        )
        p.applier.resume()

    async def _until_reachable(self, step: str, attempt: Callable[[], Awaitable[None]]) -> None:
        """Retry a start-up step while the platform is unreachable or failing (alive, not ready):
        exiting would only turn an outage into a restart loop. Bad credentials, a missing permission
        or a refused setting still raise at once."""
        delays: Iterator[float] | None = None
        while True:
            try:
                await attempt()
                return
            except PlatformError as exc:
                if not passes(exc):
                    raise
                delays = delays or self._startup_backoff()
                delay = next(delays)
                log.warning(
                    "startup_waiting", step=step, error=str(exc), retry_in_s=round(delay, 3)
                )
                await self.clock.sleep(delay)

    def _startup_backoff(self) -> Iterator[float]:
        applier = self.options.applier
        return jittered_backoff(
            initial=applier.retry_initial_seconds, maximum=applier.retry_max_seconds
        )

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
                self._job_tasks = jobs
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
            (
                "token_keeper",
                keep_token_fresh(
                    p.client,
                    self.clock,
                    self.options.token_renew_margin,
                    retry_seconds=self.options.token_retry_seconds,
                    on_failure=self._renewal_failed,
                    on_renewed=lambda: p.problems.clear(LOGIN_REQUIRED),
                ),
            ),
            ("ledger_purge", purge_forever(p.ledger, self.clock, self.options.retention_days)),
            ("ledger_redrive", self._take_redriven_forever()),
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
        sys.setswitchinterval(SWITCH_INTERVAL_S)
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

    def _renewal_failed(self, error: PlatformError) -> None:
        """A refused refresh token holds everything until ``wrapupd login``; the rest may pass.

        The grant re-reads the refresh-token file at every attempt: a new login ends the hold."""
        if isinstance(error, LoginRequired):
            self.parts.problems.report(LOGIN_REQUIRED, str(error), LOGIN_REMEDY)
        else:
            log.warning("token_renew_failed", error=str(error))

    async def _take_redriven_forever(self) -> None:
        """Hand what an operator redrove (``wrapupd ledger redrive``) to the applier."""
        while True:
            await self.clock.sleep(self.options.redrive_poll_seconds)
            try:
                items = await self.parts.ledger.take_redriven()
            except LedgerUnavailable:
                continue  # the flags stay on disk: taken once the ledger is back
            self.parts.applier.resume(items)

    # --- what others ask --------------------------------------------------------------------------

    def readiness(self) -> Checks:
        """The named checks of ``/readyz``."""
        sub = self.options.subscriber
        p = self.parts
        fresh = sub.heartbeat_timeout + sub.ping_timeout
        checks = dict(
            readiness(
                p.client,
                p.subscriber,
                p.codes,
                self.clock,
                fresh,
                ledger=p.ledger,
                sweeps=p.reconciler,
            )
        )
        checks["deployment"] = p.problems.check()
        return checks

    def healthy(self) -> bool:
        """What the watchdog pings on: the event loop turns (this runs on it) and every part's task
        still runs. Not whether the platform answers: a restart cannot bring it back."""
        return not any(task.done() for task in self._job_tasks)

    async def reload(self, options: DaemonOptions, log_options: LogOptions | None = None) -> None:
        """Put in force every setting that can change while running (:mod:`wrapupd.reload_plan`),
        keep the rest and name it; ``reloaded`` says exactly what changed. The queue table is
        re-resolved first: on any problem with it nothing changes and the error is raised."""
        plan = plan_reload(
            self.options, options, old_log=self.log_options, new_log=log_options or self.log_options
        )
        self.notifier.reloading()
        try:
            await self.parts.codes.reload(plan.options.policies)
            self._put_in_force(plan)
        finally:
            self.notifier.ready()
        for refusal in plan.refusals():
            log.warning("setting_needs_restart", **refusal, hint=RESTART_HINT)
        log.info("reloaded", changed=plan.changed, restart_needed=list(plan.restart_needed))
        if plan.log.level != self.log_options.level:  # last: the line above shows at the old level
            logs.set_level(plan.log.level)
        self.log_options = plan.log

    def _put_in_force(self, plan: ReloadPlan) -> None:
        """dry_run and the rate budget to their parts; the rest is read from ``self.options``
        where it is used."""
        new, p = plan.options, self.parts
        if new.dry_run != self.options.dry_run:
            p.applier.dry_run = new.dry_run
        if new.budget_per_minute != self.options.budget_per_minute:
            p.limiter.set_rate(new.budget_per_minute)
        self.options = new


def _status_source(daemon: Daemon, p: Parts) -> DaemonStatus:
    """What the status page shows, read from the parts (never a platform call)."""
    return DaemonStatus(
        readiness=daemon.readiness,
        subscriber=p.subscriber,
        codes=p.codes,
        limiter=p.limiter,
        ledger=p.ledger,
        clock=daemon.clock,
        budget_per_minute=lambda: daemon.options.budget_per_minute,  # a reload may change them
        dry_run=lambda: daemon.options.dry_run,
        deployment=p.problems,
        sweeps=p.reconciler,
    )


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


# How long a busy thread (the SDK's request, the ledger writer) may keep the GIL from the waiting
# event loop: CPython's 5 ms, or 1 ms once ready, for the process like gc.freeze (PERFORMANCE.md).
SWITCH_INTERVAL_S = 0.001


def _freeze_startup_objects() -> None:
    """Move everything alive after start-up (the modules, the SDK's client and the models loaded
    so far) out of the collector's reach, so that a full collection during a burst of events does
    not walk them while writes wait."""
    gc.collect()
    gc.freeze()
