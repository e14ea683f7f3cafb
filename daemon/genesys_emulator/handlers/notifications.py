"""Notification channels, subscriptions and the streaming WebSocket."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import WSMsgType, web

from ..channels import PONG, Channel, ChannelSocket
from ..clock import iso
from ..errors import ApiError, bad_request, error_body, json_response, not_found
from ..org import OAuthClient, OrgDefinition
from .common import TOKEN, caller, emulator, json_body

QUEUE_TOPIC = re.compile(r"^v2\.routing\.queues\.([0-9a-fA-F-]{36})\.conversations$")
# Permission the emulator requires to subscribe to a queue's conversations topic.
QUEUE_TOPIC_PERMISSION = "routing:queue:view"


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
    if channel is None or channel.client_id != caller(request).id:
        raise not_found("Channel", channel_id)
    emu.channels.touch(channel, emu.now())
    return channel


async def create_channel(request: web.Request) -> web.Response:
    emu = emulator(request)
    channel = emu.channels.create(caller(request).id, request[TOKEN].value, emu.now())
    return json_response(_channel_json(channel, request.host))


async def list_channels(request: web.Request) -> web.Response:
    emu = emulator(request)
    mine = [c for c in emu.channels.channels.values() if c.client_id == caller(request).id]
    return json_response({"entities": [_channel_json(c, request.host) for c in mine]})


async def head_channel(request: web.Request) -> web.Response:
    _owned_channel(request)
    return web.Response(status=200)


async def get_subscriptions(request: web.Request) -> web.Response:
    channel = _owned_channel(request)
    return json_response({"entities": [{"id": t} for t in channel.topics]})


async def delete_subscriptions(request: web.Request) -> web.Response:
    channel = _owned_channel(request)
    channel.topics = []
    return web.Response(status=204)


async def put_subscriptions(request: web.Request) -> web.Response:
    return await _subscribe(request, replace=True)


async def post_subscriptions(request: web.Request) -> web.Response:
    return await _subscribe(request, replace=False)


async def _subscribe(request: web.Request, replace: bool) -> web.Response:
    emu = emulator(request)
    channel = _owned_channel(request)
    requested = _topic_ids(await json_body(request))
    _check_topic_count(len(_dedupe(requested)), emu.options.max_topics_per_channel)
    ignore_errors = request.query.get("ignoreErrors", "false").lower() == "true"
    verdicts = [_evaluate(t, caller(request), emu.org) for t in requested]
    if not ignore_errors:
        _raise_first_rejection(verdicts)
    permitted = [v["id"] for v in verdicts if v["state"] == "Permitted"]
    topics = _dedupe(permitted if replace else channel.topics + permitted)
    _check_topic_count(len(topics), emu.options.max_topics_per_channel)
    channel.topics = topics
    emu.channels.renew(channel, emu.now())
    if ignore_errors:
        return json_response({"entities": [_public(v) for v in verdicts]})
    return json_response({"entities": [{"id": t} for t in topics]})


def _check_topic_count(count: int, limit: int) -> None:
    if count > limit:
        raise bad_request(f"A channel may subscribe to at most {limit} topics; got {count}.")


def _topic_ids(body: object) -> list[str]:
    if not isinstance(body, list):
        raise bad_request('The request body must be a list of topics: [{"id": "v2...."}].')
    ids = []
    for item in body:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise bad_request("Every topic must be an object with a string id.")
        ids.append(item["id"])
    return ids


def _dedupe(topics: list[str]) -> list[str]:
    return list(dict.fromkeys(topics))


def _evaluate(topic: str, client: OAuthClient, org: OrgDefinition) -> dict[str, Any]:
    match = QUEUE_TOPIC.match(topic)
    if match is None:
        return _rejected(topic, "invalid", "Topic is not valid or is not supported.")
    if QUEUE_TOPIC_PERMISSION not in client.permissions:
        return _rejected(topic, "permission", "Missing permissions.", [QUEUE_TOPIC_PERMISSION])
    queue_id = match.group(1)
    if queue_id not in org.queues:
        return _rejected(topic, "invalid", f"Queue {queue_id} was not found.")
    if not client.may_subscribe(queue_id):
        return _rejected(topic, "permission", f"Access to queue {queue_id} is denied.")
    return {"id": topic, "state": "Permitted"}


def _rejected(
    topic: str, kind: str, reason: str, missing: list[str] | None = None
) -> dict[str, Any]:
    return {
        "id": topic,
        "state": "Rejected",
        "rejectionReason": reason,
        "missingPermissions": missing or [],
        "_kind": kind,
    }


def _public(verdict: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in verdict.items() if not k.startswith("_")}


def _raise_first_rejection(verdicts: list[dict[str, Any]]) -> None:
    for v in verdicts:
        if v["state"] != "Rejected":
            continue
        message = f"Unable to subscribe to topic {v['id']}: {v['rejectionReason']}"
        if v["_kind"] == "permission":
            params = {"topic": v["id"]}
            raise ApiError(403, "not.authorized", message, params)
        raise ApiError(400, "bad.request", message, {"topic": v["id"]})


# --- the streaming socket -------------------------------------------------------------------


async def websocket(request: web.Request) -> web.StreamResponse:
    emu = emulator(request)
    channel = emu.channels.get(request.match_info["id"], emu.now())
    if channel is None:
        body = error_body(404, "not.found", "Channel not found", "")
        return json_response(body, status=404)
    ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
    await ws.prepare(request)
    socket = ChannelSocket(ws, request, emu.options.heartbeat_interval_s)
    emu.channels.attach(channel, socket, emu.now())
    try:
        async for message in ws:
            if message.type == WSMsgType.TEXT and _is_ping(message.data):
                socket.send(PONG)
    finally:
        emu.channels.detach(channel.id, socket)
    return ws


def _is_ping(text: str) -> bool:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return False
    return isinstance(data, dict) and data.get("message") == "ping"
