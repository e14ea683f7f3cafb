"""Control plane: scripted request faults, socket faults and delivery faults."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .control_input import as_object, number, queue_ref, read_body
from .delivery import AcwStateNoise, EventChaos, EventLoss
from .errors import ControlError, json_response, user_context_required
from .faults import REQUEST_KINDS, SOCKET_KINDS, parse_request_fault
from .handlers.common import emulator
from .state import Emulator

# --- faults ---------------------------------------------------------------------------------


def _event_chaos(emu: Emulator, spec: dict[str, Any]) -> dict[str, Any]:
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
    return json_response(_pending(emulator(request)))


async def clear_faults(request: web.Request) -> web.Response:
    emu = emulator(request)
    emu.faults.clear()
    emu.channels.delivery.clear_losses()
    return json_response(_pending(emu))


def _pending(emu: Emulator) -> dict[str, Any]:
    """Queued request faults, and event losses still to happen."""
    losses = [loss.describe() for loss in emu.channels.delivery.losses]
    return {"pending": [f.describe() for f in emu.faults.pending], "eventLosses": losses}


def apply_fault(emu: Emulator, spec: dict[str, Any]) -> dict[str, Any]:
    kind = spec.get("kind")
    if kind in REQUEST_KINDS:
        if spec.get("body") == "user_context":
            status = 400 if spec.get("status") == 400 else 403
            spec = {**spec, "body": user_context_required(status).body("")}
        fault = parse_request_fault(spec)
        emu.faults.add(fault)
        return {"kind": kind, "queued": fault.describe()}
    act = _SOCKET_FAULTS.get(str(kind))
    if act is None:
        raise ControlError(f"kind must be one of {REQUEST_KINDS + SOCKET_KINDS}")
    return {"kind": kind, **act(emu, spec)}


def _raw_frames(emu: Emulator, spec: dict[str, Any]) -> dict[str, Any]:
    frames = spec.get("frames")
    if not isinstance(frames, list) or not all(isinstance(f, str) for f in frames):
        raise ControlError("raw_frames needs frames: a list of strings")
    return {"sockets": emu.channels.send_raw(frames)}


def _expire_tokens(emu: Emulator, spec: dict[str, Any]) -> dict[str, Any]:
    emu.tokens.expire_all(emu.now())
    emu.channels.sweep(emu.now(), {})
    return {"expired": len(emu.tokens.tokens)}


def _socket_closing(emu: Emulator, spec: dict[str, Any]) -> dict[str, Any]:
    close_after = number(spec, "close_after_s", emu.options.socket_closing_lead_s)
    sockets = emu.channels.announce_closing(close_after)
    emu.later(close_after, lambda: emu.channels.close_sockets(sockets))
    return {"announced": len(sockets), "close_after_s": close_after}


def _lose_events(emu: Emulator, spec: dict[str, Any]) -> dict[str, Any]:
    """The next ``count`` conversation events (of one queue, if given) are never delivered."""
    count = spec.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ControlError("lose_events needs count: a positive integer")
    topic = None
    if spec.get("queue") is not None:
        topic = f"v2.routing.queues.{queue_ref(emu.org, spec['queue']).id}.conversations"
    loss = EventLoss(count, topic)
    emu.channels.delivery.losses.append(loss)
    return {"queued": loss.describe()}


def _acw_state_noise(emu: Emulator, spec: dict[str, Any]) -> dict[str, Any]:
    """The next ``count`` events show a pending ACW's state as ``state`` (null: field absent)."""
    count = spec.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ControlError("acw_state_noise needs count: a positive integer")
    state = spec.get("state", "unknown")
    if state is not None and not isinstance(state, str):
        raise ControlError("acw_state_noise state must be a string or null")
    noise = AcwStateNoise(count, state)
    emu.channels.delivery.noise = noise
    return {"queued": noise.describe()}


_SOCKET_FAULTS: dict[str, Callable[[Emulator, dict[str, Any]], dict[str, Any]]] = {
    "event_chaos": _event_chaos,
    "raw_frames": _raw_frames,
    "drop_sockets": lambda emu, spec: {"dropped": emu.channels.drop_sockets(spec.get("channels"))},
    "idle_close": lambda emu, _: {"closed": emu.channels.close_idle(emu.channels.connected())},
    "expire_channels": lambda emu, _: {"expired": emu.channels.expire_all()},
    "expire_tokens": _expire_tokens,
    "revoke_tokens": lambda emu, _: {"revoked": emu.revoke_tokens()},
    "socket_closing": _socket_closing,
    "lose_events": _lose_events,
    "acw_state_noise": _acw_state_noise,
    "expire_refresh_tokens": lambda emu, _: {
        "expired": emu.code_grant.expire_refresh_tokens(emu.now())
    },
    "revoke_refresh_tokens": lambda emu, _: {
        "revoked": emu.code_grant.revoke_refresh_tokens(emu.now())
    },
}
