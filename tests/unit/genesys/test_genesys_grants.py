"""Grants against a scripted token endpoint on 127.0.0.1: what each sends, keeps and raises."""

from __future__ import annotations

import asyncio
import base64
import logging
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from genesys_stub import Call, Reply, StubServer

from wrapupd.clock import ManualClock
from wrapupd.errors import AuthenticationFailed, LoginRequired, TransportError
from wrapupd.genesys import GenesysClient, Timeouts
from wrapupd.genesys.auth import Token
from wrapupd.genesys.grants import AuthorizationCodeGrant, ClientCredentialsGrant, IssuedToken
from wrapupd.genesys.refresh_token import RefreshTokenFile

SECRET = "code-client-s3cret"
QUEUE_PATH = "/api/v2/routing/queues/q1"
QUEUE = Reply(200, {"id": "q1", "name": "Support"})


class RotatingTokens:
    """A token endpoint that rotates the refresh token on every use and rejects used ones."""

    def __init__(self, first: str = "rt-1", *, rotate: bool = True, lifetime: int = 600) -> None:
        self.valid = {first}
        self.rotate = rotate
        self.lifetime = lifetime
        self.issued = 0

    def __call__(self, call: Call) -> Reply:
        form = {k: v[0] for k, v in parse_qs(call.body.decode()).items()}
        if form.get("grant_type") != "refresh_token":
            return Reply(400, {"error": "unsupported_grant_type"})
        if form.get("refresh_token") not in self.valid:
            return Reply(400, {"error": "invalid_grant", "description": "token expired"})
        self.issued += 1
        body: dict[str, Any] = {"access_token": f"at-{self.issued}", "expires_in": self.lifetime}
        if self.rotate:
            self.valid = {f"rt-{self.issued + 1}"}
            body["refresh_token"] = f"rt-{self.issued + 1}"
        return Reply(200, body)


def token_calls(stub: StubServer) -> list[dict[str, str]]:
    return [
        {k: v[0] for k, v in parse_qs(c.body.decode()).items()}
        for c in stub.calls_to("POST", "/oauth/token")
    ]


def code_grant(store: RefreshTokenFile, **kw: Any) -> AuthorizationCodeGrant:
    return AuthorizationCodeGrant(client_id="code-client", client_secret=SECRET, store=store, **kw)


def client_for(stub: StubServer, grant: Any, **kw: Any) -> GenesysClient:
    kw.setdefault("timeouts", Timeouts(connect=1.0, read=1.0))
    return GenesysClient(api_host=stub.url, grant=grant, **kw)


@pytest.fixture
def store(tmp_path: Path) -> RefreshTokenFile:
    token_file = RefreshTokenFile(tmp_path / "state" / "refresh_token")
    token_file.save("rt-1")
    return token_file


async def test_refresh_sends_the_sdk_request_and_saves_the_rotation_before_use(
    stub: StubServer, store: RefreshTokenFile
) -> None:
    on_disk_when_used: list[str | None] = []

    def queue(call: Call) -> Reply:
        on_disk_when_used.append(store.load())
        return QUEUE

    stub.script("POST", "/oauth/token", RotatingTokens())
    stub.script("GET", QUEUE_PATH, queue)
    c = client_for(stub, code_grant(store))
    await c.start()
    await c.get_queue("q1")
    (call,) = stub.calls_to("POST", "/oauth/token")
    basic = base64.b64encode(f"code-client:{SECRET}".encode()).decode()
    assert call.headers["authorization"] == f"Basic {basic}"
    assert token_calls(stub) == [{"grant_type": "refresh_token", "refresh_token": "rt-1"}]
    assert stub.calls_to("GET", QUEUE_PATH)[0].headers["authorization"] == "Bearer at-1"
    assert on_disk_when_used == ["rt-2"]
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    await c.close()


