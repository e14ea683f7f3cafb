"""The redactor on text that names a credential by its key: any header scheme, any letter case, a
form body percent-encoded once more, a header list's repr (issue 11, finding 12)."""

from __future__ import annotations

import base64

import pytest

from wrapupd.redaction import REDACTED, Redactor

SECRET = "cs-0123456789abcdef"
BASIC = base64.b64encode(f"client-1:{SECRET}".encode()).decode()


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: {SECRET}",
        f"AUTHORIZATION={SECRET}",
        f"authorization: SSWS {SECRET}",
        f"Proxy-Authorization: Digest {SECRET}",
        f"{{'Authorization': '{SECRET}'}}",
        f'headers=[("Authorization", "{SECRET}"), ("Accept", "application/json")]',
        f"Client-Secret: {SECRET}",
        f"X-CLIENT-SECRET: {SECRET}",
        f"body=grant_type%3Dclient_credentials%26client_secret%3D{SECRET}",
        f"CLIENT_SECRET%3d{SECRET}",
        f"Authorization: Basic {BASIC}",
        f"authorization=basic%20{BASIC}",
    ],
)
def test_a_credential_named_by_its_key_is_scrubbed_in_any_spelling(text: str) -> None:
    scrubbed = Redactor().scrub_text(text)
    assert SECRET not in scrubbed
    assert BASIC not in scrubbed
    assert REDACTED in scrubbed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Authorization: SSWS {SECRET}", f"Authorization: SSWS {REDACTED}"),
        (f"Authorization: {SECRET}\nnext line", f"Authorization: {REDACTED}\nnext line"),
        (
            f'[("Authorization", "{SECRET}"), ("Accept", "application/json")]',
            f'[("Authorization", "{REDACTED}"), ("Accept", "application/json")]',
        ),
        ("the authorization code grant", "the authorization code grant"),
        ("authorization failed: 401", "authorization failed: 401"),
        ("Authorization:\nnext line", "Authorization:\nnext line"),
    ],
)
def test_only_the_credential_after_the_key_is_replaced(text: str, expected: str) -> None:
    assert Redactor().scrub_text(text) == expected


@pytest.mark.parametrize(
    "key", ["CLIENT_SECRET", "Client-Secret", "client-secret", "Authorization", "AUTHORIZATION"]
)
def test_a_value_under_a_credential_key_is_scrubbed_in_any_case(key: str) -> None:
    assert Redactor().scrub({"headers": {key: "x"}}) == {"headers": {key: REDACTED}}
