"""What ``/readyz`` and the systemd watchdog report, read from the parts' own state.

Readiness names each check (token, socket, heartbeat, codes, subscriptions) so an operator sees
which one fails. The watchdog is stricter about time and looser about everything else: it only
asks whether frames still arrive, so systemd restarts a wedged daemon but not one merely waiting
out the platform.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from wrapupd.clock import Clock
from wrapupd.code_cache import CodeCache
from wrapupd.events import TopicResult

Checks = Mapping[str, tuple[bool, str]]


class TokenHolder(Protocol):
    """The client, as far as readiness asks: when its token expires."""

    @property
    def token_expires_at(self) -> datetime | None: ...


class SocketHealth(Protocol):
    """The subscriber, as far as readiness and the watchdog ask."""

    @property
    def connected(self) -> bool: ...

    @property
    def rejected_topics(self) -> list[TopicResult]: ...

    @property
    def last_frame_at(self) -> float | None: ...

    def heartbeat_age(self) -> float | None: ...


def readiness(
    client: TokenHolder, socket: SocketHealth, codes: CodeCache, clock: Clock, fresh_limit: float
) -> Checks:
    """Every named check with its verdict and a short detail."""
    expires = client.token_expires_at
    token_ok = expires is not None and expires > clock.now()
    rejected = socket.rejected_topics
    return {
        "token": (token_ok, f"expires {expires.isoformat()}" if expires else "no token"),
        "socket": (socket.connected, "connected" if socket.connected else "disconnected"),
        "heartbeat": _heartbeat(socket, fresh_limit),
        "codes": (codes.loaded, _codes_detail(codes)),
        "subscriptions": (
            not rejected,
            "all permitted" if not rejected else ", ".join(r.topic for r in rejected),
        ),
    }


def _heartbeat(socket: SocketHealth, limit: float) -> tuple[bool, str]:
    """Fresh when a frame arrived within the limit; a socket just opened counts as fresh."""
    age = socket.heartbeat_age()
    if age is None:
        connected = socket.connected
        return connected, "connected, no frame yet" if connected else "never"
    return age <= limit, f"last frame {age:.1f}s ago"


def _codes_detail(codes: CodeCache) -> str:
    if not codes.loaded:
        return "not loaded"
    verified = "verified" if codes.verified else "assignments being verified"
    dropped = len(codes.problems)
    problems = f"; {dropped} dropped (code_not_assigned)" if dropped else ""
    return f"{len(codes.queue_ids)} queues, {verified}{problems}"


def watchdog_healthy(socket: SocketHealth, limit: float) -> bool:
    """Frames still arrive (or none has yet: systemd's start timeout covers start-up)."""
    if socket.last_frame_at is None:
        return True
    return (socket.heartbeat_age() or 0.0) <= limit
