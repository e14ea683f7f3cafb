"""``POST /oauth/token``: client credentials only."""

from __future__ import annotations

from aiohttp import web

from ..auth import OAuthFailure, authenticate_client
from ..errors import json_response
from .common import emulator


async def token(request: web.Request) -> web.Response:
    emu = emulator(request)
    form = await request.post()
    grant = form.get("grant_type")
    try:
        client = authenticate_client(
            emu.org, request.headers.get("Authorization"), grant if isinstance(grant, str) else None
        )
    except OAuthFailure as failure:
        return json_response(failure.body(), status=failure.status)
    lifetime = emu.options.token_lifetime_s
    issued = emu.tokens.issue(client, emu.now(), lifetime)
    return json_response(
        {
            "access_token": issued.value,
            "token_type": "bearer",
            "expires_in": max(1, round(lifetime)),
        }
    )
