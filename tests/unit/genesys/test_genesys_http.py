from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

import pytest
from genesys_stub import Reply, StubServer
from PureCloudPlatformClientV2 import ApiClient, RoutingApi
from PureCloudPlatformClientV2 import logger as sdk_logger
from PureCloudPlatformClientV2.configuration import Configuration
from PureCloudPlatformClientV2.http_request_options import HttpRequestOptions
from PureCloudPlatformClientV2.logger import LogLevel
from PureCloudPlatformClientV2.rest import ApiException

from wrapupd.errors import RequestTimeout, TransportError
from wrapupd.genesys.http import (
    PinnedHttpClient,
    current_endpoint,
    endpoint,
    pin_sdk_configuration,
)
from wrapupd.retry import Retry, classify

Seen = list[tuple[str, str, int, float, Mapping[str, str]]]


def make_client(seen: Seen | None = None, read: float = 2.0) -> PinnedHttpClient:
    def record(m: str, t: str, s: int, secs: float, h: Mapping[str, str]) -> None:
        if seen is not None:
            seen.append((m, t, s, secs, h))

    return PinnedHttpClient(connect_timeout=1.0, read_timeout=read, on_response=record)


def options(url: str, method: str = "GET", **kw: Any) -> Any:
    return HttpRequestOptions(url=url, method=method, **kw)


def test_success_looks_like_a_rest_response(stub: StubServer) -> None:
    stub.script("GET", "/api/v2/things", Reply(200, {"a": 1}, {"inin-ratelimit-count": "1"}))
    response = make_client().request(options(stub.url + "/api/v2/things", query_params={"x": "1"}))
    assert response.status == 200
    assert response.data == '{"a": 1}'
    assert response.getheader("ININ-RATELIMIT-COUNT") == "1"
    assert response.getheaders()["content-type"] == "application/json"
    assert stub.calls[0].query == {"x": ["1"]}


def test_error_status_raises_api_exception_like_rest_py(stub: StubServer) -> None:
    body = {"message": "gone", "code": "not.found", "status": 404}
    stub.script("GET", "/api/v2/things", Reply(404, body))
    with pytest.raises(ApiException) as info:
        make_client().request(options(stub.url + "/api/v2/things"))
    assert info.value.status == 404
    assert '"not.found"' in info.value.body
    assert info.value.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("status", [429, 503])
def test_no_silent_retries_even_with_retry_after(stub: StubServer, status: int) -> None:
    stub.script("PATCH", "/p", Reply(status, {"message": "later"}, {"Retry-After": "1"}))
    with pytest.raises(ApiException):
        make_client().request(options(stub.url + "/p", "PATCH", body={"wrapup": {}}))
    assert len(stub.calls_to("PATCH", "/p")) == 1


def test_json_body_and_query_for_writes(stub: StubServer) -> None:
    stub.script("PUT", "/s", Reply(200, {}))
    url = stub.url + "/s"
    make_client().request(options(url, "PUT", body=[{"id": "t"}], query_params={"q": "true"}))
    (call,) = stub.calls
    assert call.json() == [{"id": "t"}] and call.query == {"q": ["true"]}
    assert call.headers["content-type"] == "application/json"


def test_form_body(stub: StubServer) -> None:
    stub.script("POST", "/f", Reply(200, {}))
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    form = {"grant_type": "client_credentials"}
    make_client().request(options(stub.url + "/f", "POST", headers=headers, post_params=form))
    assert stub.calls[0].body == b"grant_type=client_credentials"


def test_read_timeout_is_request_timeout(stub: StubServer) -> None:
    stub.script("GET", "/slow", Reply(200, {}, delay=1.0))
    seen: Seen = []
    with pytest.raises(RequestTimeout) as info, endpoint("/slow/{id}"):
        make_client(seen, read=0.2).request(options(stub.url + "/slow"))
    assert "GET /slow/{id}" in str(info.value)
    assert seen[0][:3] == ("GET", "/slow/{id}", 0)


def test_connection_refused_is_transport_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TransportError) as info:
        make_client().request(options(f"http://127.0.0.1:{port}/x"))
    assert not isinstance(info.value, RequestTimeout)
    assert isinstance(classify(info.value), Retry)


