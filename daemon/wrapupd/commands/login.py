"""``wrapupd login``: sign the integration user in once (authorization code with PKCE) and store the
refresh token the daemon then lives on.

The authorization URL is printed on a line of its own (and opened in a browser unless
``--no-browser``); the platform's sign-in redirects to ``[genesys] redirect_uri``, where a one-shot
loopback listener takes the code, once its ``state`` proves the redirect belongs to this login.
The code is exchanged, the refresh token saved atomically with mode 0600, and the command says who
signed in. A running daemon picks the new token up at its next renewal: no restart is needed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import sys
import webbrowser
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from aiohttp import web

from wrapupd import logs
from wrapupd.commands import EX_CONFIG, EX_FAILURE, EX_OK
from wrapupd.credentials import refresh_token_path
from wrapupd.errors import AuthenticationFailed
from wrapupd.genesys.auth import Token
from wrapupd.genesys.client import GenesysClient, Timeouts
from wrapupd.genesys.grants import IssuedToken
from wrapupd.genesys.login import (
    Pkce,
    authorization_url,
    code_from_redirect,
    exchange_code,
    new_pkce,
    new_state,
)
from wrapupd.genesys.refresh_token import RefreshTokenFile
from wrapupd.options import DaemonOptions
from wrapupd.settings import Settings

_SIGNED_IN_PAGE = (
    "<!doctype html><title>wrapupd</title><p>wrapupd: signed in. You may close this tab."
)
_REFUSED_PAGE = "<!doctype html><title>wrapupd</title><p>wrapupd: this sign-in was not accepted: "


async def command(args: argparse.Namespace, settings: Settings) -> int:
    """``wrapupd login``: 0 once the refresh token is stored and the user named."""
    options = settings.daemon_options()
    if options.grant.kind != "authorization_code":
        print(
            'wrapupd: login needs [genesys] grant = "authorization_code" (with the Authorization '
            "Code client's client_id and client_secret); this configuration uses client_credentials",
            file=sys.stderr,
        )
        return EX_CONFIG
    try:
        name = await login(options, open_browser=not args.no_browser, wait_seconds=args.timeout)
    except TimeoutError:
        print(f"wrapupd: no sign-in arrived within {args.timeout:g} s", file=sys.stderr)
        return EX_FAILURE
    print(f"logged in as {name}", flush=True)
    return EX_OK


async def login(options: DaemonOptions, *, open_browser: bool, wait_seconds: float) -> str:
    """The whole sign-in; returns the user's name. Raises ``AuthenticationFailed``, ``TimeoutError``."""
    pkce, state = new_pkce(), new_state()
    redirect_uri = options.grant.redirect_uri
    url = authorization_url(
        api_host=options.api_host,
        client_id=options.client_id,
        redirect_uri=redirect_uri,
        state=state,
        pkce=pkce,
    )
    async with redirect_listener(redirect_uri, state) as redirected:
        print("Sign the integration user in at this URL:", flush=True)
        print(url, flush=True)
        if open_browser:
            await asyncio.to_thread(webbrowser.open, url)
        code = await asyncio.wait_for(redirected, wait_seconds)
    token = await asyncio.to_thread(_exchange, options, code, pkce)
    _store(options, token)
    return await _user_name(options, token)


def _exchange(options: DaemonOptions, code: str, pkce: Pkce) -> Token:
    return exchange_code(
        api_host=options.api_host,
        client_id=options.client_id,
        client_secret=options.client_secret,
        code=code,
        redirect_uri=options.grant.redirect_uri,
        pkce=pkce,
        connect_timeout=options.connect_timeout,
        read_timeout=options.read_timeout,
    )


def _store(options: DaemonOptions, token: Token) -> None:
    """Save the refresh token (atomically, 0600) where the daemon reads it."""
    assert token.refresh_token is not None  # exchange_code refuses an answer without one
    logs.add_secret(token.refresh_token)
    logs.add_secret(token.access_token)
    path = refresh_token_path(options)
    try:
        RefreshTokenFile(path).save(token.refresh_token)
    except OSError as exc:
        raise AuthenticationFailed(
            f"signed in, but the refresh token could not be saved to {path} ({exc.strerror}): "
            "fix the directory's permissions and log in again"
        ) from None


async def _user_name(options: DaemonOptions, token: Token) -> str:
    """Who signed in (``GET /api/v2/users/me`` with the new token)."""
    client = GenesysClient(
        api_host=options.api_host,
        grant=IssuedToken(token),
        timeouts=Timeouts(connect=options.connect_timeout, read=options.read_timeout),
        max_workers=1,
    )
    try:
        await client.start()
        return (await client.current_user()).name
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def redirect_listener(redirect_uri: str, state: str) -> AsyncIterator[asyncio.Future[str]]:
    """Listen on the redirect URI's loopback port; the future holds the code of our redirect.

    A redirect with another ``state`` (an old tab, a forged request) is answered 400 and ignored;
    a refusal carrying our ``state`` (``error=access_denied``) ends the login with its reason.
    """
    parts = urlsplit(redirect_uri)
    path = parts.path or "/"
    redirected: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def on_redirect(request: web.Request) -> web.Response:
        if redirected.done():
            return _page(_SIGNED_IN_PAGE, 200)
        try:
            code = code_from_redirect(dict(request.query), expected_state=state)
        except AuthenticationFailed as exc:
            if request.query.get("state") == state:
                redirected.set_exception(exc)
            return _page(_REFUSED_PAGE + html.escape(str(exc)), 400)
        redirected.set_result(code)
        return _page(_SIGNED_IN_PAGE, 200)

    app = web.Application()
    app.router.add_get(path, on_redirect)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await _listen(runner, parts.hostname or "127.0.0.1", parts.port or 0, redirect_uri)
        yield redirected
    finally:
        await runner.cleanup()


async def _listen(runner: web.AppRunner, host: str, port: int, redirect_uri: str) -> None:
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        raise AuthenticationFailed(
            f"cannot listen for the sign-in redirect on {host}:{port} ({exc.strerror}); "
            f"free the port or choose another redirect_uri (now {redirect_uri}) and add it to "
            "the OAuth client's authorized redirect URIs"
        ) from None


def _page(html: str, status: int) -> web.Response:
    return web.Response(text=html, status=status, content_type="text/html")
