"""A tiny scripted HTTP server on 127.0.0.1 (port 0) for the Genesys adapter's tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON, str -> as is, None -> empty
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Responder = Reply | Callable[[Call], Reply]


def token_reply(token: str = "tok-1", expires_in: int = 3600) -> Reply:
    return Reply(200, {"access_token": token, "token_type": "bearer", "expires_in": expires_in})


class StubServer:
    """Scripted answers per (method, path); the last scripted answer repeats. Logs every call."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._scripts: dict[tuple[str, str], list[Responder]] = {}
        self._lock = threading.Lock()
        self._tokens = 0
        self.script("POST", "/oauth/token", self._next_token)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> StubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def script(self, method: str, path: str, *replies: Responder) -> None:
        with self._lock:
            self._scripts[(method, path)] = list(replies)

    def calls_to(self, method: str, path: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.path == path]

    def _next_token(self, _: Call) -> Reply:
        self._tokens += 1
        return token_reply(f"tok-{self._tokens}")

    def _reply_for(self, call: Call) -> Reply:
        with self._lock:
            self.calls.append(call)
            replies = self._scripts.get((call.method, call.path))
            if not replies:
                return Reply(404, {"message": "no such route", "code": "not.found", "status": 404})
            responder = replies.pop(0) if len(replies) > 1 else replies[0]
        return responder(call) if callable(responder) else responder

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                call = Call(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length) if length else b"",
                )
                reply = stub._reply_for(call)
                if reply.delay:
                    time.sleep(reply.delay)
                self._send(reply)

            def _send(self, reply: Reply) -> None:
                if isinstance(reply.body, str):
                    data = reply.body.encode()
                elif reply.body is None:
                    data = b""
                else:
                    data = json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_PATCH = do_HEAD = do_DELETE = _handle

        return Handler
