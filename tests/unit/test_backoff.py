"""Backoff delays, Retry-After parsing and the minimum-session guard."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wrapupd.backoff import MinimumSessionGuard, jittered_backoff, parse_retry_after

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def take(delays: Iterator[float], n: int) -> list[float]:
    return list(itertools.islice(delays, n))


# --- jittered_backoff ------------------------------------------------------------------------


@given(
    initial=st.floats(0.001, 10),
    spread=st.floats(1, 1000),
    factor=st.floats(1, 4),
    seed=st.integers(0, 2**32),
)
def test_every_delay_lies_between_zero_and_the_growing_ceiling(
    initial: float, spread: float, factor: float, seed: int
) -> None:
    maximum = initial * spread
    delays = take(
        jittered_backoff(initial=initial, maximum=maximum, factor=factor, rng=random.Random(seed)),
        40,
    )
    ceiling = initial
    for delay in delays:
        assert 0.0 <= delay <= ceiling * (1 + 1e-12)
        ceiling = min(maximum, ceiling * factor)
    assert max(delays) <= maximum


def test_delays_grow_on_average_until_the_maximum() -> None:
    rng = random.Random(7)
    runs = [take(jittered_backoff(initial=1, maximum=64, rng=rng), 10) for _ in range(400)]
    means = [sum(run[i] for run in runs) / len(runs) for i in range(10)]
    # Full jitter: the mean is half the ceiling (1, 2, 4, ... capped at 64).
    for i, mean in enumerate(means):
        assert mean == pytest.approx(min(64, 2**i) / 2, rel=0.15)


def test_the_same_seed_gives_the_same_delays() -> None:
    first = take(jittered_backoff(initial=0.5, maximum=30, rng=random.Random(42)), 20)
    second = take(jittered_backoff(initial=0.5, maximum=30, rng=random.Random(42)), 20)
    assert first == second


def test_the_generator_never_ends() -> None:
    delays = take(jittered_backoff(initial=1, maximum=2, rng=random.Random(0)), 10_000)
    assert len(delays) == 10_000


@pytest.mark.parametrize(
    ("initial", "maximum", "factor"),
    [(0, 10, 2), (-1, 10, 2), (5, 1, 2), (1, 10, 0.5), (float("nan"), 10, 2), (1, float("inf"), 2)],
)
def test_useless_bounds_are_refused(initial: float, maximum: float, factor: float) -> None:
    with pytest.raises(ValueError):
        next(jittered_backoff(initial=initial, maximum=maximum, factor=factor))


# --- parse_retry_after ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), (" 10 ", 10.0), ("0", 0.0), ("1.5", 1.5), ("120", 120.0)],
)
def test_delay_seconds_are_read(header: str, expected: float) -> None:
    assert parse_retry_after(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "   ",
        "-1",
        "-0.5",
        "soon",
        "nan",
        "inf",
        "+3",
        "1e999",
        "Tue, 99 Foo 2026 xx:yy GMT",
    ],
)
def test_garbage_and_negative_values_give_none(header: str | None) -> None:
    assert parse_retry_after(header, now=NOW) is None


def test_an_http_date_gives_the_seconds_until_it() -> None:
    header = format_datetime(NOW + timedelta(seconds=42), usegmt=True)
    assert parse_retry_after(header, now=NOW) == pytest.approx(42.0)


def test_an_http_date_in_the_past_means_now() -> None:
    header = format_datetime(NOW - timedelta(minutes=5), usegmt=True)
    assert parse_retry_after(header, now=NOW) == 0.0


def test_an_http_date_without_zone_is_read_as_gmt() -> None:
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 -0000", now=NOW) == pytest.approx(30.0)


@given(st.integers(0, 10**6))
def test_any_non_negative_integer_round_trips(seconds: int) -> None:
    assert parse_retry_after(str(seconds)) == float(seconds)


@given(st.text())
def test_parsing_never_raises_and_never_goes_negative(text: str) -> None:
    result = parse_retry_after(text, now=NOW)
    assert result is None or result >= 0.0


# --- MinimumSessionGuard --------------------------------------------------------------------


def counting_backoff() -> Iterator[float]:
    """Deterministic delays 1, 2, 3, ... so a test sees whether the sequence restarted."""
    return (float(n) for n in itertools.count(1))


def test_failed_connects_keep_backing_off() -> None:
    guard = MinimumSessionGuard(counting_backoff, min_session_s=10)
    assert [guard.next_delay(None) for _ in range(4)] == [1, 2, 3, 4]
    assert guard.consecutive_failures == 4


def test_a_server_that_accepts_then_closes_at_once_is_not_hammered() -> None:
    guard = MinimumSessionGuard(counting_backoff, min_session_s=10)
    assert [guard.next_delay(0.2) for _ in range(4)] == [1, 2, 3, 4]


def test_a_long_enough_session_resets_the_backoff() -> None:
    guard = MinimumSessionGuard(counting_backoff, min_session_s=10)
    guard.next_delay(None)
    guard.next_delay(None)
    assert guard.next_delay(10.0) == 1
    assert guard.consecutive_failures == 1
    assert guard.next_delay(None) == 2


def test_reset_starts_over() -> None:
    guard = MinimumSessionGuard(counting_backoff, min_session_s=1)
    guard.next_delay(None)
    guard.reset()
    assert guard.consecutive_failures == 0
    assert guard.next_delay(None) == 1


def test_the_guard_works_with_jittered_backoff() -> None:
    rng = random.Random(3)
    guard = MinimumSessionGuard(
        lambda: jittered_backoff(initial=1, maximum=60, rng=rng), min_session_s=5
    )
    delays = [guard.next_delay(0.01) for _ in range(8)]
    assert all(0 <= d <= 60 for d in delays)


def test_a_negative_minimum_is_refused() -> None:
    with pytest.raises(ValueError):
        MinimumSessionGuard(counting_backoff, min_session_s=-1)
