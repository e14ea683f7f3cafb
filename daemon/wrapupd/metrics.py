"""Prometheus metrics for wrapupd, on an injected ``CollectorRegistry``.

The metric and label names are a contract: ``deploy/grafana-dashboard.json`` and
``deploy/prometheus-alerts.yml`` use them, and a packaging test checks that they only use names
registered here. Labels never carry conversation, participant or user ids: those would grow the
series count without bound, and they belong in logs, not in a time series database.

Every part of the daemon gets the same :class:`Metrics` object and calls small domain-named
methods (``event_received``, ``outcome``, ``api_response`` ...), so no part touches
prometheus_client directly and tests assert with ``registry.get_sample_value``.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from importlib import metadata

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from wrapupd.events import Frame, Outcome
from wrapupd.metric_labels import EventKind, endpoint_label, frame_kind, reason_label, status_class
from wrapupd.ratelimit import Priority, RateLimiter

PREFIX = "wrapupd_"

# ACW start -> code applied: the grace period alone is seconds to minutes, and an item that waited
# out a rate-limit pause or a reconnect can take up to an hour.
APPLY_LATENCY_BUCKETS = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0,
    120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0,
)  # fmt: skip
# One REST call: the SDK's timeouts are seconds, so anything past 30 s is "timed out" anyway.
API_DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _distribution_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


class Metrics:
    """All of wrapupd's metrics, registered on one registry (a new one unless injected).

    ``process_metrics`` adds the standard ``process_*``/``python_info`` collectors to that
    registry, as the global default registry would have; the alert rules use
    ``process_start_time_seconds`` to stay quiet while the daemon is still starting.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        version: str | None = None,
        sdk_version: str | None = None,
        process_metrics: bool = True,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        if process_metrics:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
        self._register_events()
        self._register_outcomes()
        self._register_api()
        self._register_channel()
        self._register_work()
        self._register_build_info(version, sdk_version)

    # --- registration ------------------------------------------------------------------------

    def _counter(self, name: str, doc: str, labels: Iterable[str] = ()) -> Counter:
        return Counter(PREFIX + name, doc, list(labels), registry=self.registry)

    def _gauge(self, name: str, doc: str, labels: Iterable[str] = ()) -> Gauge:
        return Gauge(PREFIX + name, doc, list(labels), registry=self.registry)

    def _register_events(self) -> None:
        self._events = self._counter(
            "events_total", "Notification frames received, by kind.", ["kind"]
        )
        # Children looked up once: ``labels()`` validates and locks on every call, once per frame.
        self._event_children = {
            kind.value: self._events.labels(kind=kind.value) for kind in EventKind
        }
        self._acw_without_code = self._counter(
            "acw_without_code_total",
            "Agent participants seen in after-call work without a wrap-up code.",
        )

    def _register_outcomes(self) -> None:
        self._outcomes = self._counter(
            "outcomes_total", "Work items finished, by outcome.", ["outcome"]
        )
        self._outcome_children = {o.value: self._outcomes.labels(outcome=o.value) for o in Outcome}
        self._apply_latency = Histogram(
            PREFIX + "apply_latency_seconds",
            "Time from the start of after-call work to the default code being applied.",
            buckets=APPLY_LATENCY_BUCKETS,
            registry=self.registry,
        )

    def _register_api(self) -> None:
        self._api_requests = self._counter(
            "api_requests_total",
            "Platform REST requests, by endpoint, method and status class.",
            ["endpoint", "method", "status_class"],
        )
        self._api_duration = Histogram(
            PREFIX + "api_request_duration_seconds",
            "Platform REST request duration, including transport failures.",
            ["endpoint", "method"],
            buckets=API_DURATION_BUCKETS,
            registry=self.registry,
        )
        self._rate_limited = self._counter(
            "rate_limited_total", "Platform answers with HTTP 429 (Too Many Requests)."
        )
        # (method, endpoint template, status) -> its two children, for templates only (bounded).
        self._api_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def _register_channel(self) -> None:
        self._connected = self._gauge(
            "websocket_connected", "1 while the notification WebSocket is open, else 0."
        )
        self._reconnects = self._counter(
            "reconnects_total", "Notification WebSocket reconnects, by reason.", ["reason"]
        )
        self._rollovers = self._counter(
            "channel_rollovers_total", "Notification channels replaced before they expired."
        )
        self._last_heartbeat = self._gauge(
            "last_heartbeat_timestamp_seconds",
            "Unix time of the last heartbeat or pong on the notification socket (0 = none yet).",
        )

    def _register_work(self) -> None:
        self._reconcile_runs = self._counter("reconcile_runs_total", "Reconciliation passes run.")
        self._reconcile_candidates = self._counter(
            "reconcile_candidates_total",
            "Open conversations reconciliation looked up because the socket had not reported them.",
        )
        self._reconcile_found = self._counter(
            "reconcile_found_total",
            "Participants in ACW without a code that reconciliation found and the socket missed.",
        )
        self._reconcile_failures = self._counter(
            "reconcile_fetch_failures_total",
            "Conversations a sweep could not read (each is retried later, alone).",
        )
        self._reconcile_complete = self._gauge(
            "reconcile_last_complete_timestamp_seconds",
            "Unix time the last reconciliation sweep completed (0 = none yet): a stall alert's input.",
        )
        self._pending = self._gauge("pending_items", "Work items not yet finished.")
        self._queues_skipped = self._gauge(
            "queues_skipped",
            "Queues picked by a [[queues]] selector but skipped: their default code is not"
            " assigned to them.",
        )
        self._code_table_loaded = self._gauge(
            "code_table_loaded_timestamp_seconds",
            "Unix time the queue -> default wrap-up code table was last loaded (0 = never).",
        )
        self._retries = self._counter("retries_total", "Retried operations, by reason.", ["reason"])
        self._deployment_problem = self._gauge(
            "deployment_problem",
            "1 while a problem only an operator can fix holds all work (problem: login_required,"
            " user_context_required), else 0.",
            ["problem"],
        )

    def _register_build_info(self, version: str | None, sdk_version: str | None) -> None:
        info = self._gauge(
            "build_info", "Always 1; the labels say what is running.", ["version", "python", "sdk"]
        )
        info.labels(
            version=version or _distribution_version("wrapupd"),
            python=platform.python_version(),
            sdk=sdk_version or _distribution_version("PureCloudPlatformClientV2"),
        ).set(1)

    # --- the notification socket -------------------------------------------------------------

    def event_received(self, kind: EventKind | str) -> None:
        """Count one frame; an unknown kind raises ``ValueError`` so a typo fails in tests."""
        child = self._event_children.get(kind)
        if child is None:
            child = self._event_children[EventKind(kind).value]
        child.inc()

    def frame_received(self, frame: Frame) -> None:
        """Count one parsed frame under its kind."""
        self.event_received(frame_kind(frame))

    def heartbeat(self, at_unix: float) -> None:
        """Record when the socket last proved alive (heartbeat or pong)."""
        self._last_heartbeat.set(at_unix)

    def set_connected(self, connected: bool) -> None:
        """Whether every notification socket is open."""
        self._connected.set(1 if connected else 0)

    def reconnect(self, reason: str) -> None:
        """Count one reconnect; ``reason`` is a short snake_case word such as ``socket_closing``."""
        self._reconnects.labels(reason=reason_label(reason)).inc()

    def channel_rollover(self) -> None:
        """Count one channel replaced before it expired (a new token)."""
        self._rollovers.inc()

    # --- detection and outcomes --------------------------------------------------------------

    def acw_without_code(self) -> None:
        """Count a participant the detector found in ACW with no code (before any grace period)."""
        self._acw_without_code.inc()

    def outcome(self, outcome: Outcome) -> None:
        """Count one finished work item."""
        child = self._outcome_children.get(outcome)
        if child is None:
            child = self._outcome_children[Outcome(outcome).value]
        child.inc()

    def apply_latency(self, seconds: float) -> None:
        """Observe ACW start -> applied; clock skew against the platform's timestamp clamps to 0."""
        self._apply_latency.observe(max(0.0, seconds))

    def set_pending(self, count: int) -> None:
        """How many work items are unfinished now."""
        self._pending.set(count)

    def retry(self, reason: str) -> None:
        """Count a retried operation; ``reason`` is snake_case or an exception class name."""
        self._retries.labels(reason=reason_label(reason)).inc()

    def set_deployment_problem(self, problem: str, active: bool) -> None:
        """Raise or clear a deployment problem (``login_required``, ``user_context_required``)."""
        self._deployment_problem.labels(problem=reason_label(problem)).set(1 if active else 0)

    def rate_limited(self) -> None:
        """A work item waits out a 429 and will be tried again.

        That is a retry (reason ``rate_limited``). The 429 answer itself is counted once, in
        ``wrapupd_rate_limited_total`` by :meth:`api_response`, which sees every request; counting
        it here too would count each 429 twice.
        """
        self.retry("rate_limited")

    # --- the REST API ------------------------------------------------------------------------

    def api_response(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        """The HTTP client's callback: one REST call finished (``status`` 0 = no HTTP answer).

        429s are counted into ``wrapupd_rate_limited_total`` here, so nobody else counts them.
        """
        key = (method, endpoint, status)
        children = self._api_children.get(key) or self._api_children_for(key)
        children[0].inc()
        children[1].observe(max(0.0, seconds))
        if status == 429:
            self._rate_limited.inc()

    def _api_children_for(self, key: tuple[str, str, int]) -> tuple[Counter, Histogram]:
        """The two children of one (method, endpoint, status); kept when the endpoint is a
        template, so the cache stays as bounded as the labels themselves."""
        method, endpoint, status = key
        route, verb = endpoint_label(endpoint), method.upper()
        children = (
            self._api_requests.labels(
                endpoint=route, method=verb, status_class=status_class(status)
            ),
            self._api_duration.labels(endpoint=route, method=verb),
        )
        if route == endpoint:
            self._api_children[key] = children
        return children

    # --- reconciliation and codes ------------------------------------------------------------

    def reconcile_run(self, candidates: int = 0) -> None:
        """One pass finished, having looked up ``candidates`` conversations the socket missed.

        Candidates are conversations, most of which need nothing; the participants that do are
        counted by :meth:`reconcile_found`, once the detector has decided.
        """
        self._reconcile_runs.inc()
        self._reconcile_candidates.inc(max(0, candidates))

    def reconcile_complete(self, at_unix: float) -> None:
        """A sweep (analytics query and every read) reached its end at ``at_unix``."""
        self._reconcile_complete.set(at_unix)

    def reconcile_failed(self, count: int) -> None:
        """A pass could not read ``count`` conversations (each is retried later)."""
        self._reconcile_failures.inc(max(0, count))

    def reconcile_found(self, count: int) -> None:
        """Reconciliation found ``count`` participants in ACW without a code the socket missed."""
        self._reconcile_found.inc(max(0, count))

    def queues_skipped(self, count: int) -> None:
        """How many selected queues are skipped for want of their default code."""
        self._queues_skipped.set(count)

    def code_table_loaded(self, at_unix: float) -> None:
        """Record when a queue -> code table went in force."""
        self._code_table_loaded.set(at_unix)

    # --- the shared rate limiter -------------------------------------------------------------

    def watch_rate_limiter(self, limiter: RateLimiter) -> None:
        """Export the shared budget's own counters, read at scrape time: how often and how long
        callers waited for it, how often a 429 paused everyone, and who waits right now."""
        self.registry.register(_RateLimiterCollector(limiter))

    # --- exposition --------------------------------------------------------------------------

    @property
    def content_type(self) -> str:
        """The Content-Type of :meth:`render`'s output."""
        return CONTENT_TYPE_LATEST

    def render(self) -> bytes:
        """The registry in the Prometheus text format, for ``GET /metrics``."""
        return generate_latest(self.registry)


class _RateLimiterCollector(Collector):
    """``wrapupd_ratelimit_*`` from the limiter's counters (no bookkeeping on the hot path)."""

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    def collect(self) -> Iterable[CounterMetricFamily | GaugeMetricFamily]:
        stats = self._limiter.stats()
        yield CounterMetricFamily(
            PREFIX + "ratelimit_acquired",
            "Tokens handed out by the shared rate limiter.",
            stats.acquired,
        )
        waits = CounterMetricFamily(
            PREFIX + "ratelimit_waits",
            "Callers that had to wait for a token, by priority.",
            labels=["priority"],
        )
        waits.add_metric(["live"], stats.waited_live)
        waits.add_metric(["background"], stats.waited_background)
        yield waits
        yield CounterMetricFamily(
            PREFIX + "ratelimit_wait_seconds",
            "Seconds callers spent waiting for a token.",
            stats.wait_seconds,
        )
        yield CounterMetricFamily(
            PREFIX + "ratelimit_pauses",
            "Pauses of every caller after a 429 or a spent window.",
            stats.pauses,
        )
        waiting = GaugeMetricFamily(
            PREFIX + "ratelimit_waiting",
            "Callers waiting for a token now, by priority.",
            labels=["priority"],
        )
        for priority in Priority:
            waiting.add_metric([priority.name.lower()], self._limiter.waiting(priority))
        yield waiting
