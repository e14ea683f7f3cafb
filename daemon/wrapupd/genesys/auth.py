"""Access tokens: fetch one through a grant, renew before expiry and after a 401, never log it.

A *grant* (:mod:`.grants`: client credentials, authorization code + refresh token) knows how to
ask ``POST <login host>/oauth/token`` for a token; :class:`TokenEndpoint` is how it asks, through
the facade's pinned HTTP client (no retries, explicit timeouts), and :func:`refused` maps a refusal
to a typed error that never quotes the request. :class:`TokenManager` decides *when* to ask.

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
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from wrapupd.clock import Clock
from wrapupd.errors import AuthenticationFailed, PlatformError, TransportError
from wrapupd.genesys.error_map import map_api_exception, parse_error_body
from wrapupd.genesys.http import PinnedHttpClient, endpoint
from wrapupd.genesys.sdk import ApiClient, HttpRequestOptions

__all__ = [
    "DEFAULT_LIFETIME_SECONDS",
    "RETRY_RENEWAL_SECONDS",
    "TOKEN_ENDPOINT",
    "Grant",
    "Token",
    "TokenEndpoint",
    "TokenManager",
    "basic_authorization",
    "login_host",
    "oauth_error",
    "read_token",
    "refused",
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
    """One token answer. The repr never shows a token."""

    access_token: str
    expires_in: float  # seconds, as the token endpoint said
    refresh_token: str | None = None  # authorization-code grants only; may be a rotated one

    def __repr__(self) -> str:
        refresh = "…" if self.refresh_token else None
        return f"Token(expires_in={self.expires_in}, refresh_token={refresh})"


class TokenEndpoint:
    """``POST <login host>/oauth/token`` for a grant, through the facade's pinned HTTP client.

    Runs in a worker thread. :meth:`sdk_client` is an ``ApiClient`` of its own for the SDK's OAuth
    helpers, which store the client secret and refresh token on the client they run on: never the
    one the API calls use.
    """

    def __init__(self, http_client: PinnedHttpClient, *, api_host: str) -> None:
        self._http = http_client
        self._api_host = api_host.rstrip("/")
        self.url = login_host(api_host) + TOKEN_ENDPOINT
        self._sdk_client: Any = None

    def __repr__(self) -> str:
        return f"TokenEndpoint(url={self.url!r})"

    def request(self, form: Mapping[str, str], *, client_id: str, client_secret: str) -> Any:
        """One form POST with HTTP Basic client authentication; the decoded JSON answer."""
        options = HttpRequestOptions(
            url=self.url,
            method="POST",
            headers={
                "Authorization": basic_authorization(client_id, client_secret),
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            post_params=dict(form),
        )
        with endpoint(TOKEN_ENDPOINT):
            response = self._http.request(options)
        return _json_or_none(response.data)

    def sdk_client(self) -> Any:
        """The ``ApiClient`` the SDK's OAuth helpers run on (built on first use)."""
        if self._sdk_client is None:
            api = ApiClient(host=self._api_host)
            api.gateway_configuration = None
            api.set_http_client(self._http)
            self._sdk_client = api
        return self._sdk_client


def basic_authorization(client_id: str, client_secret: str) -> str:
    """``Basic base64(id:secret)``, as the platform's token endpoint expects."""
    pair = f"{client_id}:{client_secret}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


class Grant(Protocol):
    """How wrapupd gets an access token (see :mod:`.grants`); ``fetch`` runs in a worker thread."""

    @property
    def name(self) -> str:
        """The OAuth grant type, for messages: ``client_credentials``, ``authorization_code``."""
        ...

    def fetch(self, token_endpoint: TokenEndpoint) -> Token:
        """A new access token, or a typed error (``AuthenticationFailed``, ``TransportError``…)."""
        ...


def refused(exc: Any, *, grant: str, remedy: str, secrets: Sequence[str] = ()) -> Exception:
    """The typed error for a token request the endpoint answered with an error.

    400/401 are the OAuth refusals (``invalid_client``, ``invalid_grant``, …); anything else is
    mapped like any API error. The message quotes only the answer's ``error`` and description,
    with ``secrets`` (the grant's own) blanked should the platform ever echo one.
    """
    if exc.status not in (400, 401):
        return map_api_exception(exc, method="POST", endpoint=TOKEN_ENDPOINT)
    said = oauth_error(exc.body, secrets)[1]
    return AuthenticationFailed(
        f"the OAuth token endpoint refused the {grant} grant (HTTP {exc.status}"
        f"{': ' + said if said else ''}). {remedy}",
        status=exc.status,
    )


def oauth_error(body: object, secrets: Sequence[str] = ()) -> tuple[str | None, str]:
    """``(error, "error, description")`` of an OAuth error answer, secrets blanked."""
    parsed = parse_error_body(body, "")
    error = parsed.raw.get("error")
    raw = parsed.raw
    detail = raw.get("error_description") or raw.get("description") or parsed.message
    said = ", ".join(str(x) for x in (error, detail) if x)
    for secret in secrets:
        if secret:
            said = said.replace(secret, "[redacted]")
    return (error if isinstance(error, str) else None), said


def read_token(raw: Any) -> Token:
    """A token answer (decoded JSON): ``access_token``, ``expires_in``, maybe ``refresh_token``."""
    token = raw.get("access_token") if isinstance(raw, dict) else None
    if not isinstance(token, str) or not token:
        raise AuthenticationFailed("the OAuth token endpoint answered without an access_token")
    expires_in = raw.get("expires_in")
    if not isinstance(expires_in, int | float) or isinstance(expires_in, bool) or expires_in <= 0:
        expires_in = DEFAULT_LIFETIME_SECONDS
    refresh = raw.get("refresh_token")
    return Token(
        token, float(expires_in), refresh if isinstance(refresh, str) and refresh else None
    )


def _json_or_none(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


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
        self._renewal_error: PlatformError | None = None

    @property
    def generation(self) -> int:
        """Increments with every new token; 0 before the first."""
        return self._generation

    @property
    def expires_at(self) -> datetime | None:
        """When the current access token stops working (None before the first one)."""
        return self._expires_at

    @property
    def renewal_error(self) -> PlatformError | None:
        """Why the last renewal failed (``LoginRequired``, …); ``None`` once one succeeds."""
        return self._renewal_error

    @property
    def renew_due(self) -> bool:
        """Whether the token is within the renewal margin of its expiry (renew before a call)."""
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
        except PlatformError as exc:
            self._renewal_error = exc
            raise
        self._renewal_error = None
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
