"""The OAuth grants wrapupd can get access tokens with: what each sends, and how each is refused.

- :class:`ClientCredentialsGrant` (the default): the OAuth client's own id and secret; a token has
  no user, and some resources refuse it (``UserContextRequired``).
- :class:`AuthorizationCodeGrant`: a dedicated integration user signed in once with ``wrapupd
  login``; access tokens are renewed with the refresh token that login stored, and every rotated
  refresh token is saved (atomically) before the access token is used. A refresh token the
  platform refuses as ``invalid_grant`` (expired, revoked) raises ``LoginRequired``, and is not
  tried again until a new login stores another.
- :class:`IssuedToken`: a token already issued (``wrapupd login`` uses it to ask who signed in).

Each grant's ``fetch`` runs in a worker thread and is called by :class:`~.auth.TokenManager`, which
makes renewals single-flight. A SAML2-bearer grant would be one more class of this shape: the form
``{grant_type: urn:ietf:params:oauth:grant-type:saml2-bearer, orgName, assertion}`` with the
client's Basic authentication, through :meth:`TokenEndpoint.request` as client credentials are
(the SDK's ``get_saml2bearer_token``, like ``get_client_credentials_token``, drops ``expires_in``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from wrapupd.errors import AuthenticationFailed, LoginRequired
from wrapupd.genesys.auth import (
    DEFAULT_LIFETIME_SECONDS,
    TOKEN_ENDPOINT,
    Token,
    TokenEndpoint,
    oauth_error,
    read_token,
    refused,
)
from wrapupd.genesys.http import endpoint
from wrapupd.genesys.refresh_token import RefreshTokenStore
from wrapupd.genesys.sdk import ApiException

__all__ = [
    "LOGIN_REMEDY",
    "AuthorizationCodeGrant",
    "ClientCredentialsGrant",
    "IssuedToken",
]

LOGIN_REMEDY = "Run `wrapupd login` to sign the integration user in again."
_CLIENT_CREDENTIALS_REMEDY = (
    "Check the client id and secret, and that the OAuth client uses the Client Credentials grant "
    "type and belongs to this region's org."
)
_AUTHORIZATION_CODE_REMEDY = (
    "Check the client id and secret, and that the OAuth client uses the Code Authorization grant "
    "type and belongs to this region's org."
)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClientCredentialsGrant:
    """The OAuth client's own credentials (``grant_type=client_credentials``)."""

    client_id: str
    client_secret: str = field(repr=False)
    name: ClassVar[str] = "client_credentials"

    def fetch(self, token_endpoint: TokenEndpoint) -> Token:
        """One token request (the SDK's ``get_client_credentials_token`` drops ``expires_in``)."""
        form = {"grant_type": "client_credentials"}
        try:
            answer = token_endpoint.request(
                form, client_id=self.client_id, client_secret=self.client_secret
            )
        except ApiException as exc:
            raise refused(
                exc,
                grant="client credentials",
                remedy=_CLIENT_CREDENTIALS_REMEDY,
                secrets=(self.client_secret,),
            ) from None
        return read_token(answer)


@dataclass(frozen=True)
class IssuedToken:
    """A token already issued: served as it is, never renewed (a 401 then stays a 401)."""

    token: Token
    name: ClassVar[str] = "issued token"

    def fetch(self, token_endpoint: TokenEndpoint) -> Token:
        """The token given."""
        return self.token


