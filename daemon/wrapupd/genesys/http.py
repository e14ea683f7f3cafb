"""The SDK's HTTP client, replaced: explicit timeouts, no silent retries, typed transport errors.

The SDK's own client (``rest.py``) retries 413/429/503 up to ten times for every method, PATCH
included, retries connection errors, and sets no timeout. wrapupd makes every retry decision
itself, so :class:`PinnedHttpClient` sends each request exactly once:

- a non-2xx answer raises the SDK's ``ApiException`` exactly as ``rest.py`` does, so the generated
  API methods behave as usual (``error_map`` turns it into a wrapupd error at the boundary);
- no answer raises :class:`~wrapupd.errors.TransportError`, or
  :class:`~wrapupd.errors.RequestTimeout` when the read timeout expired (a write may have landed).

The SDK also keeps a process-wide ``Configuration`` singleton that reads, and live-reloads,
``~/.genesyscloudpython/config``; :func:`pin_sdk_configuration` neutralises it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import certifi
import urllib3

from wrapupd.errors import RequestTimeout, TransportError
from wrapupd.genesys.sdk import (
    AbstractHttpClient,
    ApiClient,
    ApiException,
    Configuration,
    LogLevel,
    SdkLogger,
)
from wrapupd.genesys.tls import https_context

__all__ = [
    "HttpResponse",
    "PinnedHttpClient",
    "ResponseHook",
    "api_http_client",
    "endpoint",
    "pin_sdk_configuration",
]

log = logging.getLogger(__name__)

# method, endpoint template, status (0 = no answer), seconds, response headers
ResponseHook = Callable[[str, str, int, float, Mapping[str, str]], None]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "OPTIONS"})
_FORM = "application/x-www-form-urlencoded"
_ID_SEGMENT = re.compile(r"/(?=[^/]*\d)[0-9A-Za-z_-]{16,}(?=/|$)")
_NO_SUCH_FILE = os.path.join(os.devnull, "wrapupd-ignores-the-sdk-config-file")
_current = threading.local()


@contextlib.contextmanager
def endpoint(template: str) -> Iterator[None]:
    """Name the endpoint template (``/api/v2/conversations/{conversationId}``) of calls made here.

    The SDK hands the client a finished URL; the facade knows which template it called, and this
    thread-local carries it to metrics and errors without putting ids into labels.
    """
    previous = getattr(_current, "template", None)
    _current.template = template
    try:
        yield
    finally:
        _current.template = previous


def current_endpoint(url: str) -> str:
    """The template set by :func:`endpoint`, else the URL's path with id-like segments hidden."""
    template: str | None = getattr(_current, "template", None)
    if template:
        return template
    return _ID_SEGMENT.sub("/{id}", urlsplit(url).path)


class HttpResponse:
    """What the SDK expects of a response (see ``rest.RESTResponse``): data is ``str``."""

    def __init__(self, status: int, reason: str | None, data: str, headers: Mapping[str, str]):
        self.status = status
        self.reason = reason
        self.data = data
        self.headers = headers

    def getheaders(self) -> Mapping[str, str]:
        """The answer's headers, as the SDK's RESTResponse interface asks for them."""
        return self.headers

    def getheader(self, name: str, default: str | None = None) -> str | None:
        """One header of the answer, as the SDK asks for it."""
        return self.headers.get(name, default)


class PinnedHttpClient(AbstractHttpClient):  # type: ignore[misc]
    """An ``AbstractHttpClient`` on a urllib3 ``PoolManager`` with ``retries=False``.

    Thread-safe: the facade calls it from several worker threads at once.
    """

    def __init__(
        self,
        *,
        connect_timeout: float,
        read_timeout: float,
        max_connections: int = 10,
        on_response: ResponseHook | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__()
        self.timeout = read_timeout
        self._on_response = on_response
        self._timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        # With ``tls`` every connection shares that context; without it urllib3 builds a context,
        # and loads certifi's bundle into it, for each new connection (wrapupd.genesys.tls).
        self._pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=max_connections,
            block=False,
            retries=False,
            timeout=self._timeout,
            cert_reqs="CERT_REQUIRED",
            ssl_context=tls,
            ca_certs=None if tls is not None else certifi.where(),
        )

    def close(self) -> None:
        """Release the connection pool."""
        self._pool.clear()

    def request(self, http_request_options: Any) -> HttpResponse:
        """Send once; return the response, or raise ``ApiException`` / a transport error."""
        options = http_request_options
        method: str = options.method
        url: str = options.url
        template = current_endpoint(url)
        started = time.monotonic()
        try:
            raw = self._send(method, url, options)
        except urllib3.exceptions.HTTPError as exc:
            self._report(method, template, 0, time.monotonic() - started, {})
            raise _transport_error(method, template, exc) from None
        response = _to_response(raw)
        self._report(
            method, template, response.status, time.monotonic() - started, response.headers
        )
        if response.status not in range(200, 206):  # the same success range as rest.py
            raise ApiException(http_resp=response)
        return response

    def _send(self, method: str, url: str, options: Any) -> urllib3.BaseHTTPResponse:
        headers: dict[str, str] = dict(options.headers or {})
        headers.setdefault("Content-Type", "application/json")
        query: dict[str, Any] = options.query_params or {}
        if method not in _BODY_METHODS:
            return self._pool.request(method, url, fields=query or None, headers=headers)
        if query:
            url = f"{url}?{urlencode(query)}"
        if headers["Content-Type"] == _FORM:
            fields = options.post_params or {}
            return self._pool.request(
                method, url, fields=fields, encode_multipart=False, headers=headers
            )
        # Exactly like rest.py: a missing body is sent as JSON ``null``.
        return self._pool.request(method, url, body=json.dumps(options.body), headers=headers)

    def _report(
        self, method: str, template: str, status: int, seconds: float, headers: Mapping[str, str]
    ) -> None:
        if self._on_response is None:
            return
        try:
            self._on_response(method, template, status, seconds, headers)
        except Exception:  # a metrics bug must never fail a platform call
            log.exception("on_response callback failed")


