"""What a daemon is made of, and how the parts are wired: every part built at once, before
anything starts, into one frozen :class:`Parts` (the platform client is built here for the one-off
commands too)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from wrapupd import __version__
from wrapupd.applier import Applier
from wrapupd.clock import Clock
from wrapupd.code_cache import CodeCache
from wrapupd.credentials import build_grant
from wrapupd.deployment import DeploymentProblems
from wrapupd.genesys.client import GenesysClient, Timeouts
from wrapupd.intake import Intake
from wrapupd.ledger import Ledger, open_ledger_blocking
from wrapupd.metrics import Metrics
from wrapupd.options import DaemonOptions
from wrapupd.ratelimit import RateLimiter
from wrapupd.reconciler import Reconciler
from wrapupd.replicas import Replicas, wait_for_shared_ledger
from wrapupd.subscriber import Subscriber


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
    problems: DeploymentProblems
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
        grant=build_grant(options, on_secret=on_new_token),
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
    """Keep our share of the platform's window (the reserve stays free for other tools)."""
    share = min(1.0, options.budget_per_minute / options.rate_limit_per_minute)

    def observe(count: int, allowed: int, reset_in: float) -> None:
        limiter.observe_window(count, allowed, reset_in, share=share)

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
    problems = DeploymentProblems(metrics)
    client = build_client(
        options, clock=clock, metrics=metrics, limiter=limiter, on_new_token=on_new_token
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
        limiter=limiter,
    )
    return _with_workers(
        options, client, limiter, metrics, codes, ledger, subscriber, problems, clock
    )


def _with_workers(
    options: DaemonOptions,
    client: GenesysClient,
    limiter: RateLimiter,
    metrics: Metrics,
    codes: CodeCache,
    ledger: Ledger,
    subscriber: Subscriber,
    problems: DeploymentProblems,
    clock: Clock,
) -> Parts:
    """The parts that act on what the socket and the sweeps find: applier, reconciler, intake,
    and the replica coordination that decides which of them this process may run."""
    replicas = _replicas(options, ledger, limiter, clock, lambda: reconciler.request("role_taken"))
    applier = Applier(
        client=client,
        ledger=ledger,
        lookup=codes.lookup,
        continuity=subscriber,
        limiter=limiter,
        metrics=metrics,
        clock=clock,
        config=options.applier,
        on_hold=problems.hold,
        replicas=replicas,
    )
    reconciler = Reconciler(
        finder=client,
        queue_ids=lambda: codes.queue_ids if replicas.is_reconciler else frozenset(),
        limiter=limiter,
        metrics=metrics,
        clock=clock,
        config=options.reconciler,
    )
    intake = _intake(codes, applier, subscriber, reconciler, metrics)
    parts = (client, limiter, metrics, codes, ledger, subscriber, applier, reconciler, intake)
    return Parts(*parts, problems, replicas)


def _intake(
    codes: CodeCache,
    applier: Applier,
    subscriber: Subscriber,
    reconciler: Reconciler,
    metrics: Metrics,
) -> Intake:
    return Intake(
        watched=lambda: codes.queue_ids,
        applier=applier,
        socket=subscriber,
        sweeps=reconciler,
        metrics=metrics,
    )


def _replicas(
    options: DaemonOptions,
    ledger: Ledger,
    limiter: RateLimiter,
    clock: Clock,
    on_reconciler: Callable[[], None],
) -> Replicas:
    return Replicas(
        ledger,
        clock=clock,
        config=options.replicas,
        budget_per_minute=options.budget_per_minute,
        set_budget=limiter.set_rate,
        on_reconciler=on_reconciler,
    )


def _open_ledger(options: DaemonOptions, clock: Clock) -> Ledger:
    """The shared PostgreSQL ledger when ``[ledger] url`` is set, else SQLite in the state dir."""
    owner = options.replicas.name
    if options.ledger_url is not None:
        url, password = options.ledger_url, options.ledger_password
        return wait_for_shared_ledger(
            lambda: open_ledger_blocking(url, clock=clock, owner=owner, password=password)
        )
    with contextlib.suppress(OSError):  # the ledger explains a directory it cannot use
        options.state_dir.mkdir(parents=True, exist_ok=True)
    return open_ledger_blocking(options.ledger_location, clock=clock, owner=owner)