def test_on_response_gets_the_template(stub: StubServer) -> None:
    stub.script("GET", "/api/v2/conversations/c0ffee00-0000-4000-8000-000000000001", Reply(204))
    seen: Seen = []
    url = stub.url + "/api/v2/conversations/c0ffee00-0000-4000-8000-000000000001"
    with endpoint("/api/v2/conversations/{conversationId}"):
        make_client(seen).request(options(url))
    make_client(seen).request(options(url))
    assert [s[1] for s in seen] == [
        "/api/v2/conversations/{conversationId}",
        "/api/v2/conversations/{id}",
    ]
    assert all(s[2] == 204 and s[3] >= 0 for s in seen)


def test_a_failing_hook_does_not_fail_the_call(stub: StubServer) -> None:
    stub.script("GET", "/x", Reply(200, {}))

    def broken(*_: Any) -> None:
        raise RuntimeError("metrics bug")

    client = PinnedHttpClient(connect_timeout=1, read_timeout=1, on_response=broken)
    assert client.request(options(stub.url + "/x")).status == 200


def test_current_endpoint_fallback_hides_ids() -> None:
    url = "https://api.x/api/v2/notifications/channels/streaming-7-abcdef0123456789/subscriptions"
    assert current_endpoint(url) == "/api/v2/notifications/channels/{id}/subscriptions"
    assert current_endpoint("https://api.x/api/v2/routing/queues") == "/api/v2/routing/queues"


def test_generated_api_methods_work_through_the_client(stub: StubServer) -> None:
    stub.script("GET", "/api/v2/routing/queues/q1", Reply(200, {"id": "q1", "name": "Support"}))
    pin_sdk_configuration()
    api = ApiClient(host=stub.url)
    api.set_http_client(make_client())
    api.access_token = "secret-token"
    queue = RoutingApi(api).get_routing_queue("q1")
    assert (queue.id, queue.name) == ("q1", "Support")
    assert stub.calls[0].headers["authorization"] == "Bearer secret-token"


def test_the_sdk_builds_no_log_line_per_request(
    stub: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK's trace/debug lines (headers formatted, then discarded) cost the GIL per call."""
    stub.script("GET", "/api/v2/routing/queues/q1", Reply(200, {"id": "q1", "name": "Support"}))
    stub.script("GET", "/api/v2/routing/queues/q2", Reply(404, {"message": "gone"}))
    pin_sdk_configuration()

    def built(*_: Any, **__: Any) -> None:
        raise AssertionError("the SDK built a log line for a request")

    monkeypatch.setattr(sdk_logger, "LogStatement", built)
    api = ApiClient(host=stub.url)
    api.set_http_client(make_client())
    assert RoutingApi(api).get_routing_queue("q1").name == "Support"
    with pytest.raises(ApiException):
        RoutingApi(api).get_routing_queue("q2")
    pin_sdk_configuration()  # idempotent: still the quiet logger, still silenced
    assert Configuration().logger.log_level == LogLevel.LNone


def test_pinned_configuration_undoes_and_ignores_the_config_file(tmp_path: Any) -> None:
    config = Configuration()
    pin_sdk_configuration()
    stray = tmp_path / "config"
    stray.write_text(
        "[general]\nhost = https://api.evil.example\nlive_reload_config = true\n"
        f"[logging]\nlog_level = trace\nlog_to_console = true\nlog_file_path = {tmp_path}/sdk.log\n"
        "[gateway]\nhost = gateway.evil.example\n"
    )
    config.config_file_path = str(stray)  # as if the file had been there when the SDK started
    assert config.host == "https://api.evil.example"
    pin_sdk_configuration()
    config._update_config_from_file()  # what the file watcher does on a change
    assert config.host == "https://api.mypurecloud.com"
    assert config.live_reload_config is False
    assert config.logger.log_level == LogLevel.LNone
    assert config.logger.log_to_console is False
    assert config.logger.log_file_path is None
    assert config.gateway_configuration is None
    assert not config.should_refresh_access_token
