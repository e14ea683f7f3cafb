"""``/livez``, ``/readyz`` and ``/metrics`` over a tiny HTTP/1.1 server on the daemon's own loop.

Why stdlib ``asyncio.start_server`` and not a web framework: three read-only GET routes do not
justify a dependency, and serving them from the daemon's event loop is the point of ``/livez`` —
an answer proves the loop still turns. Each connection carries one request and is closed
(``Connection: close``), requests are bounded in size and time, and nothing a client sends can
raise out of the handler: a probe endpoint that can be crashed by a port scanner is worse than none.

``/livez`` checks nothing else on purpose: a liveness failure gets the process restarted, and a
platform outage must not restart a healthy daemon. ``/readyz`` reports the caller's checks
(token, socket, heartbeat, codes) so an orchestrator or a human sees *which* one is failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import structlog

from wrapupd.metrics import Metrics

log = structlog.get_logger(__name__)

Readiness = Callable[[], Mapping[str, tuple[bool, str]]]
"""Named checks: ``{"socket": (False, "disconnected 3.2s"), "token": (True, "")}``."""

MAX_REQUEST_BYTES = 8192
REQUEST_TIMEOUT_S = 5.0

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}
_TEXT = "text/plain; charset=utf-8"
_JSON = "application/json"


def parse_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:9464"`` / ``"[::1]:9464"`` / ``"localhost:0"`` -> ``(host, port)``.

    IPv6 literals need brackets because ``::1:9464`` is ambiguous. Raises ``ValueError`` with the
    offending value so the settings layer can turn it into a readable config error.
    """
    host, sep, port_text = listen.strip().rpartition(":")
    if not sep or not host:
        raise ValueError(f"listen address {listen!r}: expected HOST:PORT, e.g. 127.0.0.1:9464")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host or "[" in host or "]" in host:
        raise ValueError(f"listen address {listen!r}: write IPv6 addresses as [addr]:port")
    if not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"listen address {listen!r}: port must be 0..65535 and host non-empty")
    return host, int(port_text)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = _TEXT
    headers: tuple[tuple[str, str], ...] = field(default=())

    def encode(self, *, head_only: bool = False) -> bytes:
        """Serialise with Content-Length and ``Connection: close``; HEAD gets the headers only."""
        lines = [
            f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Unknown')}",
            f"Content-Type: {self.content_type}",
            f"Content-Length: {len(self.body)}",
            "Cache-Control: no-store",
            "Connection: close",
            *(f"{name}: {value}" for name, value in self.headers),
        ]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
        return head if head_only else head + self.body


def _text(status: int, text: str, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    return Response(status, (text + "\n").encode(), _TEXT, headers)


class BadRequest(Exception):
    """The request line or headers cannot be parsed: answer 400 (or the status given)."""

    def __init__(self, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.status = status


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str


def parse_request_head(head: bytes) -> Request:
    """Parse ``METHOD SP target SP HTTP/1.x`` plus header lines; headers are checked, not kept."""
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        raise BadRequest("request head is not ASCII") from None
    request_line, *header_lines = text.removesuffix("\r\n\r\n").split("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[1]:
        raise BadRequest("malformed request line")
    method, target, version = parts
    if not version.startswith("HTTP/1."):
        raise BadRequest("only HTTP/1.x is spoken here", status=505 if "HTTP/" in version else 400)
    if any(":" not in line or line[:1] in (" ", "\t") for line in header_lines):
        raise BadRequest("malformed header line")
    return Request(method, target.split("?", 1)[0])


def readiness_response(readiness: Readiness) -> Response:
    """200 when every check passes, else 503; either way the JSON body names each check."""
    try:
        checks = dict(readiness())
    except Exception as exc:  # a broken check means "not ready", never a crashed probe
        log.warning("readiness check raised", error=repr(exc))
        body = {"ready": False, "checks": {}, "error": type(exc).__name__}
        return Response(503, json.dumps(body).encode(), _JSON)
    report = {name: _check_entry(ok, detail) for name, (ok, detail) in checks.items()}
    ready = all(entry["ok"] for entry in report.values())
    payload = json.dumps({"ready": ready, "checks": report}, sort_keys=True).encode()
    return Response(200 if ready else 503, payload, _JSON)


def _check_entry(ok: bool, detail: str) -> dict[str, object]:
    return {"ok": bool(ok), "detail": detail} if detail else {"ok": bool(ok)}


class HealthServer:
    """Serves the probes on ``host:port`` (port 0 picks a free port; :meth:`start` returns it)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        readiness: Readiness,
        metrics: Metrics,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        request_timeout: float = REQUEST_TIMEOUT_S,
    ) -> None:
        self._host, self._port = host, port
        self._readiness = readiness
        self._metrics = metrics
        self._max_request_bytes = max_request_bytes
        self._request_timeout = request_timeout
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> tuple[str, int]:
        """Bind and listen; returns the bound ``(host, port)``."""
        self._server = await asyncio.start_server(
            self._serve_connection, self._host, self._port, limit=self._max_request_bytes
        )
        host, port = self._server.sockets[0].getsockname()[:2]
        log.info("health server listening", host=host, port=port)
        return str(host), int(port)

    async def stop(self) -> None:
        """Stop listening and cut any connection still open (a probe never needs a long goodbye)."""
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            await self._answer(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away; nothing to answer
        except Exception:  # never let one connection take the server down
            log.exception("health request failed")
        finally:
            if task is not None:
                self._connections.discard(task)
            await _close(writer)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head_only = False
        try:
            request = await self._read_request(reader)
            head_only = request.method == "HEAD"
            response = self._route(request)
        except BadRequest as exc:
            response = _text(exc.status, str(exc))
        writer.write(response.encode(head_only=head_only))
        await writer.drain()

    async def _read_request(self, reader: asyncio.StreamReader) -> Request:
        try:
            async with asyncio.timeout(self._request_timeout):
                head = await reader.readuntil(b"\r\n\r\n")
        except TimeoutError:
            raise BadRequest("request not received in time", status=408) from None
        except asyncio.LimitOverrunError:
            raise BadRequest("request head too large", status=431) from None
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                raise  # connected and left without a word: nothing to answer
            raise BadRequest("request head ended early") from None
        return parse_request_head(head)

    def _route(self, request: Request) -> Response:
        handler = self._routes().get(request.path)
        if handler is None:
            return _text(404, "not found")
        if request.method not in ("GET", "HEAD"):
            return _text(405, "method not allowed", headers=(("Allow", "GET, HEAD"),))
        return handler()

    def _routes(self) -> dict[str, Callable[[], Response]]:
        return {"/livez": self._livez, "/readyz": self._readyz, "/metrics": self._metrics_page}

    def _livez(self) -> Response:
        return _text(200, "ok")

    def _readyz(self) -> Response:
        return readiness_response(self._readiness)

    def _metrics_page(self) -> Response:
        try:
            return Response(200, self._metrics.render(), self._metrics.content_type)
        except Exception as exc:
            log.warning("metrics rendering failed", error=repr(exc))
            return _text(500, "metrics unavailable")


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
