"""Control-plane input: JSON bodies, objects, numbers and queue references, checked.

Every problem is a ``ControlError`` (answered 400 ``{"error": "..."}``).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .errors import ControlError
from .org import OrgDefinition, Queue


async def read_body(request: web.Request, default: Any = None) -> Any:
    text = await request.text()
    if not text.strip():
        return default
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ControlError(f"body is not valid JSON: {exc.msg}") from None


def as_object(value: Any, what: str = "body") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ControlError(f"{what} must be a JSON object")
    return value


def queue_ref(org: OrgDefinition, ref: object) -> Queue:
    """A queue by id or name, or a ControlError naming the known ones."""
    queue = org.queue(ref) if isinstance(ref, str) else None
    if queue is None:
        names = sorted(q.name for q in org.queues.values())
        shown = names if len(names) <= 20 else [*names[:20], "…"]
        raise ControlError(f"unknown queue {ref!r}; known: {shown}")
    return queue


def number(spec: dict[str, Any], key: str, default: float) -> float:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ControlError(f"{key} must be a number >= 0")
    return float(value)
