"""Queue selectors: ``[[queues]]`` entries that pick queues by a name glob, a division, or all.

PURE. An entry naming one ``queue`` wins over every selector for that queue; among selectors the
first in file order wins. The code table (:mod:`wrapupd.code_cache`) applies them to each queue
listing, so queues created or renamed later are picked up at the next refresh.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence

from wrapupd.events import Queue, QueuePolicy


def selects(policy: QueuePolicy, queue: Queue) -> bool:
    """Does the selector ``policy`` pick ``queue``?"""
    if policy.all_queues:
        return True
    if policy.match is not None:
        return fnmatch.fnmatchcase(queue.name.casefold(), policy.match.casefold())
    if policy.division is not None:
        wanted = policy.division.casefold()
        return wanted in (
            (queue.division_id or "").casefold(),
            (queue.division_name or "").casefold(),
        )
    return False


def describe(policy: QueuePolicy) -> str:
    """How the selector is written in the settings, for messages."""
    if policy.all_queues:
        return "all = true"
    if policy.match is not None:
        return f"match = {policy.match!r}"
    return f"division = {policy.division!r}"


def selected(
    queues: Iterable[Queue], selectors: Sequence[QueuePolicy], named: Iterable[str]
) -> list[tuple[Queue, QueuePolicy]]:
    """Each queue not named explicitly (``named``: queue ids) with the first selector that picks it."""
    taken = set(named)
    picked = []
    for queue in queues:
        if queue.id in taken:
            continue
        policy = next((p for p in selectors if selects(p, queue)), None)
        if policy is not None:
            picked.append((queue, policy))
    return picked
