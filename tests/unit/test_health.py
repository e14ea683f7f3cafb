"""wrapupd.health: real HTTP against 127.0.0.1 on a free port, well-formed and hostile."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry

from wrapupd.events import Outcome
from wrapupd.health import HealthServer, readiness_response
from wrapupd.metrics import Metrics


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


class Checks:
    """A mutable readiness source, standing in for the service's real checks."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[bool, str]] = {
            "token": (True, ""),
            "socket": (False, "disconnected 3.2s"),
        }

    def __call__(self) -> Mapping[str, tuple[bool, str]]:
        return self.values


@pytest.fixture
def checks() -> Checks:
    return Checks()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry())


@pytest.fixture
async def server(checks: Checks, metrics: Metrics) -> AsyncIterator[tuple[str, int]]:
    health = HealthServer("127.0.0.1", 0, readiness=checks, metrics=metrics, max_request_bytes=1024)
    address = await health.start()
    yield address
    await health.stop()


def _fetch(url: str, method: str) -> Reply:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, dict(error.headers), error.read())


async def get(address: tuple[str, int], path: str, method: str = "GET") -> Reply:
    host, port = address
    return await asyncio.to_thread(_fetch, f"http://{host}:{port}{path}", method)


async def raw(address: tuple[str, int], data: bytes) -> bytes:
    """Send bytes as-is and read until the server closes: what a broken client would see."""
    reader, writer = await asyncio.open_connection(*address)
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=5)
    writer.close()
    await writer.wait_closed()
    return answer


async def test_start_returns_the_bound_port(server: tuple[str, int]) -> None:
    host, port = server
    assert host == "127.0.0.1"
    assert port > 0


async def test_livez_is_200_without_any_dependency(server: tuple[str, int]) -> None:
    reply = await get(server, "/livez")
    assert reply.status == 200
    assert reply.body == b"ok\n"
    assert reply.headers["Connection"] == "close"


async def test_readyz_is_503_with_detail_then_200(server: tuple[str, int], checks: Checks) -> None:
    reply = await get(server, "/readyz")
    assert reply.status == 503
    assert reply.headers["Content-Type"] == "application/json"
    assert json.loads(reply.body) == {
        "ready": False,
        "checks": {
            "token": {"ok": True},
            "socket": {"ok": False, "detail": "disconnected 3.2s"},
        },
    }
    checks.values["socket"] = (True, "connected 12s")
    reply = await get(server, "/readyz")
    assert reply.status == 200
    assert json.loads(reply.body)["ready"] is True


async def test_readyz_is_503_when_a_check_raises(server: tuple[str, int]) -> None:
    def broken() -> Mapping[str, tuple[bool, str]]:
        raise RuntimeError("ledger closed")

    reply = readiness_response(broken)
    assert reply.status == 503
    assert isinstance(reply.body, bytes)
    assert json.loads(reply.body)["ready"] is False
    assert (await get(server, "/livez")).status == 200


async def test_metrics_serves_the_registry(server: tuple[str, int], metrics: Metrics) -> None:
    metrics.outcome(Outcome.APPLIED)
    reply = await get(server, "/metrics")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/plain")
    assert b'wrapupd_outcomes_total{outcome="applied"} 1.0' in reply.body


async def test_head_has_headers_but_no_body(server: tuple[str, int]) -> None:
    reply = await get(server, "/livez", method="HEAD")
    assert reply.status == 200
    assert reply.headers["Content-Length"] == "3"
    assert reply.body == b""


async def test_unknown_path_is_404(server: tuple[str, int]) -> None:
    assert (await get(server, "/nope")).status == 404


async def test_query_string_is_ignored(server: tuple[str, int]) -> None:
    assert (await get(server, "/livez?verbose=1")).status == 200


async def test_other_methods_are_405_with_allow(server: tuple[str, int]) -> None:
    reply = await get(server, "/livez", method="POST")
    assert reply.status == 405
    assert reply.headers["Allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /livez HTTP/1.1 extra\r\nHost: h\r\n\r\n",
        b"GET /livez HTTP/1.1\r\nHost: h\r\nno colon here\r\n\r\n",
        b"GET /l\xffvez HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nA: b\r\n  continued\r\n\r\n",
        b"GET /livez HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
    ],
)
async def test_malformed_request_is_400(
    server: tuple[str, int], request_bytes: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    answer = await raw(server, request_bytes)
    assert answer.split(b"\r\n", 1)[0].split(b" ")[1] == b"400"
    assert (await get(server, "/livez")).status == 200  # and the server lives on
    assert [
        r for r in caplog.records if r.levelno >= logging.ERROR
    ] == []  # no traceback to page anyone


async def test_oversized_request_is_refused(server: tuple[str, int]) -> None:
    answer = await raw(
        server, b"GET /livez HTTP/1.1\r\nHost: h\r\nX-Pad: " + b"a" * 4096 + b"\r\n\r\n"
    )
    assert answer.split(b" ")[1] == b"400"
    assert (await get(server, "/livez")).status == 200


async def test_request_ending_early_is_closed_and_the_server_lives_on(
    server: tuple[str, int],
) -> None:
    reader, writer = await asyncio.open_connection(*server)
    writer.write(b"GET /livez HTTP/1.1\r\n")
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), timeout=5) == b""
    writer.close()
    assert (await get(server, "/livez")).status == 200


async def test_slow_client_is_cut_off(checks: Checks, metrics: Metrics) -> None:
    health = HealthServer("127.0.0.1", 0, readiness=checks, metrics=metrics, request_timeout=0.05)
    address = await health.start()
    try:
        assert await raw(address, b"GET /livez HTTP/1.1\r\n") == b""  # closed, not held open
    finally:
        await health.stop()


async def test_silent_disconnect_is_harmless(server: tuple[str, int]) -> None:
    _, writer = await asyncio.open_connection(*server)
    writer.close()
    await writer.wait_closed()
    assert (await get(server, "/livez")).status == 200


async def test_stop_closes_idle_connections_and_the_port(checks: Checks, metrics: Metrics) -> None:
    health = HealthServer("127.0.0.1", 0, readiness=checks, metrics=metrics)
    address = await health.start()
    reader, writer = await asyncio.open_connection(*address)  # idle: sends nothing
    await asyncio.wait_for(health.stop(), timeout=5)
    assert await asyncio.wait_for(reader.read(), timeout=5) == b""
    writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection(*address)
    await health.stop()  # idempotent


async def test_metrics_failure_is_500_not_a_crash(checks: Checks) -> None:
    class BrokenMetrics(Metrics):
        def render(self) -> bytes:
            raise RuntimeError("collector failed")

    health = HealthServer(
        "127.0.0.1", 0, readiness=checks, metrics=BrokenMetrics(CollectorRegistry())
    )
    address = await health.start()
    try:
        assert (await get(address, "/metrics")).status == 500
        assert (await get(address, "/livez")).status == 200
    finally:
        await health.stop()


async def test_the_server_header_names_no_library_version(server: tuple[str, int]) -> None:
    reply = await get(server, "/livez")
    assert reply.headers["Server"] == "wrapupd"
