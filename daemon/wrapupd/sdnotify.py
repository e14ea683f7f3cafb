"""systemd's notify protocol (``sd_notify(3)``) over ``$NOTIFY_SOCKET``, stdlib only.

The unit runs with ``Type=notify`` and ``WatchdogSec=``: systemd considers wrapupd started only
after ``READY=1`` (sent once the token, the code table and the socket are up), shows ``STATUS=``
in ``systemctl status``, and restarts the daemon when ``WATCHDOG=1`` stops arriving. Outside
systemd (a container, a terminal, a test) ``$NOTIFY_SOCKET`` is unset and every call is a no-op,
so the service can call these unconditionally.

Notification is best effort by design: a full or vanished socket is logged and ignored, never
raised, because losing a status line must not take the daemon down.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping

import structlog

from wrapupd.clock import Clock

log = structlog.get_logger(__name__)


def socket_address(value: str) -> str | bytes | None:
    """``/run/systemd/notify`` stays a path; ``@name`` becomes the abstract address ``\\0name``.

    Anything else (e.g. a ``vsock:`` address) is not supported here and disables notification.
    """
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        return b"\0" + value[1:].encode()
    return None


def watchdog_interval_from(environ: Mapping[str, str], pid: int) -> float | None:
    """Half of ``$WATCHDOG_USEC`` in seconds, as ``sd_watchdog_enabled(3)`` advises; else None.

    ``$WATCHDOG_PID``, when set, must be this process: the variables may have been inherited
    from a parent that systemd is actually watching.
    """
    usec, watched_pid = environ.get("WATCHDOG_USEC", ""), environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if watched_pid and (not watched_pid.isdigit() or int(watched_pid) != pid):
        return None
    return int(usec) / 1_000_000 / 2


def _monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds: systemd compares RELOADING's stamp against its own."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class Notifier:
    """Sends notify messages to systemd; silently does nothing when not run under it.

    ``environ`` defaults to ``os.environ`` and is read once, at construction.
    """

    def __init__(self, environ: Mapping[str, str] | None = None, *, pid: int | None = None) -> None:
        env = os.environ if environ is None else environ
        self._address = socket_address(env.get("NOTIFY_SOCKET", ""))
        self._watchdog_interval = watchdog_interval_from(env, os.getpid() if pid is None else pid)
        self._sock: socket.socket | None = None

    def watchdog_interval(self) -> float | None:
        """Seconds between ``WATCHDOG=1`` pings, or None when systemd is not watching."""
        return self._watchdog_interval

    def ready(self, status: str | None = None) -> None:
        """Startup finished: systemd lets ``systemctl start`` return and ordering proceed."""
        self.notify("READY=1", *_status_field(status))

    def status(self, text: str) -> None:
        """One line for ``systemctl status`` (newlines would split the message, so they go)."""
        self.notify(*_status_field(text))

    def watchdog(self) -> bool:
        """I am alive and well; systemd restarts the service if this stops for WatchdogSec.
        True when the ping was sent."""
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> None:
        """Shutdown began: systemd stops expecting watchdog pings and waits for the exit."""
        self.notify("STOPPING=1", *_status_field(status))

    def reloading(self) -> None:
        """A SIGHUP reload began; call :meth:`ready` when done so systemd ends the reload job."""
        self.notify("RELOADING=1", f"MONOTONIC_USEC={_monotonic_usec()}")

    def notify(self, *fields: str) -> bool:
        """Send ``fields`` as one datagram; True when sent, False when disabled or it failed.

        The named methods return None so they fit ``Callable[[str], None]`` hooks; this one
        reports the result for callers (and tests) that care.
        """
        if self._address is None or not fields:
            return False
        try:
            self._socket().sendto("\n".join(fields).encode(), self._address)
        except OSError as exc:  # full queue (non-blocking), socket gone, permission
            log.warning("sd_notify failed", fields=fields, error=repr(exc))
            return False
        return True

    def close(self) -> None:
        """Close the notify socket (the next notification opens it again)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _socket(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            sock.setblocking(False)  # never stall the event loop on a busy systemd
            self._sock = sock
        return self._sock


def _status_field(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    return ("STATUS=" + " ".join(text.splitlines()),)


class WatchdogPinger:
    """Pings the watchdog every interval, but only while ``is_healthy()`` says so.

    Pinging from a timer alone would only prove the event loop runs; gating it on the daemon's
    own health (e.g. "the subscriber made progress recently") lets systemd restart a wedged
    daemon. A check that raises counts as unhealthy.
    """

    def __init__(
        self,
        notifier: Notifier,
        is_healthy: Callable[[], bool],
        clock: Clock,
        *,
        interval: float | None = None,
    ) -> None:
        self._notifier = notifier
        self._is_healthy = is_healthy
        self._clock = clock
        self._interval = interval if interval is not None else notifier.watchdog_interval()
        self._healthy_before = True

    async def run(self) -> None:
        """Ping until cancelled; returns at once when systemd is not watching."""
        if self._interval is None or self._interval <= 0:
            return
        while True:
            self.tick()
            await self._clock.sleep(self._interval)

    def tick(self) -> bool:
        """One round: ping if healthy. Returns whether a ping was sent."""
        healthy = self._check()
        if healthy and not self._healthy_before:
            log.info("watchdog pings resumed")
        elif not healthy and self._healthy_before:
            log.warning("watchdog pings withheld: daemon unhealthy, systemd will restart it")
        self._healthy_before = healthy
        return healthy and self._notifier.watchdog()

    def _check(self) -> bool:
        try:
            return bool(self._is_healthy())
        except Exception as exc:
            log.warning("watchdog health check raised", error=repr(exc))
            return False
