"""What every API handler needs: the emulator, the caller, permissions, paging."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..auth import Caller, Token
from ..errors import ApiError, bad_request, missing_permission
from ..state import Emulator

EMULATOR: web.AppKey[Emulator] = web.AppKey("emulator", Emulator)
TOKEN: web.RequestKey[Token] = web.RequestKey("token", Token)
CALLER: web.RequestKey[Caller] = web.RequestKey("caller", Caller)
MAX_PAGE_SIZE = 500


def emulator(request: web.Request) -> Emulator:
    return request.app[EMULATOR]


def caller(request: web.Request) -> Caller:
    """Who the request's token acts as (the OAuth client, or a user through it)."""
    return request[CALLER]


def require(request: web.Request, permission: str) -> Caller:
    who = caller(request)
    if permission not in who.permissions:
        raise missing_permission(permission)
    return who


def paging(request: web.Request, default_size: int = 25) -> tuple[int, int]:
    size = _positive_int(request.query.get("pageSize"), default_size, "pageSize")
    number = _positive_int(request.query.get("pageNumber"), 1, "pageNumber")
    if size > MAX_PAGE_SIZE:
        raise bad_request(f"pageSize must be at most {MAX_PAGE_SIZE}.")
    return size, number


def _positive_int(raw: str | None, default: int, name: str) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"{name} must be an integer.") from None
    if value < 1:
        raise bad_request(f"{name} must be at least 1.")
    return value


async def json_body(request: web.Request) -> Any:
    text = await request.text()
    if not text.strip():
        raise bad_request("A request body is required.")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(400, "bad.request", f"Malformed JSON body: {exc.msg}.") from None


def name_matches(pattern: str, name: str) -> bool:
    """Genesys name filters: case-insensitive, ``*`` allowed at the start and/or the end."""
    p, n = pattern.lower(), name.lower()
    starts, ends = p.startswith("*"), p.endswith("*") and len(p) > 1
    core = p.strip("*")
    if starts and ends:
        return core in n
    if ends:
        return n.startswith(core)
    if starts:
        return n.endswith(core)
    return n == core
