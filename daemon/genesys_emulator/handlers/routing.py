"""Queues and wrap-up codes."""

from __future__ import annotations

from aiohttp import web

from ..errors import json_response, not_found
from ..org import Queue
from ..views import code_json, entity_listing, queue_json
from .common import emulator, name_matches, paging, require


def _visible_queue(request: web.Request, queue_id: str) -> Queue:
    client = require(request, "routing:queue:view")
    queue = emulator(request).org.queues.get(queue_id)
    if queue is None or not client.can_see_queue(queue.id):
        raise not_found("Queue", queue_id)
    return queue


async def list_queues(request: web.Request) -> web.Response:
    client = require(request, "routing:queue:view")
    org = emulator(request).org
    size, number = paging(request)
    name = request.query.get("name")
    ids = set(request.query.getall("id", []))
    queues = [
        q
        for q in org.queues_by_name()
        if client.can_see_queue(q.id)
        and (name is None or name_matches(name, q.name))
        and (not ids or q.id in ids)
    ]
    query = f"name={name}" if name else ""
    listing = entity_listing(
        queues, lambda q: queue_json(q, org), size, number, request.path, query
    )
    return json_response(listing)


async def get_queue(request: web.Request) -> web.Response:
    queue = _visible_queue(request, request.match_info["id"])
    return json_response(queue_json(queue, emulator(request).org))


async def queue_wrapup_codes(request: web.Request) -> web.Response:
    queue = _visible_queue(request, request.match_info["id"])
    org = emulator(request).org
    size, number = paging(request)
    name = request.query.get("name")
    codes = [c for c in org.queue_codes(queue) if name is None or name_matches(name, c.name)]
    codes.sort(key=lambda c: c.name.lower())
    query = f"name={name}" if name else ""
    return json_response(
        entity_listing(codes, lambda c: code_json(c, org), size, number, request.path, query)
    )


async def list_wrapup_codes(request: web.Request) -> web.Response:
    require(request, "routing:wrapupCode:view")
    org = emulator(request).org
    size, number = paging(request)
    name = request.query.get("name")
    codes = [c for c in org.codes.values() if name is None or name_matches(name, c.name)]
    codes.sort(key=lambda c: c.name.lower())
    query = f"name={name}" if name else ""
    return json_response(
        entity_listing(codes, lambda c: code_json(c, org), size, number, request.path, query)
    )


async def get_wrapup_code(request: web.Request) -> web.Response:
    require(request, "routing:wrapupCode:view")
    org = emulator(request).org
    code = org.codes.get(request.match_info["id"])
    if code is None:
        raise not_found("Wrap-up code", request.match_info["id"])
    return json_response(code_json(code, org))
