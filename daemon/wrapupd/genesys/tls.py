"""TLS contexts, each built once per process and shared by every connection.

Building one parses the whole CA bundle: 50-70 ms here (OpenSSL 3). Left to themselves, asyncio
builds one for every WebSocket connection, on the event loop, which stands still meanwhile (ten
channels reconnecting held it for over half a second), and urllib3 builds one for every new HTTPS
connection, in the worker thread, before the request can leave. The verification is the same as
theirs: certificates required, host names checked; the notification sockets trust the system's CA
store (as asyncio's default context does), the REST calls certifi's bundle (as the SDK's own client).
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable

import certifi

_built: dict[str, ssl.SSLContext] = {}
_lock = threading.Lock()


def _once(name: str, build: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    with _lock:
        if name not in _built:
            _built[name] = build()
        return _built[name]


def websocket_context() -> ssl.SSLContext:
    """The notification sockets' TLS context: the system's CA store (slow the first time)."""
    return _once("websocket", ssl.create_default_context)


def https_context() -> ssl.SSLContext:
    """The REST calls' TLS context: certifi's CA bundle (slow the first time)."""
    return _once("https", lambda: ssl.create_default_context(cafile=certifi.where()))