def api_http_client(
    api_host: str,
    connect_timeout: float,
    read_timeout: float,
    max_connections: int,
    on_response: ResponseHook,
) -> PinnedHttpClient:
    """The client for ``api_host`` and its login host; over TLS every connection shares one context."""
    return PinnedHttpClient(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_connections=max_connections,
        on_response=on_response,
        tls=https_context() if api_host.startswith("https://") else None,
    )


def _to_response(raw: urllib3.BaseHTTPResponse) -> HttpResponse:
    data = raw.data.decode("utf-8", errors="replace") if raw.data else ""
    return HttpResponse(raw.status, raw.reason, data, raw.headers)


def _transport_error(method: str, template: str, exc: Exception) -> TransportError:
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return RequestTimeout(f"{method} {template}: no answer within the read timeout")
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        return TransportError(f"{method} {template}: connect timed out")
    if isinstance(exc, urllib3.exceptions.SSLError):
        return TransportError(f"{method} {template}: TLS failed: {exc}")
    return TransportError(f"{method} {template}: no answer ({type(exc).__name__})")


def pin_sdk_configuration() -> None:
    """Make the SDK's process-wide ``Configuration`` ignore ``~/.genesyscloudpython/config``.

    The singleton reads the file when first built and watches it for changes; a stray file could
    switch the host, a gateway, or request logging (which would print bearer tokens). Stop the
    reload, point it at a path that cannot exist, and reset everything the file can set.
    Idempotent; every wrapupd client calls it before building an ``ApiClient``.
    """
    config = Configuration()
    config.live_reload_config = False  # the file watcher's handler checks this flag
    observer = getattr(config, "_observer", None)
    if observer is not None:
        with contextlib.suppress(Exception):
            observer.unschedule_all()
    config.config_file_path = _NO_SUCH_FILE
    config.host = "https://api.mypurecloud.com"
    config.gateway_configuration = None
    config.should_refresh_access_token = False
    config.access_token = ""
    config.proxy = None
    config.verify_ssl = True
    _silence_sdk_logger(config.logger)
    if not isinstance(config.logger, _QuietSdkLogger):
        quiet = _QuietSdkLogger()
        _silence_sdk_logger(quiet)
        config.logger = quiet


class _QuietSdkLogger(SdkLogger):  # type: ignore[misc]
    """The SDK's request logger, with its per-request lines switched off at the source.

    ``ApiClient`` calls ``trace`` and ``debug`` after every request; each builds a text of the
    request's and the response's headers before the level (always off in wrapupd) discards it:
    ~40 µs of the GIL per call, taken from the event loop. wrapupd logs and counts its own calls.
    """

    def trace(self, *_: Any) -> None:
        """Nothing: see the class."""

    def debug(self, *_: Any) -> None:
        """Nothing: see the class."""

    def error(self, *_: Any) -> None:
        """Nothing: a failed call becomes a wrapupd error, logged where it is handled."""


def _silence_sdk_logger(logger: Any) -> None:
    file_handler = getattr(logger, "_file_handler", None)
    logger.log_request_body = False
    logger.log_response_body = False
    logger.log_file_path = None
    logger.log_to_console = False
    logger.log_level = LogLevel.LNone
    if file_handler is not None:
        with contextlib.suppress(Exception):
            file_handler.close()


def sdk_api_client(api_host: str, http_client: PinnedHttpClient) -> Any:
    """The SDK's ApiClient for this host, on our HTTP client and a pinned configuration."""
    pin_sdk_configuration()
    api = ApiClient(host=api_host)
    api.gateway_configuration = None  # copied from Configuration at construction: pin it too
    api.set_http_client(http_client)
    api.user_agent = "wrapupd PureCloud SDK/python"
    return api
