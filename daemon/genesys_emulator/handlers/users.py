"""``GET /api/v2/users/me``: the user a token acts for; client-credentials tokens have none."""

from __future__ import annotations

from aiohttp import web

from ..errors import json_response, user_context_required
from ..views import user_me_json
from .common import caller, emulator

# The one measured capture of this refusal (GENESYS.md §9) came back as 400.
USERS_ME_REFUSAL_STATUS = 400


async def users_me(request: web.Request) -> web.Response:
    user = caller(request).user
    if user is None:
        raise user_context_required(USERS_ME_REFUSAL_STATUS)
    return json_response(user_me_json(user, emulator(request).org))
