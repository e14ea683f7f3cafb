"""Scripted faults: queued in order, each consumed by the requests it matches.

``http`` faults answer a status (429 with Retry-After, 5xx, or any body override) instead of the
real handler; ``latency`` faults delay a matching request before it is handled (a client that
gives up meanwhile takes the request with it: it never lands); ``late_answer`` faults handle it at
once and delay only its answer (a write lands, and its client may give up before it hears so).
Paths are globs (``*`` = one segment).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import ControlError

SOCKET_KINDS = (
    "drop_sockets",
    "socket_closing",
    "expire_channels",
    "expire_tokens",
    "revoke_tokens",
    "event_chaos",
    "raw_frames",
    "idle_close",
    "lose_events",
    "acw_state_noise",
    "expire_refresh_tokens",
    "revoke_refresh_tokens",
)
REQUEST_KINDS = ("http", "latency", "late_answer")


@dataclass
class RequestFault:
    kind: str
    method: str
    path: str
    count: int
    status: int = 0
    retry_after: int | None = None
    body: Any = None
    seconds: float = 0.0
    pattern: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        escaped = re.escape(self.path).replace(r"\*\*", ".*").replace(r"\*", "[^/]+")
        self.pattern = re.compile(f"^{escaped}$")

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and bool(self.pattern.match(path))

    def describe(self) -> dict[str, Any]:
        data = {
            "kind": self.kind,
            "method": self.method,
            "path": self.path,
            "remaining": self.count,
        }
        if self.kind == "http":
            data.update({"status": self.status, "retry_after": self.retry_after})
        else:
            data["seconds"] = self.seconds
        return data


class FaultQueue:
    def __init__(self) -> None:
        self.pending: list[RequestFault] = []

    def add(self, fault: RequestFault) -> None:
        self.pending.append(fault)

    def take(self, kind: str, method: str, path: str) -> RequestFault | None:
        """The first queued fault of ``kind`` matching the request, consumed once."""
        for fault in self.pending:
            if fault.kind == kind and fault.matches(method, path):
                fault.count -= 1
                if fault.count <= 0:
                    self.pending.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        self.pending.clear()


def parse_request_fault(spec: dict[str, Any]) -> RequestFault:
    kind = spec["kind"]
    method = str(spec.get("method", "*")).upper()
    path = spec.get("path", "/api/v2/**")
    count = spec.get("count", 1)
    if not isinstance(path, str) or not path.startswith("/"):
        raise ControlError("fault path must be a string starting with '/'")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ControlError("fault count must be a positive integer")
    if kind in ("latency", "late_answer"):
        return RequestFault(kind, method, path, count, seconds=_seconds(spec.get("seconds")))
    return _http_fault(spec, method, path, count)


def _http_fault(spec: dict[str, Any], method: str, path: str, count: int) -> RequestFault:
    status = spec.get("status")
    if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
        raise ControlError("http fault needs an integer status between 400 and 599")
    retry_after = spec.get("retry_after")
    if status == 429 and retry_after is None:
        retry_after = 1
    if retry_after is not None and (not isinstance(retry_after, int) or retry_after < 0):
        raise ControlError("retry_after must be a non-negative integer (seconds)")
    body = spec.get("body")
    if body is not None and not isinstance(body, dict | str):
        raise ControlError("body must be a JSON object or the string 'user_context'")
    return RequestFault("http", method, path, count, status, retry_after, body)


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ControlError("latency fault needs seconds >= 0")
    return float(value)
