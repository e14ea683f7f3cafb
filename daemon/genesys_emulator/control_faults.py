"""Control plane: scripted request faults, socket faults and delivery faults."""

from __future__ import annotations

import random
from typing import Any

from aiohttp import web

from .control_input import as_object, number, read_body
from .errors import ControlError, json_response, user_context_required
from .faults import REQUEST_KINDS, SOCKET_KINDS, parse_request_fault
from .handlers.common import emulator
from .state import Emulator

# --- faults ---------------------------------------------------------------------------------


def _event_chaos(emu: Emulator, spec: dict[str, Any]) -> dict[str, Any]:
    from .delivery import EventChaos

    seconds = number(spec, "seconds", 1.0)
    duplicate = number(spec, "duplicate", 0.0)
    if duplicate > 1:
        raise ControlError("duplicate must be a probability between 0 and 1")
    max_delay = number(spec, "max_delay_s", 0.0)
    seed = spec.get("seed")
    emu.channels.delivery.chaos = EventChaos(
        emu.now() + seconds, duplicate, max_delay, random.Random(seed)
    )
    return {"until_in_s": seconds, "duplicate": duplicate, "max_delay_s": max_delay}


async def add_faults(request: web.Request) -> web.Response:
    emu = emulator(request)
    body = await read_body(request)
    specs = body if isinstance(body, list) else [as_object(body)]
    results = [apply_fault(emu, as_object(spec, "fault")) for spec in specs]
    return json_response({"faults": results, "pending": [f.describe() for f in emu.faults.pending]})


async def list_faults(request: web.Request) -> web.Response:
    return json_response({"pending": [f.describe() for f in emulator(request).faults.pending]})


async def clear_faults(request: web.Request) -> web.Response:
    emulator(request).faults.clear()
    return json_response({"pending": []})


def apply_fault(emu: Emulator, spec: dict[str, Any]) -> dict[str, Any]:
    kind = spec.get("kind")
    if kind in REQUEST_KINDS:
        if spec.get("body") == "user_context":
            status = spec.get("status") if spec.get("status") in (400, 403) else 403
            spec = {**spec, "body": user_context_required(status).body("")}
        fault = parse_request_fault(spec)
        emu.faults.add(fault)
        return {"kind": kind, "queued": fault.describe()}
    if kind not in SOCKET_KINDS:
        raise ControlError(f"kind must be one of {REQUEST_KINDS + SOCKET_KINDS}")
    return {"kind": kind, **_socket_fault(emu, kind, spec)}


def _socket_fault(emu: Emulator, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    if kind == "event_chaos":
        return _event_chaos(emu, spec)
    if kind == "raw_frames":
        frames = spec.get("frames")
        if not isinstance(frames, list) or not all(isinstance(f, str) for f in frames):
            raise ControlError("raw_frames needs frames: a list of strings")
        return {"sockets": emu.channels.send_raw(frames)}
    if kind == "drop_sockets":
        return {"dropped": emu.channels.drop_sockets()}
    if kind == "idle_close":
        return {"closed": emu.channels.close_idle(emu.channels.connected())}
    if kind == "expire_channels":
        return {"expired": emu.channels.expire_all()}
    if kind == "expire_tokens":
        emu.tokens.expire_all(emu.now())
        emu.channels.sweep(emu.now(), {})
        return {"expired": len(emu.tokens.tokens)}
    if kind == "revoke_tokens":
        return {"revoked": emu.revoke_tokens()}
    close_after = number(spec, "close_after_s", emu.options.socket_closing_lead_s)
    sockets = emu.channels.announce_closing(close_after)
    emu.later(close_after, lambda: emu.channels.close_sockets(sockets))
    return {"announced": len(sockets), "close_after_s": close_after}
