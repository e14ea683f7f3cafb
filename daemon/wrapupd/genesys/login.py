"""The pieces of ``wrapupd login``: PKCE, ``state``, the authorization URL, the redirect, the exchange.

The flow (authorization code with PKCE, RFC 6749 §4.1 and RFC 7636), for an *Authorization Code*
OAuth client that has a secret::

    pkce, state = new_pkce(), new_state()
    print(authorization_url(api_host=…, client_id=…, redirect_uri=…, state=state, pkce=pkce))
    code = code_from_redirect(query_of_the_request_to_redirect_uri, expected_state=state)
    token = exchange_code(api_host=…, client_id=…, client_secret=…, code=code,
                          redirect_uri=…, pkce=pkce)          # blocking: run it in a thread
    RefreshTokenFile(path).save(token.refresh_token)

The SDK is not used for the verifier or the exchange, for two reasons seen in its source (269):
``ApiClient.generate_pkce_code_verifier`` draws from ``random`` (not a cryptographic source, as
RFC 7636 §7.1 requires), and no SDK method sends a PKCE ``code_verifier`` together with the
client's authentication (``get_code_authorization_token`` sends no verifier;
``get_pkce_token`` sends no secret, and keeps no refresh token). The exchange therefore goes
through the SDK's HTTP client path (:class:`~.auth.TokenEndpoint`), as client credentials do.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode

from wrapupd.errors import AuthenticationFailed
from wrapupd.genesys.auth import Token, TokenEndpoint, login_host, read_token, refused
from wrapupd.genesys.http import PinnedHttpClient
from wrapupd.genesys.sdk import ApiException

__all__ = [
    "AUTHORIZE_ENDPOINT",
    "Pkce",
    "authorization_url",
    "code_from_redirect",
    "exchange_code",
    "new_pkce",
    "new_state",
    "pkce_challenge",
]

AUTHORIZE_ENDPOINT = "/oauth/authorize"
_EXCHANGE_REMEDY = (
    "Sign in again with `wrapupd login` (a code is valid once, for a short time); check the client "
    "id and secret, that the OAuth client uses the Code Authorization grant type, and that its "
    "authorized redirect URIs include this redirect_uri."
)


@dataclass(frozen=True)
class Pkce:
    """A PKCE pair: the verifier stays here, the challenge goes into the authorization URL."""

    verifier: str
    challenge: str
    method: str = "S256"

    def __repr__(self) -> str:
        return f"Pkce(method={self.method!r})"


def pkce_challenge(verifier: str) -> str:
    """``BASE64URL(SHA256(verifier))`` without padding (RFC 7636 §4.2, S256)."""
    if not 43 <= len(verifier) <= 128:
        raise ValueError("a PKCE code verifier has 43 to 128 characters")
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def new_pkce() -> Pkce:
    """A fresh verifier of 86 characters from the OS's cryptographic source, and its challenge."""
    verifier = secrets.token_urlsafe(64)
    return Pkce(verifier, pkce_challenge(verifier))


def new_state() -> str:
    """An unguessable ``state`` tying the redirect to this login (CSRF protection)."""
    return secrets.token_urlsafe(32)


def authorization_url(
    *, api_host: str, client_id: str, redirect_uri: str, state: str, pkce: Pkce
) -> str:
    """``https://login.<domain>/oauth/authorize?…`` (an emulator's own host serves it too)."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": pkce.challenge,
            "code_challenge_method": pkce.method,
        }
    )
    return f"{login_host(api_host)}{AUTHORIZE_ENDPOINT}?{query}"


def code_from_redirect(query: str | Mapping[str, str], *, expected_state: str) -> str:
    """The ``code`` of the redirect to ``redirect_uri``, once its ``state`` proves it is ours.

    Raises ``AuthenticationFailed`` for a refusal (``error=access_denied``…), a wrong or missing
    ``state`` (a stale tab or a forged request: nothing of it is trusted), or no code.
    """
    params = _single_values(query)
    state = params.get("state", "")
    if not hmac.compare_digest(state.encode(), expected_state.encode()):
        raise AuthenticationFailed(
            "the redirect's state does not match this login: ignored (an old browser tab, or a "
            "request that did not come from this sign-in)"
        )
    if "error" in params:
        said = ", ".join(p for p in (params["error"], params.get("error_description")) if p)
        raise AuthenticationFailed(f"the sign-in was refused: {said}")
    code = params.get("code", "")
    if not code:
        raise AuthenticationFailed("the redirect carried no authorization code")
    return code


def _single_values(query: str | Mapping[str, str]) -> dict[str, str]:
    if not isinstance(query, str):
        return dict(query)
    return {key: values[0] for key, values in parse_qs(query.lstrip("?")).items()}


def exchange_code(
    *,
    api_host: str,
    client_id: str,
    client_secret: str,
    code: str,
    redirect_uri: str,
    pkce: Pkce,
    connect_timeout: float = 5.0,
    read_timeout: float = 15.0,
) -> Token:
    """``grant_type=authorization_code`` with the verifier and the client's Basic authentication.

    Blocking (run it in a thread). The token carries the refresh token to store; an answer
    without one raises ``AuthenticationFailed`` (the OAuth client is not a Code Authorization one).
    """
    http = PinnedHttpClient(connect_timeout=connect_timeout, read_timeout=read_timeout)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": pkce.verifier,
    }
    try:
        answer = TokenEndpoint(http, api_host=api_host).request(
            form, client_id=client_id, client_secret=client_secret
        )
    except ApiException as exc:
        secrets_ = (client_secret, code, pkce.verifier)
        raise refused(
            exc, grant="authorization code", remedy=_EXCHANGE_REMEDY, secrets=secrets_
        ) from None
    finally:
        http.close()
    return _with_refresh_token(read_token(answer))


def _with_refresh_token(token: Token) -> Token:
    if token.refresh_token is None:
        raise AuthenticationFailed(
            "the OAuth token endpoint issued no refresh token: the OAuth client must use the "
            "Code Authorization grant type"
        )
    return token
