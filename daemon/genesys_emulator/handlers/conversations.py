"""Conversations: read one, and write a participant's wrap-up (PATCH or POST ``.../wrapup``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .. import conversation as cv
from .. import stray
from ..conversation import ARRAY_MEDIA, Conversation, Participant
from ..errors import (
    ApiError,
    bad_request,
    forbidden,
    json_response,
    not_found,
    user_context_required,
)
from ..views import code_json, conversation_json
from ..views_media import media_conversation_json
from .common import caller, emulator, json_body, require

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WRAPUP_PERMISSION = "conversation:participant:wrapup"
VIEW_PERMISSION = "conversation:communication:view"


def _conversation(request: web.Request, media_array: str | None = None) -> Conversation:
    conv_id = request.match_info["id"]
    conv = emulator(request).conversations.get(conv_id)
    if conv is None or (media_array is not None and ARRAY_MEDIA[media_array] != conv.media):
        raise not_found("Conversation", conv_id)
    client = caller(request)
    if not any(client.can_see_queue(q) for q in conv.queue_ids()):
        raise forbidden("Conversation", conv_id)
    return conv


def _participant(conv: Conversation, request: web.Request) -> Participant:
    pid = request.match_info["pid"]
    p = conv.participant(pid)
    if p is None:
        raise not_found("Participant", pid)
    return p


async def get_conversation(request: web.Request) -> web.Response:
    require(request, VIEW_PERMISSION)
    conv = _conversation(request)
    emu = emulator(request)
    body = conversation_json(conv, emu.org)
    if emu.options.capture_stray_keys:
        stray.add_to_conversation(body)
    return json_response(body)


async def participant_wrapup_codes(request: web.Request) -> web.Response:
    require(request, VIEW_PERMISSION)
    p = _participant(_conversation(request), request)
    org = emulator(request).org
    queue = org.queues.get(p.queue_id or "")
    codes = org.queue_codes(queue) if queue is not None else []
    return json_response([code_json(c, org) for c in codes])


def get_media_conversation(media_array: str) -> Handler:
    """``GET /api/v2/conversations/{calls|callbacks|emails|messages}/{id}``."""

    async def handle(request: web.Request) -> web.StreamResponse:
        require(request, VIEW_PERMISSION)
        conv = _conversation(request, media_array)
        emu = emulator(request)
        body = media_conversation_json(conv, emu.org, media_array)
        if emu.options.capture_stray_keys:
            stray.add_to_media_conversation(body, emu.org)
        return json_response(body)

    return handle


def patch_participant(media_array: str | None) -> Handler:
    """``PATCH …/participants/{pid}`` (and its media-specific twins): body must be only wrapup."""

    async def handle(request: web.Request) -> web.StreamResponse:
        _write_allowed(request)
        conv = _conversation(request, media_array)
        p = _participant(conv, request)
        _own_participant(request, p)
        body = await json_body(request)
        if not isinstance(body, dict):
            raise bad_request("The request body must be a MediaParticipantRequest object.")
        _only_wrapup(body)
        wrapup = body.get("wrapup")
        if not isinstance(wrapup, dict):
            raise bad_request('wrapup is required: {"wrapup": {"code": "<code id>"}}.')
        _apply(request, conv, p, wrapup)
        return web.Response(status=202)

    return handle


def post_communication_wrapup(media_array: str) -> Handler:
    """``POST …/participants/{pid}/communications/{commId}/wrapup`` with a bare WrapupInput."""

    async def handle(request: web.Request) -> web.StreamResponse:
        _write_allowed(request)
        conv = _conversation(request, media_array)
        p = _participant(conv, request)
        if p.comm.id != request.match_info["commId"]:
            raise not_found("Communication", request.match_info["commId"])
        _own_participant(request, p)
        body = await json_body(request)
        if not isinstance(body, dict):
            raise bad_request("The request body must be a WrapupInput object.")
        _apply(request, conv, p, body)
        return web.Response(status=202)

    return handle


def _write_allowed(request: web.Request) -> None:
    """Permission first, then the user context: both before the conversation is even looked up."""
    who = require(request, WRAPUP_PERMISSION)
    options = emulator(request).options
    if options.require_user_context and who.user is None:
        raise user_context_required(options.user_context_status)


def _own_participant(request: web.Request, p: Participant) -> None:
    """``wrapup_own_participant_only``: a user token may code only the user's own participant."""
    who = caller(request)
    if (
        emulator(request).options.wrapup_own_participant_only
        and who.user is not None
        and p.user_id != who.user.id
    ):
        raise ApiError(
            403,
            "not.authorized",
            f"Access to Participant {p.id} is forbidden: a user may wrap up only their own "
            "participant.",
            {"participantId": p.id},
        )


def _only_wrapup(body: dict[str, Any]) -> None:
    """Any other MediaParticipantRequest field is an action this client may not take."""
    others = sorted(k for k in body if k != "wrapup")
    if others:
        raise ApiError(
            403,
            "not.authorized",
            f"Only wrapup may be changed with conversation:participant:wrapup; refused fields: "
            f"{', '.join(others)}",
            {"fields": ", ".join(others)},
        )


def _apply(
    request: web.Request, conv: Conversation, p: Participant, wrapup: dict[str, Any]
) -> None:
    emu = emulator(request)
    p.api_wrapup_writes += 1
    code_ref = wrapup.get("code")
    if not code_ref:
        raise bad_request("A wrap-up code is required: wrapup.code must be a wrap-up code id.")
    notes = wrapup.get("notes")
    if notes is not None and not isinstance(notes, str):
        raise bad_request("wrapup.notes must be a string.")
    cv.check_wrapup_target(p, emu.options.overwrite_allowed)
    queue = emu.org.queues[p.queue_id or ""]
    code = cv.resolve_code(queue, emu.org.queue_codes(queue), code_ref)
    if not p.in_acw:
        cv.overwrite_code(p, code, emu.now(), notes)
    elif wrapup.get("provisional") is True:
        cv.store_provisional(p, code, notes)
    else:
        cv.apply_code(p, code, emu.now(), by="api", notes=notes)
    emu.changed(conv)
