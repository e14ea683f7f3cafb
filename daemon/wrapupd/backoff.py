"""Pure delay arithmetic for retries and reconnects: jittered backoff, Retry-After, session guard.

Nothing here sleeps or reads a clock on its own. Callers feed the delays to an injected
:class:`wrapupd.clock.Clock`, which is how tests run a dozen reconnects in a millisecond (the
websockets library's trick). The one trap websockets leaves open — resetting the backoff after any
successful handshake, so a server that accepts and immediately closes gets hammered — is closed by
:class:`MinimumSessionGuard`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = ["MinimumSessionGuard", "jittered_backoff", "parse_retry_after"]


def jittered_backoff(
    *,
    initial: float,
    maximum: float,
    factor: float = 2.0,
    rng: random.Random | None = None,
) -> Iterator[float]:
    """Yield delays forever with *full jitter*: ``uniform(0, min(maximum, initial·factorⁿ))``.

    Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter") spreads retries of many
    clients evenly over the whole window and does the least total work of the common variants.
    Decorrelated jitter was rejected because with the conventional ``factor=2`` its expected delay
    grows only linearly. A draw may be close to zero; that is wanted for the first retry (a socket
    that closed for maintenance should come back at once) and harmless later, because the ceiling
    keeps rising. Pass a seeded ``rng`` to make a test deterministic.
    """
    _check_backoff_bounds(initial, maximum, factor)
    draw = (rng or random.Random()).uniform
    ceiling = initial
    while True:
        yield draw(0.0, ceiling)
        ceiling = min(maximum, ceiling * factor)


def _check_backoff_bounds(initial: float, maximum: float, factor: float) -> None:
    """Refuse bounds that would make the generator useless or never grow."""
    if not (math.isfinite(initial) and initial > 0):
        raise ValueError(f"initial must be a positive number of seconds, got {initial!r}")
    if not (math.isfinite(maximum) and maximum >= initial):
        raise ValueError(f"maximum must be finite and >= initial ({initial}), got {maximum!r}")
    if not (math.isfinite(factor) and factor >= 1.0):
        raise ValueError(f"factor must be >= 1, got {factor!r}")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, or None when it says nothing usable.

    Genesys sends delay-seconds (``Retry-After: 3``); RFC 9110 also allows an HTTP-date, which a
    proxy in between might send. Fractional seconds are accepted leniently. A negative, non-finite
    or unreadable value gives None so the caller falls back to its own backoff instead of trusting
    garbage. A date in the past gives 0.0 (the server says: now). ``now`` is the reference time for
    dates; pass ``clock.now()`` to keep the caller testable (the default reads the system clock).
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    seconds = _delay_seconds(text)
    if seconds is not None:
        return seconds
    return _seconds_until_http_date(text, now)


def _delay_seconds(text: str) -> float | None:
    """The delay-seconds form, or None when ``text`` is not a plain non-negative number."""
    if not (text[0].isdigit() or text[0] == "."):
        return None  # rejects signs, "nan", "inf" and dates in one test
    try:
        seconds = float(text)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) else None


def _seconds_until_http_date(text: str, now: datetime | None) -> float | None:
    """The HTTP-date form, as seconds from ``now``; None when the date does not parse."""
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110: an HTTP-date is always GMT
        when = when.replace(tzinfo=UTC)
    reference = now if now is not None else datetime.now(UTC)
    return max(0.0, (when - reference).total_seconds())


class MinimumSessionGuard:
    """Backoff that starts over only after a connection that lived long enough to count.

    Call :meth:`next_delay` after every failed attempt or lost connection, with how long the
    connection lived (None when it never came up). A session shorter than ``min_session_s`` does
    not reset the backoff, so a server that accepts and closes at once sees growing delays instead
    of a tight reconnect loop.
    """

    def __init__(self, new_backoff: Callable[[], Iterator[float]], *, min_session_s: float) -> None:
        if not min_session_s >= 0:
            raise ValueError(f"min_session_s must be >= 0, got {min_session_s!r}")
        self._new_backoff = new_backoff
        self._min_session_s = min_session_s
        self._delays = new_backoff()
        self.consecutive_failures = 0

    def next_delay(self, session_lived_s: float | None) -> float:
        """The delay before the next attempt, given how long the last session lasted."""
        if self.session_counted(session_lived_s):
            self.reset()
        self.consecutive_failures += 1
        return next(self._delays)

    def session_counted(self, session_lived_s: float | None) -> bool:
        """True when a session lasted long enough to prove the server is really back."""
        return session_lived_s is not None and session_lived_s >= self._min_session_s

    def reset(self) -> None:
        """Start the backoff over, as after a healthy session."""
        self._delays = self._new_backoff()
        self.consecutive_failures = 0
