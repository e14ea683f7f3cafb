"""What ``/readyz`` and the systemd watchdog report, read from the parts' own state.

Readiness names each check (token, socket, heartbeat, codes, subscriptions, ledger, reconciler)
so an operator sees which one fails. The systemd watchdog asks none of this: it proves the event loop
alive (``Daemon.healthy``), so systemd restarts a wedged daemon but never one waiting out the
platform.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from wrapupd.clock import Clock
from wrapupd.code_cache import CodeCache
from wrapupd.events import TopicResult
from wrapupd.ledger import LedgerHealth

Checks = Mapping[str, tuple[bool, str]]


class TokenHolder(Protocol):
    """The client, as far as readiness asks: when its token expires."""

    @property
    def token_expires_at(self) -> datetime | None: ...


class SocketHealth(Protocol):
    """The subscriber, as far as readiness asks."""

    @property
    def connected(self) -> bool: ...

    @property
    def rejected_topics(self) -> list[TopicResult]: ...

    def heartbeat_age(self) -> float | None: ...


class LedgerState(Protocol):
    """The ledger, as far as readiness asks: whether its storage takes writes now."""

    def health(self) -> LedgerHealth: ...


class SweepHealth(Protocol):
    """The reconciler, as far as readiness asks: whether its sweeps still complete."""

    def status(self, now: float) -> tuple[bool, str]: ...


def readiness(
    client: TokenHolder,
    socket: SocketHealth,
    codes: CodeCache,
    clock: Clock,
    fresh_limit: float,
    *,
    ledger: LedgerState,
    sweeps: SweepHealth,
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
        "ledger": _ledger(ledger.health()),
        "reconciler": sweeps.status(clock.monotonic()),
    }


def _ledger(health: LedgerHealth) -> tuple[bool, str]:
    """Not ready while the storage fails (the process stays up and waits it out)."""
    if health.available:
        return True, health.detail
    waited = f" for {health.unavailable_for_s:.0f}s" if health.unavailable_for_s is not None else ""
    return False, f"{health.detail}{waited}; {health.queued} writes waiting in memory"


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
