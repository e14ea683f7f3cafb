"""The client-credentials token: fetch, renew before expiry and after a 401, never log it.

The SDK's ``get_client_credentials_token`` drops ``expires_in`` and never renews, so the token
request is made here, through the same pinned HTTP client (no retries, explicit timeouts).

Renewal is *single flight*: however many callers ask at once, one request goes to the token
endpoint and all of them wait for its answer. A caller that saw a 401 passes the generation of the
token it used; if a newer token already exists, it simply retries with that one.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from wrapupd.clock import Clock
from wrapupd.errors import AuthenticationFailed, PlatformError, TransportError
from wrapupd.genesys.error_map import map_api_exception, parse_error_body
from wrapupd.genesys.http import PinnedHttpClient, endpoint
from wrapupd.genesys.sdk import ApiException, HttpRequestOptions

__all__ = [
    "DEFAULT_LIFETIME_SECONDS",
    "RETRY_RENEWAL_SECONDS",
    "TOKEN_ENDPOINT",
    "ClientCredentials",
    "Token",
    "TokenManager",
    "login_host",
]

TOKEN_ENDPOINT = "/oauth/token"
DEFAULT_LIFETIME_SECONDS = 86400.0  # the platform default, if an answer ever omits expires_in
RETRY_RENEWAL_SECONDS = 30.0
log = logging.getLogger(__name__)
_API_HOST = re.compile(r"//api\.")


def login_host(api_host: str) -> str:
    """``https://api.<domain>`` -> ``https://login.<domain>``; any other host (an emulator on
    ``http://127.0.0.1:PORT``) serves its own ``/oauth/token``, exactly as the SDK decides."""
    return _API_HOST.sub("//login.", api_host.rstrip("/"), count=1)


@dataclass(frozen=True, slots=True)
class Token:
    access_token: str
    expires_in: float  # seconds, as the token endpoint said

    def __repr__(self) -> str:  # never show the token itself
        return f"Token(expires_in={self.expires_in})"


class ClientCredentials:
    """One synchronous ``POST <login host>/oauth/token`` (run it in a worker thread)."""

    def __init__(
        self, http_client: PinnedHttpClient, *, api_host: str, client_id: str, client_secret: str
    ) -> None:
        self._http = http_client
        self._url = login_host(api_host) + TOKEN_ENDPOINT
        pair = f"{client_id}:{client_secret}".encode()
        self._basic = "Basic " + base64.b64encode(pair).decode("ascii")

    def __repr__(self) -> str:
        return f"ClientCredentials(url={self._url!r})"

    def fetch(self) -> Token:
        options = HttpRequestOptions(
            url=self._url,
            method="POST",
            headers={
                "Authorization": self._basic,
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            post_params={"grant_type": "client_credentials"},
        )
        try:
            with endpoint(TOKEN_ENDPOINT):
                response = self._http.request(options)
        except ApiException as exc:
            raise _refused(exc) from None
        return _read_token(response.data)


def _refused(exc: Any) -> Exception:
    if exc.status not in (400, 401):
        return map_api_exception(exc, method="POST", endpoint=TOKEN_ENDPOINT)
    body = parse_error_body(exc.body, "")
    error = body.raw.get("error")
    detail = body.raw.get("error_description") or body.raw.get("description") or body.message
    said = ", ".join(str(x) for x in (error, detail) if x)
    return AuthenticationFailed(
        f"the OAuth token endpoint refused the client credentials (HTTP {exc.status}"
        f"{': ' + said if said else ''}). Check the client id and secret, and that the OAuth "
        "client uses the Client Credentials grant type and belongs to this region's org.",
        status=exc.status,
    )


def _read_token(data: str) -> Token:
    try:
        raw = json.loads(data)
    except ValueError:
        raw = None
    token = raw.get("access_token") if isinstance(raw, dict) else None
    if not isinstance(token, str) or not token:
        raise AuthenticationFailed("the OAuth token endpoint answered without an access_token")
    expires_in = raw.get("expires_in") if isinstance(raw, dict) else None
    if not isinstance(expires_in, int | float) or isinstance(expires_in, bool) or expires_in <= 0:
        expires_in = DEFAULT_LIFETIME_SECONDS
    return Token(token, float(expires_in))


class TokenManager:
    """Holds the current token's schedule; renews single-flight in a worker thread.

    ``on_new_token`` runs (on the event loop) for every new token before any call uses it: the
    facade installs the token in the SDK's ``ApiClient`` and tells log redaction about it.
    """

    def __init__(
        self,
        fetch: Callable[[], Token],
        *,
        executor: Executor,
        clock: Clock,
        renew_margin_seconds: float,
        on_new_token: Callable[[str], None],
    ) -> None:
        self._fetch = fetch
        self._executor = executor
        self._clock = clock
        self._margin = renew_margin_seconds
        self._on_new_token = on_new_token
        self._generation = 0
        self._expires_at: datetime | None = None
        self._renew_at: float | None = None  # on the monotonic clock
        self._valid_until = 0.0  # on the monotonic clock
        self._inflight: asyncio.Future[None] | None = None

    @property
    def generation(self) -> int:
        """Increments with every new token; 0 before the first."""
        return self._generation

    @property
    def expires_at(self) -> datetime | None:
        return self._expires_at

    @property
    def renew_due(self) -> bool:
        return self._renew_at is None or self._clock.monotonic() >= self._renew_at

    async def ensure_fresh(self) -> None:
        """Renew first when the token is missing or within its renewal window.

        If an early renewal fails while the current token is still valid, keep using it and try
        again a little later (at most every :data:`RETRY_RENEWAL_SECONDS`); raise only once the
        token has no life left.
        """
        if not self.renew_due:
            return
        try:
            await self.renew(stale_generation=self._generation)
        except PlatformError as exc:
            remaining = self._valid_until - self._clock.monotonic()
            if remaining <= 0:
                raise
            self._renew_at = self._clock.monotonic() + min(RETRY_RENEWAL_SECONDS, remaining / 2)
            log.warning("early token renewal failed; the current token is still valid: %s", exc)

    async def renew(self, *, stale_generation: int | None = None) -> None:
        """Get a new token, sharing one request among concurrent callers.

        With ``stale_generation``, return at once if a token newer than that one already exists.
        Cancelling a caller does not cancel the shared request.
        """
        if stale_generation is not None and self._generation != stale_generation:
            return
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._renew_once())
            self._inflight.add_done_callback(self._renewal_done)
        await asyncio.shield(self._inflight)

    async def _renew_once(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            token = await loop.run_in_executor(self._executor, self._fetch)
        except RuntimeError as exc:  # the executor was shut down: the client is closed
            raise TransportError(f"POST {TOKEN_ENDPOINT}: not sent ({exc})") from None
        self._install(token)

    def _install(self, token: Token) -> None:
        lifetime = token.expires_in
        lead = self._margin if lifetime > 2 * self._margin else lifetime / 2
        self._on_new_token(token.access_token)
        self._generation += 1
        now = self._clock.monotonic()
        self._renew_at = now + lifetime - lead
        self._valid_until = now + lifetime
        self._expires_at = self._clock.now() + timedelta(seconds=lifetime)

    def _renewal_done(self, future: asyncio.Future[None]) -> None:
        self._inflight = None
        if not future.cancelled():
            future.exception()  # retrieved: every waiter re-raises it; no "never retrieved" noise
