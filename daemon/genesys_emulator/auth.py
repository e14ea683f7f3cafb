"""Access tokens: issue, look up, expire, revoke; the caller a token acts as; client authentication."""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass

from .org import OAuthClient, OrgDefinition, User


@dataclass(frozen=True)
class Caller:
    """Who a token acts as: the OAuth client alone (client credentials) or a user through it."""

    client: OAuthClient
    user: User | None = None

    @property
    def owner(self) -> str:
        """The key channels are counted and owned by (per user and app on the platform)."""
        return self.client.id if self.user is None else f"{self.client.id}/{self.user.id}"

    @property
    def permissions(self) -> frozenset[str]:
        return self.client.permissions if self.user is None else self.user.permissions

    def can_see_queue(self, queue_id: str) -> bool:
        return self.user is not None or self.client.can_see_queue(queue_id)

    def may_subscribe(self, queue_id: str) -> bool:
        return self.user is not None or self.client.may_subscribe(queue_id)


@dataclass
class Token:
    value: str
    client: OAuthClient
    expires_at: float
    revoked: bool = False
    user: User | None = None

    @property
    def caller(self) -> Caller:
        return Caller(self.client, self.user)

    def valid(self, now: float) -> bool:
        return not self.revoked and now < self.expires_at


@dataclass(frozen=True)
class OAuthFailure(Exception):
    status: int
    error: str
    description: str

    def body(self) -> dict[str, str]:
        return {
            "error": self.error,
            "description": self.description,
            "error_description": self.description,
        }


class TokenStore:
    def __init__(self) -> None:
        self.tokens: dict[str, Token] = {}

    def issue(
        self, client: OAuthClient, now: float, lifetime_s: float, user: User | None = None
    ) -> Token:
        token = Token(secrets.token_urlsafe(32), client, now + lifetime_s, user=user)
        self.tokens[token.value] = token
        return token

    def get(self, value: str) -> Token | None:
        return self.tokens.get(value)

    def expire_all(self, now: float) -> None:
        for token in self.tokens.values():
            token.expires_at = min(token.expires_at, now)

    def revoke_all(self) -> list[Token]:
        revoked = [t for t in self.tokens.values() if not t.revoked]
        for token in revoked:
            token.revoked = True
        return revoked

    def clear(self) -> None:
        self.tokens.clear()


def authenticate_client(
    org: OrgDefinition, authorization: str | None, grant_type: str | None
) -> OAuthClient:
    """Basic-auth client credentials; raises OAuthFailure shaped like the login service's."""
    client_id, secret = _basic_credentials(authorization)
    client = known_client(org, client_id)
    if not secrets.compare_digest(client.secret, secret):
        raise OAuthFailure(401, "invalid_client", "authentication failed")
    check_grant(client, grant_type)
    return client


def known_client(org: OrgDefinition, client_id: str) -> OAuthClient:
    client = org.clients.get(client_id)
    if client is None:
        raise OAuthFailure(400, "invalid_client", "client not found")
    return client


def check_grant(client: OAuthClient, grant_type: str | None) -> None:
    """A client uses only its own grant; ``refresh_token`` belongs to the authorization code."""
    if grant_type not in ("client_credentials", "authorization_code", "refresh_token"):
        raise OAuthFailure(
            400, "unsupported_grant_type", f"grant type {grant_type!r} is not supported"
        )
    own = "authorization_code" if grant_type == "refresh_token" else grant_type
    if client.grant != own:
        raise OAuthFailure(
            400, "unauthorized_client", f"this client may not use the {grant_type} grant"
        )


def _basic_credentials(authorization: str | None) -> tuple[str, str]:
    if not authorization or not authorization.lower().startswith("basic "):
        raise OAuthFailure(400, "invalid_client", "client authentication required")
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise OAuthFailure(400, "invalid_client", "malformed client credentials") from exc
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthFailure(400, "invalid_client", "malformed client credentials")
    return client_id, secret
