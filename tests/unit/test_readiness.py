"""Readiness and the watchdog: what ``/readyz`` and systemd learn from the parts' own state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from wrapupd.clock import ManualClock
from wrapupd.code_cache import CodeCache
from wrapupd.events import TopicResult
from wrapupd.ledger.model import LedgerHealth
from wrapupd.metrics import Metrics
from wrapupd.readiness import readiness

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class Client:
    token_expires_at = T0 + timedelta(hours=1)


class Socket:
    connected = True
    rejected_topics: list[TopicResult] = []
    last_frame_at: float | None = 0.0

    def heartbeat_age(self) -> float | None:
        return 1.0


class Ledger:
    def __init__(self, health: LedgerHealth) -> None:
        self._health = health

    def health(self) -> LedgerHealth:
        return self._health


class Sweeps:
    def status(self, now: float) -> tuple[bool, str]:
        return False, "no sweep completed for 901s"


def test_a_stalled_sweep_shows_in_readiness() -> None:
    """Issue 11 finding 5: sweeps that stop completing are visible in /readyz."""
    health = LedgerHealth(True, "ok", queued=0)
    assert checks_with(health)["reconciler"] == (False, "no sweep completed for 901s")


def checks_with(health: LedgerHealth) -> dict[str, tuple[bool, str]]:
    clock = ManualClock(T0)
    metrics = Metrics(process_metrics=False)
    codes = CodeCache(None, [], clock=clock, metrics=metrics)  # type: ignore[arg-type]  # never resolves
    checks = readiness(
        Client(), Socket(), codes, clock, 30.0, ledger=Ledger(health), sweeps=Sweeps()
    )
    return dict(checks)


def test_an_unavailable_ledger_makes_the_daemon_not_ready_and_says_why() -> None:
    """Issue 11 finding 9: a full disk is visible in /readyz (alive, not ready), not a crash."""
    ok, detail = checks_with(
        LedgerHealth(False, "disk is full", queued=12, unavailable_for_s=61.0)
    )["ledger"]
    assert not ok
    assert "disk is full" in detail and "12 writes waiting" in detail and "61s" in detail


def test_an_available_ledger_is_ready() -> None:
    assert checks_with(LedgerHealth(True, "ok", queued=0))["ledger"] == (True, "ok")
