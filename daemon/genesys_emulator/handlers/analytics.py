"""``POST /api/v2/analytics/conversations/details/query``: the subset wrapupd uses."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..clock import parse_iso
from ..errors import bad_request, json_response
from ..views_analytics import analytics_json
from .common import caller, emulator, json_body, require

MAX_RESULTS = 100_000
MAX_PAGE_SIZE = 100
OPERATORS = ("matches", "exists", "notExists")


@dataclass(frozen=True)
class Query:
    start: float
    end: float
    page_size: int
    page_number: int
    descending: bool
    order_by: str
    conversation_filters: list[dict[str, Any]]
    segment_filters: list[dict[str, Any]]


async def query(request: web.Request) -> web.Response:
    require(request, "analytics:conversationDetail:view")
    emu = emulator(request)
    q = _parse(await json_body(request))
    client = caller(request)
    found = []
    for conv in emu.conversations.values():
        if not q.start <= conv.start < q.end:
            continue
        if not any(client.can_see_queue(qid) for qid in conv.queue_ids()):
            continue
        doc = analytics_json(conv, emu.org, emu.options.analytics_capture_shapes)
        if _conversation_matches(doc, q.conversation_filters) and _segments_match(
            doc, q.segment_filters
        ):
            found.append(doc)
    found.sort(key=lambda d: d.get(q.order_by) or "", reverse=q.descending)
    page = found[(q.page_number - 1) * q.page_size : q.page_number * q.page_size]
    body: dict[str, Any] = {}
    if page:
        body["conversations"] = page
    if found and not emu.options.analytics_capture_shapes:  # real captures may lack totalHits
        body["totalHits"] = len(found)
    return json_response(body)


def _parse(body: object) -> Query:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a ConversationQuery object.")
    start, end = _interval(body.get("interval"))
    size, number = _paging(body.get("paging"))
    order = body.get("order", "asc")
    order_by = body.get("orderBy", "conversationStart")
    if order not in ("asc", "desc", "unordered"):
        raise bad_request("order must be asc, desc or unordered.")
    if order_by not in ("conversationStart", "conversationEnd", "segmentStart", "segmentEnd"):
        raise bad_request(f"orderBy {order_by!r} is not supported.")
    conversation_filters = _filters(body.get("conversationFilters"), "conversationFilters")
    segment_filters = _filters(body.get("segmentFilters"), "segmentFilters")
    if order_by.startswith("segment"):
        order_by = "conversationStart"
    return Query(
        start, end, size, number, order == "desc", order_by, conversation_filters, segment_filters
    )


def _interval(raw: object) -> tuple[float, float]:
    if not isinstance(raw, str) or "/" not in raw:
        raise bad_request("interval is required, as ISO-8601 start/end.")
    left, _, right = raw.partition("/")
    try:
        start, end = parse_iso(left), parse_iso(right)
    except ValueError:
        raise bad_request(f"interval {raw!r} is not a valid ISO-8601 interval.") from None
    if end <= start:
        raise bad_request("interval end must be after its start.")
    return start, end


def _paging(raw: object) -> tuple[int, int]:
    if raw is None:
        return 25, 1
    if not isinstance(raw, dict):
        raise bad_request("paging must be an object {pageSize, pageNumber}.")
    size, number = raw.get("pageSize", 25), raw.get("pageNumber", 1)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (size, number)):
        raise bad_request("paging.pageSize and paging.pageNumber must be positive integers.")
    if size > MAX_PAGE_SIZE:
        raise bad_request(f"paging.pageSize must be at most {MAX_PAGE_SIZE}.")
    if size * number > MAX_RESULTS:
        raise bad_request("Pagination may not exceed 100000 results.")
    return size, number


def _filters(raw: object, name: str) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise bad_request(f"{name} must be a list.")
    for f in raw:
        _check_filter(f, name)
    return raw


def _check_filter(f: object, name: str) -> None:
    if not isinstance(f, dict) or f.get("type") not in ("and", "or"):
        raise bad_request(f"every {name} entry needs type 'and' or 'or'.")
    predicates = f.get("predicates", [])
    clauses = f.get("clauses", [])
    if not isinstance(predicates, list) or not isinstance(clauses, list):
        raise bad_request(f"{name}: predicates and clauses must be lists.")
    for p in predicates:
        _check_predicate(p, name)
    for c in clauses:
        _check_filter(c, name)


def _check_predicate(p: object, name: str) -> None:
    if not isinstance(p, dict):
        raise bad_request(f"{name}: every predicate must be an object.")
    if p.get("type", "dimension") != "dimension":
        raise bad_request(f"{name}: the emulator supports only dimension predicates.")
    if not isinstance(p.get("dimension"), str):
        raise bad_request(f"{name}: every predicate needs a dimension.")
    operator = p.get("operator", "matches")
    if operator not in OPERATORS:
        raise bad_request(f"{name}: operator must be one of {', '.join(OPERATORS)}.")
    if operator == "matches" and not isinstance(p.get("value"), str):
        raise bad_request(f"{name}: a 'matches' predicate needs a string value.")


def _predicate(p: dict[str, Any], values: dict[str, Any]) -> bool:
    value = values.get(p["dimension"])
    operator = p.get("operator", "matches")
    if operator == "exists":
        return value is not None
    if operator == "notExists":
        return value is None
    return value is not None and str(value).lower() == str(p["value"]).lower()


def _filter_holds(f: dict[str, Any], values: dict[str, Any]) -> bool:
    results = [_predicate(p, values) for p in f.get("predicates", [])]
    results += [_filter_holds(c, values) for c in f.get("clauses", [])]
    if not results:
        return True
    return all(results) if f["type"] == "and" else any(results)


def _conversation_matches(doc: dict[str, Any], filters: list[dict[str, Any]]) -> bool:
    values = dict(doc)
    values["divisionId"] = (doc.get("divisionIds") or [None])[0]
    return all(_filter_holds(f, values) for f in filters)


def _segment_rows(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One flat row per segment: participant, session and segment dimensions together."""
    for participant in doc.get("participants", []):
        for session in participant.get("sessions", []):
            for segment in session.get("segments", []):
                row = {k: v for k, v in participant.items() if k != "sessions"}
                row.update({k: v for k, v in session.items() if k != "segments"})
                row.update(segment)
                yield row


def _segments_match(doc: dict[str, Any], filters: list[dict[str, Any]]) -> bool:
    """Each segment filter must hold for at least one segment; filters are ANDed."""
    rows = list(_segment_rows(doc))
    return all(any(_filter_holds(f, row) for row in rows) for f in filters)
