"""The authorization-code grant with PKCE: sign-in redirects, code exchange, refresh tokens.

``GET /oauth/authorize`` signs the org's designated login user in at once (as a browser session
would) and redirects to ``redirect_uri`` with ``code`` and ``state``. The code is single-use, bound
to its client, redirect URI and PKCE challenge. Refresh tokens rotate (each use returns a new one and
retires the old) unless ``keep_refresh_tokens``; they can expire and be revoked.
"""

from __future__ import annotations

import base64
import hashlib
import math
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from .auth import OAuthFailure
from .org import OAuthClient, OrgDefinition, User

CODE_LIFETIME_S = 300.0
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class AuthorizeRequest:
    """The query of ``GET /oauth/authorize``."""

    response_type: str
    client_id: str
    redirect_uri: str
    state: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str | None = None


@dataclass(frozen=True)
class AuthorizePageError(Exception):
    """A request that cannot be redirected (unknown client, untrusted redirect URI): a 400 page."""

    message: str


@dataclass
class AuthorizationCode:
    value: str
    client_id: str
    user: User
    redirect_uri: str
    challenge: str | None
    expires_at: float
    used: bool = False


@dataclass
class RefreshToken:
    value: str
    client_id: str
    user: User
    expires_at: float
    revoked: bool = False

    def valid(self, now: float) -> bool:
        return not self.revoked and now < self.expires_at


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of a verifier (base64url, no padding)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def redirect_allowed(client: OAuthClient, uri: str) -> bool:
    """Listed exactly, or (emulator leniency) any ``http://127.0.0.1:<port>/…`` loopback URI."""
    if uri in client.redirect_uris:
        return True
    parts = urlsplit(uri)
    return parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS and parts.port is not None


def with_query(uri: str, params: dict[str, str | None]) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{uri}{'&' if '?' in uri else '?'}{query}"


@dataclass
class CodeGrant:
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)

    # --- the browser step ------------------------------------------------------------------------

    def authorize(
        self, org: OrgDefinition, req: AuthorizeRequest, now: float, user: User | None
    ) -> str:
        """The redirect location for ``user`` signing in: ``code`` on success, else ``error``."""
        client = org.clients.get(req.client_id)
        if client is None or client.grant != "authorization_code":
            raise AuthorizePageError(f"Unknown authorization-code client {req.client_id!r}.")
        if not redirect_allowed(client, req.redirect_uri):
            raise AuthorizePageError("The redirect_uri is not registered for this client.")
        problem = _authorize_problem(req, user)
        if problem is not None or user is None:
            error, description = problem or ("access_denied", "no user signed in")
            params = {"error": error, "error_description": description, "state": req.state}
            return with_query(req.redirect_uri, params)
        code = AuthorizationCode(
            secrets.token_urlsafe(24),
            client.id,
            user,
            req.redirect_uri,
            req.code_challenge,
            now + CODE_LIFETIME_S,
        )
        self.codes[code.value] = code
        return with_query(req.redirect_uri, {"code": code.value, "state": req.state})

    # --- the token endpoint ----------------------------------------------------------------------

    def redeem(
        self,
        client: OAuthClient,
        code_value: str,
        redirect_uri: str,
        verifier: str | None,
        now: float,
        *,
        public: bool,
    ) -> User:
        """Spend a code once; the user it was issued for. Raises OAuthFailure(invalid_grant)."""
        code = self.codes.get(code_value)
        if code is None or code.used or now >= code.expires_at or code.client_id != client.id:
            raise _invalid_grant("The authorization code is invalid, expired or already used.")
        code.used = True
        if redirect_uri != code.redirect_uri:
            raise _invalid_grant("redirect_uri does not match the authorization request.")
        if code.challenge is None and public:
            raise OAuthFailure(401, "invalid_client", "client authentication required")
        if code.challenge is not None and (not verifier or s256(verifier) != code.challenge):
            raise _invalid_grant("The code_verifier does not match the code_challenge.")
        return code.user

    def issue_refresh(self, client: OAuthClient, user: User, now: float, life_s: float) -> str:
        expires = now + life_s if life_s > 0 else math.inf
        token = RefreshToken(secrets.token_urlsafe(32), client.id, user, expires)
        self.refresh_tokens[token.value] = token
        return token.value

    def use_refresh(
        self, client: OAuthClient, value: str, now: float, *, rotate: bool, life_s: float
    ) -> tuple[User, str]:
        """The user and the refresh token to hand back (a new one when rotating)."""
        token = self.refresh_tokens.get(value)
        if token is None or not token.valid(now) or token.client_id != client.id:
            raise _invalid_grant("The refresh token is invalid, expired or revoked.")
        if not rotate:
            return token.user, token.value
        token.revoked = True
        return token.user, self.issue_refresh(client, token.user, now, life_s)

    # --- faults ----------------------------------------------------------------------------------

    def expire_refresh_tokens(self, now: float) -> int:
        live = [t for t in self.refresh_tokens.values() if t.valid(now)]
        for token in live:
            token.expires_at = now
        return len(live)

    def revoke_refresh_tokens(self, now: float) -> int:
        live = [t for t in self.refresh_tokens.values() if t.valid(now)]
        for token in live:
            token.revoked = True
        return len(live)


def _authorize_problem(req: AuthorizeRequest, user: User | None) -> tuple[str, str] | None:
    if req.response_type != "code":
        return "unsupported_response_type", "response_type must be code"
    if req.code_challenge is not None and req.code_challenge_method != "S256":
        return "invalid_request", "code_challenge_method must be S256"
    if user is None:
        return "access_denied", "no user can sign in to this org"
    return None


def _invalid_grant(description: str) -> OAuthFailure:
    return OAuthFailure(400, "invalid_grant", description)
