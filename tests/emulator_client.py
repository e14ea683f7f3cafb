"""Plain urllib access to the emulator for its own tests (the SDK silently retries 429s)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


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