class AuthorizationCodeGrant:
    """Access tokens from the integration user's refresh token, which ``store`` keeps.

    ``on_refresh_token`` is told every refresh token this grant starts using (from a worker
    thread, before anything could log it): the place to register it with log redaction.
    """

    name: ClassVar[str] = "authorization_code"

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        store: RefreshTokenStore,
        on_refresh_token: Callable[[str], None] | None = None,
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._store = store
        self._on_refresh_token = on_refresh_token
        self._lock = threading.Lock()
        self._current: str | None = None  # the refresh token in use
        self._seen_on_disk: str | None = None  # what the store held when last read or written
        self._rejected: str | None = None  # refused as invalid_grant: never sent again
        self._unsaved = False  # the current token is a rotation the store could not take yet
        self._lifetime = DEFAULT_LIFETIME_SECONDS  # of the last access token (per OAuth client)

    def __repr__(self) -> str:
        return f"AuthorizationCodeGrant(client_id={self._client_id!r}, store={self._store!r})"

    def fetch(self, token_endpoint: TokenEndpoint) -> Token:
        """Refresh; save a rotated refresh token before the new access token is used."""
        with self._lock:
            refresh_token = self._refresh_token()
            if refresh_token == self._rejected:
                raise LoginRequired(
                    f"the stored refresh token was refused before and {self._store!r} holds no "
                    f"newer one. {LOGIN_REMEDY}"
                )
            token = self._refresh(token_endpoint, refresh_token)
            self._lifetime = token.expires_in
            if token.refresh_token and token.refresh_token != refresh_token:
                self._keep(token.refresh_token)
            elif self._unsaved:
                self._keep(refresh_token)  # try again to save the rotation still in memory
            return token

    def _refresh_token(self) -> str:
        """The store's token if it changed (first use, a new login), else the one in use."""
        try:
            on_disk = self._store.load()
        except OSError as exc:
            raise AuthenticationFailed(
                f"cannot read the refresh token from {self._store!r}: {exc.strerror}"
            ) from None
        if on_disk is not None and on_disk != self._seen_on_disk:
            self._seen_on_disk = on_disk
            self._current = on_disk
            self._unsaved = False
            self._tell(on_disk)
        if self._current is None:
            raise LoginRequired(f"no refresh token is stored in {self._store!r}. {LOGIN_REMEDY}")
        return self._current

    def _refresh(self, token_endpoint: TokenEndpoint, refresh_token: str) -> Token:
        """The SDK's ``refresh_code_authorization_token``, on the token endpoint's own client."""
        api = token_endpoint.sdk_client()
        try:
            with endpoint(TOKEN_ENDPOINT):
                _, answer = api.refresh_code_authorization_token(
                    self._client_id, self._client_secret, refresh_token
                )
        except ApiException as exc:
            raise self._refusal(exc, refresh_token) from None
        except KeyError as exc:  # the SDK indexes the answer without checking
            return self._partial_answer(api, exc)
        except ValueError:
            raise AuthenticationFailed("the OAuth token endpoint answered with no JSON") from None
        finally:
            api.access_token = api.refresh_token = ""  # nothing lingers on the shared object
        return read_token(answer)

    def _partial_answer(self, api: Any, missing: KeyError) -> Token:
        """An answer without ``refresh_token`` (RFC 6749 §6 lets the platform keep the old one).

        The SDK stored the access token before it failed on the missing key, and lost
        ``expires_in``: the lifetime is the last token's, which the OAuth client fixes.
        """
        access_token = api.access_token
        if missing.args != ("refresh_token",) or not access_token:
            raise AuthenticationFailed("the OAuth token endpoint answered without an access_token")
        return Token(access_token, self._lifetime)

    def _refusal(self, exc: Any, refresh_token: str) -> Exception:
        secrets = (refresh_token, self._client_secret)
        error, said = oauth_error(exc.body, secrets)
        if exc.status in (400, 401) and error == "invalid_grant":
            self._rejected = refresh_token
            return LoginRequired(
                f"the OAuth token endpoint refused the refresh token (HTTP {exc.status}: {said}): "
                f"it expired or was revoked. {LOGIN_REMEDY}",
                status=exc.status,
            )
        return refused(
            exc,
            grant="authorization code (refresh token)",
            remedy=_AUTHORIZATION_CODE_REMEDY,
            secrets=secrets,
        )

    def _keep(self, refresh_token: str) -> None:
        """Use this refresh token from now on; save it, or keep it in memory and say so."""
        self._current = refresh_token
        self._tell(refresh_token)
        try:
            self._store.save(refresh_token)
        except OSError as exc:
            self._unsaved = True
            log.error(
                "the rotated refresh token could not be saved to %r (%s); it is kept in memory and "
                "saved at the next renewal. Restarting before then needs `wrapupd login`.",
                self._store,
                exc.strerror or type(exc).__name__,
            )
            return
        self._unsaved = False
        self._seen_on_disk = refresh_token

    def _tell(self, refresh_token: str) -> None:
        if self._on_refresh_token is None:
            return
        try:
            self._on_refresh_token(refresh_token)
        except Exception:
            log.exception("on_refresh_token callback failed")
