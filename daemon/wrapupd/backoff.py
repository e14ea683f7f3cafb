"""Pure delay arithmetic for retries and reconnects: jittered exponential backoff.

Nothing here sleeps or reads a clock on its own. Callers feed the delays to an injected
:class:`wrapupd.clock.Clock`, which is how tests run a dozen reconnects in a millisecond (the
websockets library's trick). The subscriber keeps one generator across short sessions, so a
server that accepts and immediately closes sees growing delays, not a tight reconnect loop.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

__all__ = ["jittered_backoff"]


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