async def test_renewal_before_expiry_uses_the_rotated_token(
    stub: StubServer, store: RefreshTokenFile
) -> None:
    clock = ManualClock()
    stub.script("POST", "/oauth/token", RotatingTokens(lifetime=600))
    stub.script("GET", QUEUE_PATH, QUEUE)
    c = client_for(stub, code_grant(store), clock=clock, renew_margin_seconds=120)
    await c.start()
    await clock.advance(481)
    await c.get_queue("q1")
    assert [f["refresh_token"] for f in token_calls(stub)] == ["rt-1", "rt-2"]
    assert stub.calls_to("GET", QUEUE_PATH)[0].headers["authorization"] == "Bearer at-2"
    assert store.load() == "rt-3"
    await c.close()


async def test_concurrent_401s_share_one_refresh(stub: StubServer, store: RefreshTokenFile) -> None:
    def queue(call: Call) -> Reply:
        if call.headers["authorization"] == "Bearer at-1":
            return Reply(401, {"message": "expired", "code": "bad.credentials"})
        return QUEUE

    stub.script("POST", "/oauth/token", RotatingTokens())
    stub.script("GET", QUEUE_PATH, queue)
    c = client_for(stub, code_grant(store))
    await c.start()
    await asyncio.gather(*(c.get_queue("q1") for _ in range(6)))
    assert [f["refresh_token"] for f in token_calls(stub)] == ["rt-1", "rt-2"]
    assert store.load() == "rt-3"
    await c.close()


async def test_a_refused_refresh_token_is_login_required_until_a_new_login(
    stub: StubServer, store: RefreshTokenFile
) -> None:
    endpoint = RotatingTokens(first="rt-from-login")
    stub.script("POST", "/oauth/token", endpoint)
    stub.script("GET", QUEUE_PATH, QUEUE)
    c = client_for(stub, code_grant(store))
    with pytest.raises(LoginRequired) as info:
        await c.start()
    text = str(info.value)
    assert "wrapupd login" in text and "invalid_grant" in text and info.value.status == 400
    assert "rt-1" not in text and SECRET not in text
    assert isinstance(c.renewal_error, LoginRequired)
    with pytest.raises(LoginRequired):
        await c.renew_token()
    assert len(stub.calls_to("POST", "/oauth/token")) == 1  # the refused token is not resent
    store.save("rt-from-login")  # what `wrapupd login` does
    await c.renew_token()
    assert c.renewal_error is None
    assert (await c.get_queue("q1")).name == "Support"
    assert store.load() == "rt-2"
    await c.close()


async def test_no_stored_refresh_token_is_login_required_without_a_request(
    stub: StubServer, tmp_path: Path
) -> None:
    c = client_for(stub, code_grant(RefreshTokenFile(tmp_path / "none")))
    with pytest.raises(LoginRequired, match="wrapupd login"):
        await c.start()
    assert stub.calls_to("POST", "/oauth/token") == []
    await c.close()


async def test_other_refusals_are_authentication_failed(
    stub: StubServer, store: RefreshTokenFile
) -> None:
    stub.script("POST", "/oauth/token", Reply(401, {"error": "invalid_client"}))
    c = client_for(stub, code_grant(store))
    with pytest.raises(AuthenticationFailed) as info:
        await c.start()
    assert not isinstance(info.value, LoginRequired)
    assert "invalid_client" in str(info.value) and "Code Authorization" in str(info.value)
    await c.close()


class FlakyStore(RefreshTokenFile):
    """A real token file whose next ``failures`` saves fail as a full disk would."""

    failures = 0

    def save(self, token: str) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError(28, "No space left on device")
        super().save(token)


