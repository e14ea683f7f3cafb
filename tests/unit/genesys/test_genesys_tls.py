"""TLS contexts are built once and shared: never one per connection, never on the event loop.

Real TLS on loopback: a throwaway certificate for 127.0.0.1 (made with the ``openssl`` command, by
``bench.tls_connect``), a WebSocket server and an HTTPS server that present it. The clients trust it
only through the context wrapupd hands them, so a connection that succeeds proves that context was
used.
"""

from __future__ import annotations

import os
import shutil
import ssl
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import websockets
from bench import tls_connect
from PureCloudPlatformClientV2.http_request_options import HttpRequestOptions

from wrapupd.channels import websocket_connector
from wrapupd.genesys.http import PinnedHttpClient
from wrapupd.genesys.tls import https_context, websocket_context


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    if shutil.which("openssl") is None:
        reason = "the openssl command is not installed: apt-get install openssl"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (.ci/run installs it; CI must not skip these tests)")
        pytest.skip(reason)
    return tls_connect.certificate(tmp_path_factory.mktemp("tls"))


class CountingContext(ssl.SSLContext):
    """A client context that counts how often certificates are loaded into it."""

    loads = 0

    def load_verify_locations(self, *args: Any, **kwargs: Any) -> None:
        self.loads += 1
        super().load_verify_locations(*args, **kwargs)


def trusting(certificate: tuple[Path, Path]) -> CountingContext:
    context = CountingContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(certificate[0])
    return context


def test_each_kind_of_context_is_built_once_and_verifies_certificates_and_host_names() -> None:
    for build in (websocket_context, https_context):
        context = build()
        assert build() is context
        assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert websocket_context() is not https_context()


async def test_wss_connections_share_one_context_built_off_the_event_loop(
    certificate: tuple[Path, Path],
) -> None:
    loop_thread = threading.get_ident()
    context = trusting(certificate)
    built_on: list[int] = []

    def tls() -> ssl.SSLContext:
        built_on.append(threading.get_ident())
        return context

    connect = websocket_connector(max_message_bytes=2**20, open_timeout=5, tls=tls)
    async with websockets.serve(
        tls_connect.echo, "127.0.0.1", 0, ssl=tls_connect.server_context(*certificate)
    ) as server:
        port = server.sockets[0].getsockname()[1]
        for n in range(3):
            socket = await connect(f"wss://127.0.0.1:{port}/channel")
            await socket.send(f"ping {n}")
            assert await socket.recv() == f"ping {n}"
            await socket.close()

    assert len(built_on) == 3 and loop_thread not in built_on
    assert context.loads == 1  # the certificates were read once, when the test built it


async def test_a_plain_ws_connection_builds_no_tls_context() -> None:
    asked: list[int] = []

    def tls() -> ssl.SSLContext:
        asked.append(1)
        return ssl.create_default_context()

    connect = websocket_connector(max_message_bytes=2**20, open_timeout=5, tls=tls)
    async with websockets.serve(tls_connect.echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        socket = await connect(f"ws://127.0.0.1:{port}/channel")
        await socket.send("ping")
        assert await socket.recv() == "ping"
        await socket.close()

    assert asked == []


@pytest.fixture
def https_server(certificate: tuple[Path, Path]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), tls_connect.ClosingHandler)
    server.socket = tls_connect.server_context(*certificate).wrap_socket(
        server.socket, server_side=True
    )
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_every_new_https_connection_reuses_the_clients_one_context(
    certificate: tuple[Path, Path], https_server: str
) -> None:
    context = trusting(certificate)
    client = PinnedHttpClient(connect_timeout=2, read_timeout=2, tls=context)

    for _ in range(3):
        options = HttpRequestOptions(url=f"{https_server}/api/v2/things", method="GET")
        assert client.request(options).status == 200

    assert context.loads == 1
    client.close()
