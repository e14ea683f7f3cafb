"""wrapupd.metrics: names, labels and values, read back with ``registry.get_sample_value``."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from wrapupd.events import (
    ChannelEnded,
    ConversationEvent,
    ConversationSnapshot,
    Heartbeat,
    Outcome,
    SocketClosing,
    UnknownFrame,
)
from wrapupd.metrics import (
    APPLY_LATENCY_BUCKETS,
    EventKind,
    Metrics,
    endpoint_label,
    frame_kind,
    reason_label,
    status_class,
)

FORBIDDEN_LABELS = {
    "conversation",
    "conversation_id",
    "conversationid",
    "participant",
    "participant_id",
    "participantid",
    "user",
    "user_id",
    "userid",
    "agent",
    "agent_id",
    "communication_id",
}


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(registry, version="1.2.3", sdk_version="269.0.0")


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_metrics_live_on_the_injected_registry_only(registry: CollectorRegistry) -> None:
    Metrics(registry)
    Metrics(CollectorRegistry())  # a second instance must not collide with the first
    assert value(registry, "wrapupd_acw_without_code_total") == 0


def test_every_event_kind_and_outcome_starts_at_zero(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    for kind in EventKind:
        assert value(registry, "wrapupd_events_total", kind=kind.value) == 0
    for outcome in Outcome:
        assert value(registry, "wrapupd_outcomes_total", outcome=outcome.value) == 0


def test_event_received_counts_by_kind(registry: CollectorRegistry, metrics: Metrics) -> None:
    metrics.event_received("heartbeat")
    metrics.event_received(EventKind.HEARTBEAT)
    metrics.event_received(EventKind.MALFORMED)
    assert value(registry, "wrapupd_events_total", kind="heartbeat") == 2
    assert value(registry, "wrapupd_events_total", kind="malformed") == 1
    assert value(registry, "wrapupd_events_total", kind="conversation") == 0


def test_unknown_event_kind_is_a_programming_error(metrics: Metrics) -> None:
    with pytest.raises(ValueError):
        metrics.event_received("conversation-ish")


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        (Heartbeat(), EventKind.HEARTBEAT),
        (Heartbeat(pong=True), EventKind.PONG),
        (SocketClosing(), EventKind.SOCKET_CLOSING),
        (ChannelEnded(topic="v2.system.no_longer_subscribed.x"), EventKind.CHANNEL_ENDED),
        (
            ConversationEvent("t", "q", ConversationSnapshot("c", participants=())),
            EventKind.CONVERSATION,
        ),
        (UnknownFrame(topic="v2.other", problem="unknown_topic"), EventKind.UNKNOWN),
        (UnknownFrame(topic=None, problem="malformed_json"), EventKind.MALFORMED),
        (UnknownFrame(topic="t", problem="bad_conversation"), EventKind.MALFORMED),
    ],
)
def test_frames_map_to_their_kind(frame: object, kind: EventKind) -> None:
    assert frame_kind(frame) == kind  # type: ignore[arg-type]


def test_frame_received_counts_the_frame_kind(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    metrics.frame_received(Heartbeat(pong=True))
    assert value(registry, "wrapupd_events_total", kind="pong") == 1


def test_outcomes_and_acw_without_code(registry: CollectorRegistry, metrics: Metrics) -> None:
    metrics.acw_without_code()
    metrics.outcome(Outcome.APPLIED)
    metrics.outcome(Outcome.FORBIDDEN)
    metrics.outcome(Outcome.FORBIDDEN)
    assert value(registry, "wrapupd_acw_without_code_total") == 1
    assert value(registry, "wrapupd_outcomes_total", outcome="applied") == 1
    assert value(registry, "wrapupd_outcomes_total", outcome="forbidden") == 2


def test_apply_latency_histogram_spans_subsecond_to_an_hour(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    assert APPLY_LATENCY_BUCKETS[0] <= 0.05
    assert APPLY_LATENCY_BUCKETS[-1] >= 3600
    metrics.apply_latency(0.04)
    metrics.apply_latency(42.0)
    metrics.apply_latency(-1.0)  # platform clock ahead of ours: clamped, not dropped
    assert value(registry, "wrapupd_apply_latency_seconds_count") == 3
    assert value(registry, "wrapupd_apply_latency_seconds_sum") == pytest.approx(42.04)
    assert value(registry, "wrapupd_apply_latency_seconds_bucket", le="0.05") == 2
    assert value(registry, "wrapupd_apply_latency_seconds_bucket", le="60.0") == 3


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        *[(200, "2xx"), (204, "2xx"), (304, "3xx"), (404, "4xx"), (429, "4xx"), (503, "5xx")],
        *[(0, "error"), (99, "error"), (600, "error"), (-1, "error")],
    ],
)
def test_status_class(status: int, expected: str) -> None:
    assert status_class(status) == expected


def test_api_response_counts_and_times_requests(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    route = "/api/v2/conversations/{conversationId}/participants/{participantId}"
    metrics.api_response("patch", route, 202, 0.12)
    metrics.api_response("PATCH", route, 0, 5.0)
    labels = {"endpoint": route, "method": "PATCH"}
    assert value(registry, "wrapupd_api_requests_total", **labels, status_class="2xx") == 1
    assert value(registry, "wrapupd_api_requests_total", **labels, status_class="error") == 1
    assert value(registry, "wrapupd_api_request_duration_seconds_count", **labels) == 2
    assert value(registry, "wrapupd_api_request_duration_seconds_sum", **labels) == pytest.approx(
        5.12
    )
    assert value(registry, "wrapupd_rate_limited_total") == 0


def test_repeated_calls_count_on_one_series_and_concrete_paths_are_not_remembered(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    """The children of a template are looked up once; a concrete path (ids in it) is labelled
    with ``{id}`` each time and never kept, so the lookup table stays as bounded as the labels."""
    route = "/api/v2/conversations/{conversationId}"
    for _ in range(3):
        metrics.api_response("GET", route, 200, 0.01)
    for n in range(100):
        metrics.api_response("GET", f"/api/v2/conversations/{n:08d}-aaaa-bbbb-cccc", 200, 0.01)
    assert value(registry, "wrapupd_api_requests_total", endpoint=route, method="GET",
                 status_class="2xx") == 3  # fmt: skip
    labels = {"endpoint": "/api/v2/conversations/{id}", "method": "GET", "status_class": "2xx"}
    assert value(registry, "wrapupd_api_requests_total", **labels) == 100
    assert len(metrics._api_children) == 1  # private on purpose: the bound is the promise


def test_a_429_counts_as_rate_limited(registry: CollectorRegistry, metrics: Metrics) -> None:
    metrics.api_response("GET", "/api/v2/routing/queues", 429, 0.01)
    assert value(registry, "wrapupd_rate_limited_total") == 1
    labels = {"endpoint": "/api/v2/routing/queues", "method": "GET", "status_class": "4xx"}
    assert value(registry, "wrapupd_api_requests_total", **labels) == 1


def test_an_item_waiting_out_a_429_is_a_retry_not_a_second_429(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    metrics.api_response("PATCH", "/api/v2/conversations/{conversationId}", 429, 0.05)
    metrics.rate_limited()  # the applier, handling that same answer
    assert value(registry, "wrapupd_rate_limited_total") == 1
    assert value(registry, "wrapupd_retries_total", reason="rate_limited") == 1


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("/api/v2/conversations/{conversationId}", "/api/v2/conversations/{conversationId}"),
        (
            "/api/v2/conversations/6f2b1d0e-8c1a-4c3e-9f55-2b7d1e0a9c11/participants/"
            "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9",
            "/api/v2/conversations/{id}/participants/{id}",
        ),
        ("/api/v2/routing/queues?pageSize=100&name=Sales", "/api/v2/routing/queues"),
        ("/api/v2/routing/queues/12345/wrapupcodes", "/api/v2/routing/queues/{id}/wrapupcodes"),
        ("/oauth/token", "/oauth/token"),
    ],
)
def test_endpoint_labels_never_carry_ids(endpoint: str, expected: str) -> None:
    assert endpoint_label(endpoint) == expected


def test_socket_state_heartbeat_and_reconnects(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    assert value(registry, "wrapupd_websocket_connected") == 0
    metrics.set_connected(True)
    metrics.heartbeat(1_767_225_600.5)
    metrics.reconnect("socket_closing")
    metrics.reconnect("ConnectionResetError: [Errno 104] peer 10.0.0.1")
    metrics.channel_rollover()
    assert value(registry, "wrapupd_websocket_connected") == 1
    assert value(registry, "wrapupd_last_heartbeat_timestamp_seconds") == 1_767_225_600.5
    assert value(registry, "wrapupd_reconnects_total", reason="socket_closing") == 1
    assert value(registry, "wrapupd_reconnects_total", reason="other") == 1
    assert value(registry, "wrapupd_channel_rollovers_total") == 1
    metrics.set_connected(False)
    assert value(registry, "wrapupd_websocket_connected") == 0


def test_reason_labels_are_a_bounded_vocabulary() -> None:
    assert reason_label("heartbeat_timeout") == "heartbeat_timeout"
    assert reason_label("RateLimited") == "rate_limited"  # exception class names are bounded
    assert reason_label("ServerError") == "server_error"
    assert reason_label("Timeout!") == "other"
    assert reason_label("x" * 41) == "other"


def test_reconcile_pending_retries_and_code_table(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    metrics.reconcile_run()
    metrics.reconcile_run(candidates=5)
    metrics.reconcile_found(2)
    metrics.set_pending(7)
    metrics.retry("ServerError")
    metrics.code_table_loaded(1_767_225_000.0)
    assert value(registry, "wrapupd_reconcile_runs_total") == 2
    assert value(registry, "wrapupd_reconcile_candidates_total") == 5
    assert value(registry, "wrapupd_reconcile_found_total") == 2
    assert value(registry, "wrapupd_pending_items") == 7
    assert value(registry, "wrapupd_retries_total", reason="server_error") == 1
    assert value(registry, "wrapupd_code_table_loaded_timestamp_seconds") == 1_767_225_000.0


def test_build_info_is_one_with_versions_as_labels(registry: CollectorRegistry) -> None:
    Metrics(registry, version="1.2.3", sdk_version="269.0.0")
    samples = [s for m in registry.collect() if m.name == "wrapupd_build_info" for s in m.samples]
    assert len(samples) == 1
    assert samples[0].value == 1
    assert samples[0].labels["version"] == "1.2.3"
    assert samples[0].labels["sdk"] == "269.0.0"
    assert samples[0].labels["python"].startswith("3.")


def test_build_info_defaults_to_installed_versions(registry: CollectorRegistry) -> None:
    Metrics(registry)
    (sample,) = [s for m in registry.collect() if m.name == "wrapupd_build_info" for s in m.samples]
    assert sample.labels["version"]  # the installed distribution, or "unknown"
    assert sample.labels["sdk"]


def test_no_label_names_an_id(registry: CollectorRegistry, metrics: Metrics) -> None:
    metrics.api_response("GET", "/api/v2/conversations/{conversationId}", 200, 0.1)
    metrics.reconnect("error")
    metrics.retry("server_error")
    label_names = {
        name for family in registry.collect() for s in family.samples for name in s.labels
    }
    assert not label_names & FORBIDDEN_LABELS
    assert not {name for name in label_names if name.endswith(("_id", "id"))}


def test_render_is_parseable_prometheus_text(metrics: Metrics) -> None:
    metrics.outcome(Outcome.DRY_RUN)
    text = metrics.render().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert "wrapupd_outcomes" in families
    assert metrics.content_type.startswith("text/plain")
    assert 'wrapupd_outcomes_total{outcome="dry_run"} 1.0' in text


def test_process_collectors_are_optional() -> None:
    registry = CollectorRegistry()
    Metrics(registry, process_metrics=False)
    names = {family.name for family in registry.collect()}
    assert all(name.startswith("wrapupd_") for name in names)


async def test_the_shared_rate_limiter_is_exported_at_scrape_time() -> None:
    from wrapupd.clock import ManualClock
    from wrapupd.ratelimit import Priority, RateLimiter

    clock = ManualClock()
    metrics = Metrics(process_metrics=False)
    limiter = RateLimiter(60, burst=1, clock=clock)
    metrics.watch_rate_limiter(limiter)
    await limiter.acquire(Priority.LIVE)
    waiter = asyncio.ensure_future(limiter.acquire(Priority.BACKGROUND))
    await asyncio.sleep(0)
    registry = metrics.registry
    assert registry.get_sample_value("wrapupd_ratelimit_acquired_total") == 1
    assert registry.get_sample_value("wrapupd_ratelimit_waiting", {"priority": "background"}) == 1
    limiter.pause_for(5)
    await clock.advance(5)
    await waiter
    assert registry.get_sample_value("wrapupd_ratelimit_pauses_total") == 1
    assert (
        registry.get_sample_value("wrapupd_ratelimit_waits_total", {"priority": "background"}) == 1
    )
    assert registry.get_sample_value("wrapupd_ratelimit_wait_seconds_total") == 5
    assert registry.get_sample_value("wrapupd_ratelimit_waiting", {"priority": "background"}) == 0
