"""Backoff delays: full jitter under a growing ceiling, deterministic with a seed."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wrapupd.backoff import jittered_backoff


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
