"""Request bodies and response headers the facade builds or reads without the SDK.

The analytics details query that finds conversations which may hold agents in ACW, and the
platform's ``inin-ratelimit-*`` headers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = [
    "PAGE_SIZE",
    "analytics_open_conversations_query",
    "rate_limit_window",
    "read_listing_page",
]

PAGE_SIZE = 100


def analytics_open_conversations_query(
    queue_ids: Sequence[str], start: datetime, end: datetime, page_number: int
) -> dict[str, Any]:
    """The details-query body: not ended, an agent segment on one of these queues."""
    return {
        "interval": f"{_analytics_time(start)}/{_analytics_time(end)}",
        "order": "asc",
        "orderBy": "conversationStart",
        "paging": {"pageSize": PAGE_SIZE, "pageNumber": page_number},
        "conversationFilters": [
            {"type": "and", "predicates": [_dimension("conversationEnd", "notExists")]}
        ],
        "segmentFilters": [
            {"type": "or", "predicates": [_dimension("queueId", "matches", q) for q in queue_ids]},
            {"type": "and", "predicates": [_dimension("purpose", "matches", "agent")]},
        ],
    }


def _dimension(name: str, operator: str, value: str | None = None) -> dict[str, str]:
    predicate = {"type": "dimension", "dimension": name, "operator": operator}
    if value is not None:
        predicate["value"] = value
    return predicate


def _analytics_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def rate_limit_window(headers: Mapping[str, str]) -> tuple[int, int, float] | None:
    """``(count, allowed, reset seconds)`` from the platform's ``inin-ratelimit-*`` headers, if all there."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        return (
            int(lowered["inin-ratelimit-count"]),
            int(lowered["inin-ratelimit-allowed"]),
            float(lowered["inin-ratelimit-reset"]),
        )
    except (KeyError, ValueError):
        return None


def read_listing_page(
    fetch: Callable[..., Any], page_number: int, to_item: Callable[[Any], T]
) -> tuple[list[T], bool]:
    """One page of an SDK entity listing, converted, and whether it was the last."""
    listing = fetch(page_size=PAGE_SIZE, page_number=page_number)
    entities = getattr(listing, "entities", None) or []
    page_count = getattr(listing, "page_count", None)
    if isinstance(page_count, int):
        return [to_item(e) for e in entities], page_number >= page_count or not entities
    return [to_item(e) for e in entities], len(entities) < PAGE_SIZE
