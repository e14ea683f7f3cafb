"""Notification channels and their subscriptions over REST; the socket itself is in ``stream``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import subscriptions
from ..channels import Channel
from ..clock import iso
from ..errors import ApiError, bad_request, json_response, not_found
from .common import TOKEN, caller, emulator, json_body


def _channel_json(channel: Channel, host: str) -> dict[str, Any]:
    return {
        "connectUri": f"ws://{host}/channels/{channel.id}",
        "id": channel.id,
        "expires": iso(channel.expires_at),
    }


def _owned_channel(request: web.Request) -> Channel:
    emu = emulator(request)
    channel_id = request.match_info["id"]
    channel = emu.channels.get(channel_id, emu.now())
    if channel is None or channel.owner != caller(request).owner:
        raise not_found("Channel", channel_id)
    emu.channels.touch(channel, emu.now())
    return channel


async def create_channel(request: web.Request) -> web.Response:
    emu = emulator(request)
    channel = emu.channels.create(caller(request), request[TOKEN].value, emu.now())
    return json_response(_channel_json(channel, request.host))


async def list_channels(request: web.Request) -> web.Response:
    emu = emulator(request)
    mine = emu.channels.owned_by(caller(request).owner)
    return json_response({"entities": [_channel_json(c, request.host) for c in mine]})


async def head_channel(request: web.Request) -> web.Response:
    _owned_channel(request)
    return web.Response(status=200)


async def get_subscriptions(request: web.Request) -> web.Response:
    channel = _owned_channel(request)
    return json_response({"entities": [{"id": t} for t in channel.topics]})


async def delete_subscriptions(request: web.Request) -> web.Response:
    channel = _owned_channel(request)
    channel.set_topics([])
    return web.Response(status=204)


async def put_subscriptions(request: web.Request) -> web.Response:
    return await _subscribe(request, replace=True)


async def post_subscriptions(request: web.Request) -> web.Response:
    return await _subscribe(request, replace=False)


async def _subscribe(request: web.Request, replace: bool) -> web.Response:
    emu = emulator(request)
    channel = _owned_channel(request)
    requested = _topic_ids(await json_body(request))
    ignore_errors = request.query.get("ignoreErrors", "false").lower() == "true"
    try:
        verdicts = subscriptions.subscribe(
            channel,
            requested,
            caller(request),
            emu.org,
            limit=emu.options.max_topics_per_channel,
            replace=replace,
            strict=not ignore_errors,
        )
    except subscriptions.SubscriptionRefused as refusal:
        raise ApiError(refusal.status, refusal.code, refusal.message, refusal.params) from None
    emu.channels.renew(channel, emu.now())
    if ignore_errors:
        return json_response({"entities": [v.listing_entry() for v in verdicts]})
    return json_response({"entities": [{"id": t} for t in channel.topics]})


def _topic_ids(body: object) -> list[str]:
    if not isinstance(body, list):
        raise bad_request('The request body must be a list of topics: [{"id": "v2...."}].')
    ids = []
    for item in body:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise bad_request("Every topic must be an object with a string id.")
        ids.append(item["id"])
    return ids
