"""Access tokens: issue, look up, expire, revoke; and the caller a token acts as."""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass

from .org import OAuthClient, OrgDefinition


@dataclass(frozen=True)
class Caller:
    """Who a token acts as: the OAuth client alone (client credentials)."""

    client: OAuthClient

    @property
    def owner(self) -> str:
        """The key channels are counted and owned by (per user and app on the platform)."""
        return self.client.id

    @property
    def permissions(self) -> frozenset[str]:
        return self.client.permissions

    def can_see_queue(self, queue_id: str) -> bool:
        return self.client.can_see_queue(queue_id)

    def may_subscribe(self, queue_id: str) -> bool:
        return self.client.may_subscribe(queue_id)


@dataclass
class Token:
    value: str
    client: OAuthClient
    issued_at: float
    expires_at: float
    revoked: bool = False

    @property
    def caller(self) -> Caller:
        return Caller(self.client)

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

    def issue(self, client: OAuthClient, now: float, lifetime_s: float) -> Token:
        token = Token(secrets.token_urlsafe(32), client, now, now + lifetime_s)
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
    client = org.clients.get(client_id)
    if client is None:
        raise OAuthFailure(400, "invalid_client", "client not found")
    if not secrets.compare_digest(client.secret, secret):
        raise OAuthFailure(401, "invalid_client", "authentication failed")
    if grant_type != "client_credentials":
        raise OAuthFailure(
            400, "unsupported_grant_type", f"grant type {grant_type!r} is not supported"
        )
    return client


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
