"""The streaming WebSocket ``/channels/{id}``: frames out, the socket protocol's messages in."""

from __future__ import annotations

from aiohttp import WSMsgType, web

from .. import socket_protocol as proto
from .. import subscriptions
from ..channels import PONG, Channel, ChannelSocket
from ..errors import error_body, json_response
from ..state import Emulator
from .common import emulator


async def websocket(request: web.Request) -> web.StreamResponse:
    emu = emulator(request)
    channel = emu.channels.get(request.match_info["id"], emu.now())
    if channel is None:
        body = error_body(404, "not.found", "Channel not found", "")
        return json_response(body, status=404)
    ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
    await ws.prepare(request)
    socket = ChannelSocket(ws, request, emu.options.heartbeat_interval_s, emu.now())
    emu.channels.attach(channel, socket, emu.now())
    try:
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                socket.last_heard = emu.now()
                reply = answer(emu, channel, message.data)
                if reply is not None:
                    socket.send(reply)
    finally:
        emu.channels.detach(channel.id, socket)
    return ws


def answer(emu: Emulator, channel: Channel, text: str) -> str | None:
    """The frame that answers one client text frame (None: nothing to say)."""
    try:
        message = proto.parse(text)
    except proto.MalformedMessage as problem:
        return proto.malformed(problem)
    if message.kind == proto.PING:
        return PONG
    if emu.channels.get(channel.id, emu.now()) is not channel:
        return None  # the channel died: its 404 frame and close are already on their way
    if message.kind == proto.UNSUBSCRIBE:
        subscriptions.unsubscribe(channel, list(message.topics))
        return proto.done(message)
    return _subscribe(emu, channel, message)


def _subscribe(emu: Emulator, channel: Channel, message: proto.ClientMessage) -> str:
    """Same rules as a REST ``POST …/subscriptions``; a subscribe renews the channel's life."""
    try:
        subscriptions.subscribe(
            channel,
            list(message.topics),
            channel.caller,
            emu.org,
            limit=emu.options.max_topics_per_channel,
        )
    except subscriptions.SubscriptionRefused as refusal:
        return proto.refused(refusal.message, message.correlation_id)
    emu.channels.renew(channel, emu.now())
    return proto.done(message)
