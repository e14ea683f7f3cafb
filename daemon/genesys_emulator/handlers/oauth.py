"""The login service: ``POST /oauth/token`` (client credentials, authorization code with or without
PKCE, refresh token) and ``GET /oauth/authorize`` (the browser step of the code grant)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from ..auth import OAuthFailure, authenticate_client, check_grant, known_client
from ..errors import json_response
from ..oauth_code import AuthorizePageError, AuthorizeRequest
from ..org import OAuthClient, User
from ..state import Emulator
from .common import emulator

Form = MultiDictProxy[Any]


async def token(request: web.Request) -> web.Response:
    emu = emulator(request)
    form = await request.post()
    grant = _field(form, "grant_type")
    try:
        if grant == "authorization_code":
            body = _code_grant(emu, request, form)
        elif grant == "refresh_token":
            body = _refresh_grant(emu, request, form)
        else:
            client = authenticate_client(emu.org, request.headers.get("Authorization"), grant)
            body = _access_token(emu, client, None)
    except OAuthFailure as failure:
        return json_response(failure.body(), status=failure.status)
    return json_response(body)


async def authorize(request: web.Request) -> web.Response:
    emu = emulator(request)
    q = request.query
    req = AuthorizeRequest(
        response_type=q.get("response_type", ""),
        client_id=q.get("client_id", ""),
        redirect_uri=q.get("redirect_uri", ""),
        state=q.get("state"),
        code_challenge=q.get("code_challenge"),
        code_challenge_method=q.get("code_challenge_method"),
    )
    try:
        location = emu.code_grant.authorize(emu.org, req, emu.now(), _signed_in(emu))
    except AuthorizePageError as error:
        return web.Response(status=400, text=error.message, content_type="text/plain")
    return web.Response(status=302, headers={"Location": location})


def _signed_in(emu: Emulator) -> User | None:
    """The browser session's user: option ``login_user`` (id or name), else the org's login user."""
    ref = emu.options.login_user
    if not ref:
        return emu.org.login_user
    return emu.org.users.get(ref) or next(
        (u for u in emu.org.users.values() if u.name.lower() == ref.lower()), None
    )


def _field(form: Form, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _code_grant(emu: Emulator, request: web.Request, form: Form) -> dict[str, Any]:
    """Basic client auth (confidential client), or ``client_id`` in the form with PKCE (public)."""
    header = request.headers.get("Authorization")
    public = header is None
    if public:
        client = known_client(emu.org, _field(form, "client_id") or "")
        check_grant(client, "authorization_code")
    else:
        client = authenticate_client(emu.org, header, "authorization_code")
    user = emu.code_grant.redeem(
        client,
        _field(form, "code") or "",
        _field(form, "redirect_uri") or "",
        _field(form, "code_verifier"),
        emu.now(),
        public=public,
    )
    refresh = emu.code_grant.issue_refresh(
        client, user, emu.now(), emu.options.refresh_token_lifetime_s
    )
    return _access_token(emu, client, user, refresh)


def _refresh_grant(emu: Emulator, request: web.Request, form: Form) -> dict[str, Any]:
    client = authenticate_client(emu.org, request.headers.get("Authorization"), "refresh_token")
    user, refresh = emu.code_grant.use_refresh(
        client,
        _field(form, "refresh_token") or "",
        emu.now(),
        rotate=not emu.options.keep_refresh_tokens,
        life_s=emu.options.refresh_token_lifetime_s,
    )
    return _access_token(emu, client, user, refresh)


def _access_token(
    emu: Emulator, client: OAuthClient, user: User | None, refresh: str | None = None
) -> dict[str, Any]:
    lifetime = emu.options.token_lifetime_s
    issued = emu.tokens.issue(client, emu.now(), lifetime, user)
    body: dict[str, Any] = {
        "access_token": issued.value,
        "token_type": "bearer",
        "expires_in": max(1, round(lifetime)),
    }
    if refresh is not None:
        body["refresh_token"] = refresh
    return body
