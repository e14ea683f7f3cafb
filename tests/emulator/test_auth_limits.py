"""OAuth, 401s, per-token rate limits and the headers every API response carries."""

from __future__ import annotations

from typing import Any

import PureCloudPlatformClientV2 as sdk_module
import pytest

from emulator_client import RawClient
from genesys_emulator.testing import RunningEmulator

QUEUES = "/api/v2/routing/queues"


def test_sdk_gets_a_token_from_the_same_host(sdk: Any) -> None:
    listing = sdk_module.RoutingApi(sdk).get_routing_queues(page_size=100)
    assert listing.total == 6


def test_token_response_shape(emulator: RunningEmulator, raw: RawClient) -> None:
    reply = raw.token(emulator.client_id, emulator.client_secret)
    assert reply.status == 200
    assert set(reply.body) == {"access_token", "token_type", "expires_in"}
    assert reply.body["token_type"] == "bearer"
    assert reply.body["expires_in"] == 3600


def test_token_lifetime_is_configurable(emulator: RunningEmulator, raw: RawClient) -> None:
    emulator.reset(token_lifetime_s=300)
    assert raw.token(emulator.client_id, emulator.client_secret).body["expires_in"] == 300


@pytest.mark.parametrize(
    ("client_id", "secret", "status"),
    [("wrapupd-demo", "wrong", 401), ("nobody", "x", 400)],
)
def test_bad_client_credentials(raw: RawClient, client_id: str, secret: str, status: int) -> None:
    reply = raw.token(client_id, secret)
    assert reply.status == status
    assert reply.body["error"] == "invalid_client"
    assert reply.body["description"]


def test_wrong_grant_type(emulator: RunningEmulator, raw: RawClient) -> None:
    from base64 import b64encode

    basic = b64encode(f"{emulator.client_id}:{emulator.client_secret}".encode()).decode()
    headers = {
        "Authorization": f"Basic {basic}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    reply = raw.request("POST", "/oauth/token", b"grant_type=password", headers)
    assert reply.status == 400
    assert reply.body["error"] == "unsupported_grant_type"


def test_missing_bearer_is_401(raw: RawClient) -> None:
    reply = raw.call("GET", QUEUES, None)
    assert reply.status == 401
    assert reply.body["code"] == "authentication.required"
    assert reply.headers["ININ-Correlation-Id"] == reply.body["contextId"]


def test_unknown_token_is_401_bad_credentials(raw: RawClient) -> None:
    reply = raw.call("GET", QUEUES, "not-a-token")
    assert (reply.status, reply.body["code"]) == (401, "bad.credentials")


def test_expired_token_is_401(emulator: RunningEmulator, raw: RawClient, wait: Any) -> None:
    emulator.reset(token_lifetime_s=0.1)
    token = raw.bearer(emulator.client_id, emulator.client_secret)
    assert raw.call("GET", QUEUES, token).status == 200
    wait(lambda: raw.call("GET", QUEUES, token).status == 401)


@pytest.mark.parametrize("kind", ["expire_tokens", "revoke_tokens"])
def test_expire_and_revoke_faults(emulator: RunningEmulator, raw: RawClient, kind: str) -> None:
    token = raw.bearer(emulator.client_id, emulator.client_secret)
    emulator.fault(kind=kind)
    reply = raw.call("GET", QUEUES, token)
    assert (reply.status, reply.body["code"]) == (401, "bad.credentials")
    fresh = raw.bearer(emulator.client_id, emulator.client_secret)
    assert raw.call("GET", QUEUES, fresh).status == 200


def test_every_api_response_has_rate_limit_and_correlation_headers(
    raw: RawClient, main_token: str
) -> None:
    for path in (QUEUES, QUEUES + "/nope"):
        headers = {k.lower(): v for k, v in raw.call("GET", path, main_token).headers.items()}
        assert headers["inin-ratelimit-allowed"] == "300"
        assert int(headers["inin-ratelimit-count"]) >= 1
        assert int(headers["inin-ratelimit-reset"]) >= 1
        assert headers["inin-correlation-id"]


def test_rate_limit_429_body_and_retry_after(emulator: RunningEmulator, raw: RawClient) -> None:
    emulator.reset(rate_limit_per_window=3, rate_window_s=30)
    token = raw.bearer(emulator.client_id, emulator.client_secret)
    counts = [raw.call("GET", QUEUES, token).headers["inin-ratelimit-count"] for _ in range(3)]
    assert counts == ["1", "2", "3"]
    reply = raw.call("GET", QUEUES, token)
    assert reply.status == 429
    retry = int(reply.headers["Retry-After"])
    assert 1 <= retry <= 30
    assert reply.body == {
        "message": f"Rate limit exceeded the maximum. Retry the request in [{retry}] seconds",
        "code": "too.many.requests.retry.after",
        "status": 429,
        "contextId": reply.headers["ININ-Correlation-Id"],
        "details": [],
        "errors": [],
    }


def test_rate_limit_is_per_token_and_window_resets(
    emulator: RunningEmulator, raw: RawClient, wait: Any
) -> None:
    emulator.reset(rate_limit_per_window=1, rate_window_s=0.3)
    first = raw.bearer(emulator.client_id, emulator.client_secret)
    second = raw.bearer(emulator.client_id, emulator.client_secret)
    assert raw.call("GET", QUEUES, first).status == 200
    assert raw.call("GET", QUEUES, first).status == 429
    assert raw.call("GET", QUEUES, second).status == 200
    wait(lambda: raw.call("GET", QUEUES, first).status == 200)


def test_unknown_api_path_is_404_error_body(raw: RawClient, main_token: str) -> None:
    reply = raw.call("GET", "/api/v2/does/not/exist", main_token)
    assert (reply.status, reply.body["code"]) == (404, "not.found")
