"""Shared fixtures: one in-process Genesys emulator per session, reset before each test."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from genesys_emulator.testing import RunningEmulator, running_emulator

# Short intervals so that every test runs in milliseconds.
TEST_OPTIONS: dict[str, Any] = {
    "org": "demo",
    "heartbeat_interval_s": 0.2,
    "token_lifetime_s": 3600,
    "channel_lifetime_s": 3600,
    "socket_closing_lead_s": 0.2,
    "rate_limit_per_window": 300,
    "rate_window_s": 60,
    "require_user_context": False,
}


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[RunningEmulator]:
    with running_emulator(**TEST_OPTIONS) as emu:
        yield emu


@pytest.fixture
def emulator(emulator_server: RunningEmulator) -> RunningEmulator:
    emulator_server.reset(**TEST_OPTIONS)
    return emulator_server


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


class RawClient:
    """Plain urllib access to the emulator (the SDK silently retries 429s)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def token(self, client_id: str, secret: str) -> Reply:
        basic = b64encode(f"{client_id}:{secret}".encode()).decode()
        return self.request(
            "POST",
            "/oauth/token",
            data=b"grant_type=client_credentials",
            headers={
                "Authorization": f"Basic {basic}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )

    def bearer(self, client_id: str, secret: str) -> str:
        reply = self.token(client_id, secret)
        assert reply.status == 200, reply.body
        return str(reply.body["access_token"])

    def call(self, method: str, path: str, token: str | None, body: object = None) -> Reply:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode()
        return self.request(method, path, data=data, headers=headers)

    def request(self, method: str, path: str, data: bytes | None, headers: dict[str, str]) -> Reply:
        req = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return Reply(resp.status, dict(resp.headers), _decode(resp.read()))
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, dict(exc.headers), _decode(exc.read()))


def _decode(raw: bytes) -> Any:
    return json.loads(raw) if raw else None


@pytest.fixture
def raw(emulator: RunningEmulator) -> RawClient:
    return RawClient(emulator.base_url)


@pytest.fixture
def main_token(emulator: RunningEmulator, raw: RawClient) -> str:
    return raw.bearer(emulator.client_id, emulator.client_secret)


@pytest.fixture
def sdk(emulator: RunningEmulator) -> Any:
    """An authenticated official-SDK ApiClient for the org's main client."""
    import PureCloudPlatformClientV2 as sdk_module

    client = sdk_module.api_client.ApiClient(host=emulator.base_url)
    client.get_client_credentials_token(emulator.client_id, emulator.client_secret)
    return client


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.01) -> Any:
    """Poll an observable fact; never a bare sleep."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


@pytest.fixture
def wait() -> Callable[..., Any]:
    return wait_until
