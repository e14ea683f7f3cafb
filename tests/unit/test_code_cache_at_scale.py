"""Resolving many policies against the listings: indexed once, same answers as a scan."""

from __future__ import annotations

import pytest

from wrapupd.code_cache import resolve_all
from wrapupd.errors import ResolutionError
from wrapupd.events import Queue, QueuePolicy, WrapupCode


def queue(n: int, name: str | None = None) -> Queue:
    return Queue(f"0000a0a0-0000-4000-8000-{n:012x}", name or f"Queue {n:05d}", "MANDATORY", None)


def code(n: int, name: str) -> WrapupCode:
    return WrapupCode(f"0000c0de-0000-4000-8000-{n:012x}", name)


class Listings:
    """The two org listings the unverified resolution reads (no per-queue look-ups)."""

    def __init__(self, queues: list[Queue], codes: list[WrapupCode]) -> None:
        self.queues, self.codes = queues, codes

    async def list_queues(self, name: str | None = None) -> list[Queue]:
        return self.queues

    async def list_wrapup_codes(self) -> list[WrapupCode]:
        return self.codes


def rule(queue_ref: str, code_ref: str) -> QueuePolicy:
    return QueuePolicy(queue_ref, code_ref, grace_seconds=0, timeout_margin_seconds=5, notes=None)


async def test_every_one_of_many_policies_finds_its_queue_and_code() -> None:
    queues = [queue(n) for n in range(1, 3001)]
    codes = [code(0, "No code selected"), code(1, "Resolved")]
    policies = [rule(q.name, "no CODE selected") for q in queues[:-1]] + [
        rule(queues[-1].id, "Resolved")
    ]
    table = await resolve_all(Listings(queues, codes), policies, verify=False)  # type: ignore[arg-type]
    assert len(table) == 3000
    assert {e.code for e in table.values()} == set(codes)


async def test_an_exact_code_name_wins_over_case_insensitive_ones() -> None:
    codes = [code(1, "resolved"), code(2, "Resolved"), code(3, "RESOLVED")]
    table = await resolve_all(
        Listings([queue(1)], codes), [rule("Queue 00001", "Resolved")], verify=False
    )  # type: ignore[arg-type]
    assert next(iter(table.values())).code == codes[1]


async def test_a_code_matching_only_case_insensitively_twice_is_refused() -> None:
    codes = [code(1, "resolved"), code(2, "RESOLVED")]
    with pytest.raises(ResolutionError, match="no wrap-up code"):
        await resolve_all(
            Listings([queue(1)], codes), [rule("Queue 00001", "Resolved")], verify=False
        )  # type: ignore[arg-type]


async def test_two_queues_with_one_name_are_still_ambiguous() -> None:
    queues = [queue(1, "Support"), queue(2, "Support")]
    with pytest.raises(ResolutionError, match="ambiguous"):
        await resolve_all(Listings(queues, [code(1, "X")]), [rule("Support", "X")], verify=False)  # type: ignore[arg-type]


async def test_an_unknown_queue_still_lists_what_exists() -> None:
    with pytest.raises(ResolutionError, match="Queue 00001"):
        await resolve_all(Listings([queue(1)], [code(1, "X")]), [rule("Nope", "X")], verify=False)  # type: ignore[arg-type]
