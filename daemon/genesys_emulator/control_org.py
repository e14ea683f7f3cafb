"""Control plane: change the org while it runs (queues created or renamed, as admins do), so that
clients which pick queues by name can be tested against a changing org. A reset undoes it."""

from __future__ import annotations

import uuid
from dataclasses import replace

from aiohttp import web

from .control_input import as_object, queue_ref, read_body
from .errors import ControlError, json_response
from .handlers.common import emulator
from .org import TIMED_PROMPTS, Queue, WrapupCode
from .state import Emulator

PROMPTS = ("MANDATORY", "OPTIONAL", "AGENT_REQUESTED", *TIMED_PROMPTS)


async def create_queue(request: web.Request) -> web.Response:
    """``POST /_emulator/queues {"name", "wrapup_prompt"?, "codes"?: [names or ids]}``."""
    emu = emulator(request)
    body = as_object(await read_body(request, {}))
    name, prompt = body.get("name"), body.get("wrapup_prompt", "MANDATORY")
    if not isinstance(name, str) or not name.strip():
        raise ControlError("a queue needs a name")
    if prompt not in PROMPTS or prompt in TIMED_PROMPTS:
        raise ControlError("wrapup_prompt must be one of MANDATORY, OPTIONAL, AGENT_REQUESTED")
    codes = tuple(_code_ids(emu.org.codes, body.get("codes")))
    queue = Queue(str(uuid.uuid4()), name, str(prompt), None, codes)
    _edit(emu, queue)
    return json_response({"id": queue.id, "name": queue.name}, status=201)


async def rename_queue(request: web.Request) -> web.Response:
    """``PATCH /_emulator/queues/{id} {"name"}``."""
    emu = emulator(request)
    name = as_object(await read_body(request, {})).get("name")
    if not isinstance(name, str) or not name.strip():
        raise ControlError("give the new name")
    queue = replace(queue_ref(emu.org, request.match_info["id"]), name=name)
    _edit(emu, queue)
    return json_response({"id": queue.id, "name": queue.name})


def _code_ids(codes: dict[str, WrapupCode], refs: object) -> list[str]:
    if refs is None:
        return list(codes)[:2]
    if not isinstance(refs, list):
        raise ControlError("codes must be a list of code names or ids")
    by_name = {c.name.lower(): c.id for c in codes.values()}
    found = [r if r in codes else by_name.get(str(r).lower()) for r in refs]
    if None in found:
        raise ControlError(f"unknown code among {refs}")
    return [str(f) for f in found]


def _edit(emu: Emulator, queue: Queue) -> None:
    """Change the org in place (every part holds the same org); the next reset reloads it."""
    emu.org.queues[queue.id] = queue
    emu.org._sorted = None
    emu.org._names = None
    emu.org_edited = True
