"""``/livez``, ``/readyz`` and ``/metrics`` on aiohttp's low-level web server, on the daemon's own loop.

Why aiohttp and not a hand-written server: the listener parses whatever a port scanner or a
hostile client sends, and HTTP parsing belongs to a library that is fuzzed and maintained for it.
We keep only the routing: a dict of read-only GET/HEAD pages. Serving them from the daemon's event
loop is the point of ``/livez`` — an answer proves the loop still turns. Each response closes its
connection, request heads are bounded in size, a connection that does not finish its request in
``request_timeout`` is closed, and nothing a handler raises takes the listener down.

``/livez`` checks nothing else on purpose: a liveness failure gets the process restarted, and a
platform outage must not restart a healthy daemon. ``/readyz`` reports the caller's checks
(token, socket, heartbeat, codes) so an orchestrator or a human sees *which* one is failing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping

import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from wrapupd.metrics import Metrics
from wrapupd.status_report import StatusSource, report_to_json

log = structlog.get_logger(__name__)

Readiness = Callable[[], Mapping[str, tuple[bool, str]]]
"""Named checks: ``{"socket": (False, "disconnected 3.2s"), "token": (True, "")}``."""

Page = Callable[[], Awaitable[web.Response]]

MAX_REQUEST_BYTES = 8192
REQUEST_TIMEOUT_S = 5.0
SHUTDOWN_TIMEOUT_S = 1.0  # a probe never needs a long goodbye
REFRESH_SECONDS = 10

_TEXT = "text/plain; charset=utf-8"
_JSON = "application/json"
_HTML = "text/html; charset=utf-8"
_READ_ONLY = ("GET", "HEAD")


class _MalformedRequestFilter(logging.Filter):
    """Drops aiohttp's traceback for a request it refused as malformed: it is answered 400, and a
    port scanner must not fill the journal with ERROR lines that quote its bytes."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, HttpProcessingError)


_http_log = logging.getLogger("wrapupd.health.http")
_http_log.addFilter(_MalformedRequestFilter())


def _response(
    status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status, body=body, headers={"Content-Type": content_type, **(headers or {})}
    )


def _text(status: int, text: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return _response(status, (text + "\n").encode(), _TEXT, headers)


def readiness_response(readiness: Readiness) -> web.Response:
    """200 when every check passes, else 503; either way the JSON body names each check."""
    try:
        checks = dict(readiness())
    except Exception as exc:  # a broken check means "not ready", never a crashed probe
        log.warning("readiness check raised", error=repr(exc))
        body = {"ready": False, "checks": {}, "error": type(exc).__name__}
        return _response(503, json.dumps(body).encode(), _JSON)
    report = {name: _check_entry(ok, detail) for name, (ok, detail) in checks.items()}
    ready = all(entry["ok"] for entry in report.values())
    payload = json.dumps({"ready": ready, "checks": report}, sort_keys=True).encode()
    return _response(200 if ready else 503, payload, _JSON)


def _check_entry(ok: bool, detail: str) -> dict[str, object]:
    return {"ok": bool(ok), "detail": detail} if detail else {"ok": bool(ok)}


class HealthServer:
    """Serves the probes on ``host:port`` (port 0 picks a free port; :meth:`start` returns it).

    With a ``status`` source it also serves the status page at ``/`` (reloading itself every
    ``refresh_seconds``) and the same facts at ``/status.json``; without one those paths are 404.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        readiness: Readiness,
        metrics: Metrics,
        status: StatusSource | None = None,
        refresh_seconds: int = REFRESH_SECONDS,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        request_timeout: float = REQUEST_TIMEOUT_S,
    ) -> None:
        self._host, self._port = host, port
        self._readiness = readiness
        self._metrics = metrics
        self._status = status
        self._refresh_seconds = max(1, refresh_seconds)  # 0 would reload the page in a loop
        self._max_request_bytes = max_request_bytes
        self._request_timeout = request_timeout
        self._runner: web.ServerRunner | None = None
        self._pages: dict[str, Page] = {
            "/livez": self._livez,
            "/readyz": self._readyz,
            "/metrics": self._metrics_page,
        }
        if status is not None:
            self._pages.update({"/": self._status_page, "/status.json": self._status_json})

    async def start(self) -> tuple[str, int]:
        """Bind and listen; returns the bound ``(host, port)``."""
        server = web.Server(
            self._handle,
            access_log=None,
            logger=_http_log,
            max_line_size=self._max_request_bytes,
            max_field_size=self._max_request_bytes,
            keepalive_timeout=self._request_timeout,
        )
        runner = web.ServerRunner(server, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        log.info("health server listening", host=host, port=port)
        return str(host), int(port)

    async def stop(self) -> None:
        """Stop listening and close every connection still open."""
        if self._runner is None:
            return
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        try:
            response = await self._route(request)
        except Exception:  # never let one request take the listener down
            log.exception("health request failed")
            response = _text(500, "internal error")
        response.headers["Cache-Control"] = "no-store"
        response.headers["Server"] = "wrapupd"  # not aiohttp's version, for whoever scans the port
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.force_close()  # one request per connection: nothing idles on the listener
        return response

    async def _route(self, request: web.BaseRequest) -> web.Response:
        page = self._pages.get(request.path)
        if page is None:
            return _text(404, "not found")
        if request.method not in _READ_ONLY:
            return _text(405, "method not allowed", headers={"Allow": ", ".join(_READ_ONLY)})
        return await page()

    async def _livez(self) -> web.Response:
        return _text(200, "ok")

    async def _readyz(self) -> web.Response:
        return readiness_response(self._readiness)

    async def _metrics_page(self) -> web.Response:
        try:
            return _response(200, self._metrics.render(), self._metrics.content_type)
        except Exception as exc:
            log.warning("metrics rendering failed", error=repr(exc))
            return _text(500, "metrics unavailable")

    async def _status_page(self) -> web.Response:
        from wrapupd.status_page import CONTENT_SECURITY_POLICY, render_page  # on first view

        assert self._status is not None
        report = await self._status.status_report()
        page = render_page(report, refresh_seconds=self._refresh_seconds)
        return _response(
            200, page.encode(), _HTML, {"Content-Security-Policy": CONTENT_SECURITY_POLICY}
        )

    async def _status_json(self) -> web.Response:
        assert self._status is not None
        report = await self._status.status_report()
        return _response(200, json.dumps(report_to_json(report)).encode(), _JSON)