async def test_a_rotation_that_cannot_be_saved_stays_in_memory_and_is_saved_later(
    stub: StubServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FlakyStore(tmp_path / "refresh_token")
    store.save("rt-1")
    store.failures = 1
    seen: list[str] = []
    grant = code_grant(store, on_refresh_token=seen.append)
    stub.script("POST", "/oauth/token", RotatingTokens())
    c = client_for(stub, grant)
    with caplog.at_level(logging.ERROR):
        await c.start()
    assert store.load() == "rt-1"
    assert "No space left" in caplog.text and "wrapupd login" in caplog.text
    assert "rt-2" not in caplog.text and SECRET not in caplog.text
    await c.renew_token()
    assert [f["refresh_token"] for f in token_calls(stub)] == ["rt-1", "rt-2"]
    assert store.load() == "rt-3"
    assert seen == ["rt-1", "rt-2", "rt-3"]
    await c.close()


async def test_an_answer_without_a_refresh_token_keeps_the_current_one(
    stub: StubServer, store: RefreshTokenFile
) -> None:
    clock = ManualClock()
    endpoint = RotatingTokens(lifetime=900)
    stub.script("POST", "/oauth/token", endpoint)
    c = client_for(stub, code_grant(store), clock=clock)
    await c.start()
    endpoint.rotate = False  # RFC 6749 §6: the platform may keep the refresh token it has
    await c.renew_token()
    await c.renew_token()
    assert [f["refresh_token"] for f in token_calls(stub)] == ["rt-1", "rt-2", "rt-2"]
    assert store.load() == "rt-2" and c.token_generation == 3
    # The SDK loses expires_in on such an answer: the last known lifetime (per OAuth client) holds.
    assert c.token_expires_at == clock.now() + timedelta(seconds=900)
    await c.close()


async def test_early_renewal_failure_keeps_the_valid_token(
    stub: StubServer, store: RefreshTokenFile
) -> None:
    clock = ManualClock()
    endpoint = RotatingTokens(lifetime=600)
    stub.script("POST", "/oauth/token", endpoint)
    stub.script("GET", QUEUE_PATH, QUEUE)
    c = client_for(stub, code_grant(store), clock=clock, renew_margin_seconds=120)
    await c.start()
    stub.script(
        "POST", "/oauth/token", Reply(503, {"message": "down", "code": "service.unavailable"})
    )
    await clock.advance(500)
    await c.get_queue("q1")  # served with at-1 while it lives
    assert c.renewal_error is not None and not isinstance(c.renewal_error, LoginRequired)
    assert store.load() == "rt-2"
    await c.close()


def test_reprs_never_show_secrets(store: RefreshTokenFile) -> None:
    texts = [
        repr(code_grant(store)),
        repr(ClientCredentialsGrant("cid", SECRET)),
        repr(Token("access-xyz", 60.0, "refresh-xyz")),
        repr(IssuedToken(Token("access-xyz", 60.0))),
        repr(store),
    ]
    for text in texts:
        assert SECRET not in text and "xyz" not in text and "rt-1" not in text


def test_a_client_needs_a_grant_or_credentials() -> None:
    with pytest.raises(ValueError, match="grant"):
        GenesysClient(api_host="http://127.0.0.1:9", client_id="only-an-id")


async def test_current_user_with_an_issued_token(stub: StubServer) -> None:
    stub.script("GET", "/api/v2/users/me", Reply(200, {"id": "u-1", "name": "Wrapupd Integration"}))
    c = client_for(stub, IssuedToken(Token("at-login", 600.0, "rt-x")))
    await c.start()
    user = await c.current_user()
    assert (user.id, user.name) == ("u-1", "Wrapupd Integration")
    assert stub.calls_to("GET", "/api/v2/users/me")[0].headers["authorization"] == "Bearer at-login"
    assert stub.calls_to("POST", "/oauth/token") == []
    await c.close()


async def test_transport_failure_of_the_token_endpoint(
    stub: StubServer, store: RefreshTokenFile
) -> None:
    stub.script("POST", "/oauth/token", Reply(200, {}, delay=1.0))
    c = client_for(stub, code_grant(store), timeouts=Timeouts(connect=1.0, read=0.1))
    with pytest.raises(TransportError):
        await c.start()
    assert store.load() == "rt-1"
    await c.close()
