"""``python -m bench.tls_connect [--connects N]``: what opening a TLS connection costs, per context.

The benchmark's traffic is plain HTTP on loopback, so it never pays for TLS; a real org is
``https://`` and ``wss://``. This measures both clients on loopback with a throwaway certificate
for 127.0.0.1 (made with ``openssl``) appended to a copy of the CA bundle each client really loads,
so building a context costs what it costs in production:

- WebSocket: how long the event loop stands still while one ``wss://`` socket opens, and while ten
  open at once, with a context built for each connection (what ``websockets``/asyncio do when given
  none) against wrapupd's connector (:func:`wrapupd.channels.websocket_connector`, one context);
- HTTPS: one request on a new connection with urllib3 building a context per connection (what
  ``PinnedHttpClient`` did) against one shared context (what it does now).

Prints one JSON object. A measurement, never an assertion.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import certifi
import urllib3
import websockets

from wrapupd.channels import websocket_connector

OPENSSL_SELF_SIGNED = (
    *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
    *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
)
SYSTEM_BUNDLE = Path(ssl.get_default_verify_paths().openssl_cafile or "")


def certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, and its key."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [*OPENSSL_SELF_SIGNED, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server's TLS context presenting ``cert``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


async def echo(socket: Any) -> None:
    """A WebSocket server's handler: every message straight back."""
    async for message in socket:
        await socket.send(message)


def bundle_with(cert: Path, base: Path, path: Path) -> Path:
    """A copy of the CA bundle ``base`` that also trusts ``cert``."""
    path.write_text(base.read_text() + cert.read_text())
    return path


async def stall_while(work: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """The event loop's longest stand-still while ``work`` runs, and how long it took (ms)."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    await work()
    took = time.perf_counter() - started
    done.set()
    await ticking
    return max(gaps) * 1000, took * 1000


async def websocket_figures(cert: Path, key: Path, connects: int) -> dict[str, Any]:
    async with websockets.serve(echo, "127.0.0.1", 0, ssl=server_context(cert, key)) as server:
        uri = f"wss://127.0.0.1:{server.sockets[0].getsockname()[1]}/channel"
        shared = websocket_connector(max_message_bytes=2**20, open_timeout=10)

        async def per_connection() -> None:
            socket = await websockets.connect(uri, ping_interval=None)
            await socket.close()

        async def one_context() -> None:
            socket = await shared(uri)
            await socket.close()

        await one_context()  # the process's one context, built at its first connection
        out: dict[str, Any] = {}
        for name, connect in (("context_per_connection", per_connection), ("wrapupd", one_context)):
            rows = [await stall_while(connect) for _ in range(connects)]
            ten = await stall_while(lambda c=connect: asyncio.gather(*(c() for _ in range(10))))
            out[name] = {
                "loop_stall_ms_median": round(statistics.median(r[0] for r in rows), 1),
                "loop_stall_ms_max": round(max(r[0] for r in rows), 1),
                "connect_ms_median": round(statistics.median(r[1] for r in rows), 1),
                "ten_at_once_loop_stall_ms": round(ten[0], 1),
                "ten_at_once_ms": round(ten[1], 1),
            }
        return out


class ClosingHandler(BaseHTTPRequestHandler):
    """Answers every GET 200 and closes the connection: each request needs a new one."""

    def do_GET(self) -> None:
        """200, ``{}``, and the connection closed."""
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"{}")
        self.close_connection = True

    def log_message(self, *_: Any) -> None:
        """Quiet."""


def https_figures(cert: Path, key: Path, bundle: Path, requests: int) -> dict[str, Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ClosingHandler)
    server.socket = server_context(cert, key).wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{server.server_address[1]}/api/v2/things"
    pools = {
        "context_per_connection": urllib3.PoolManager(
            retries=False, cert_reqs="CERT_REQUIRED", ca_certs=str(bundle)
        ),
        "wrapupd": urllib3.PoolManager(
            retries=False,
            cert_reqs="CERT_REQUIRED",
            ssl_context=ssl.create_default_context(cafile=str(bundle)),
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in pools}
    try:
        for _ in range(requests):
            for name, pool in pools.items():
                started = time.perf_counter()
                pool.request("GET", url)
                times[name].append((time.perf_counter() - started) * 1000)
    finally:
        server.shutdown()
        server.server_close()
    return {
        name: {"new_connection_request_ms_median": round(statistics.median(ms), 1)}
        for name, ms in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.tls_connect", description=__doc__)
    parser.add_argument("--connects", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wrapupd-tls-") as tmp:
        folder = Path(tmp)
        cert, key = certificate(folder)
        os.environ["SSL_CERT_FILE"] = str(bundle_with(cert, SYSTEM_BUNDLE, folder / "system.pem"))
        https_bundle = bundle_with(cert, Path(certifi.where()), folder / "certifi.pem")
        figures = {
            "websocket": asyncio.run(websocket_figures(cert, key, args.connects)),
            "https": https_figures(cert, key, https_bundle, args.connects),
        }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
