"""``wrapupd login``'s pieces and the refresh token file, against real files and a loopback stub."""

from __future__ import annotations

import base64
import os
import re
import stat
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from genesys_stub import Reply, StubServer

from wrapupd.errors import AuthenticationFailed
from wrapupd.genesys import sdk
from wrapupd.genesys.auth import Token
from wrapupd.genesys.login import (
    Pkce,
    authorization_url,
    code_from_redirect,
    exchange_code,
    new_pkce,
    new_state,
    pkce_challenge,
)
from wrapupd.genesys.refresh_token import RefreshTokenFile

SECRET = "code-client-s3cret"
REDIRECT = "http://127.0.0.1:8765/callback"

# --- PKCE and state ---------------------------------------------------------------------------


def test_pkce_challenge_matches_rfc7636_and_the_sdk() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636, appendix B
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    fresh = new_pkce()
    assert sdk.ApiClient().compute_pkce_code_challenge(fresh.verifier) == fresh.challenge
    with pytest.raises(ValueError):
        pkce_challenge("too-short")


def test_new_pkce_and_state_are_fresh_and_well_formed() -> None:
    pairs = {new_pkce().verifier for _ in range(50)}
    assert len(pairs) == 50
    for verifier in pairs:
        assert 43 <= len(verifier) <= 128 and re.fullmatch(r"[A-Za-z0-9_\-.~]+", verifier)
    assert len({new_state() for _ in range(50)}) == 50
    assert "verifier" not in repr(new_pkce()) and new_pkce().verifier not in repr(new_pkce())


@pytest.mark.parametrize(
    ("api_host", "base"),
    [
        ("https://api.mypurecloud.ie", "https://login.mypurecloud.ie/oauth/authorize"),
        ("https://api.usw2.pure.cloud/", "https://login.usw2.pure.cloud/oauth/authorize"),
        ("http://127.0.0.1:8123", "http://127.0.0.1:8123/oauth/authorize"),  # the emulator
    ],
)
def test_authorization_url(api_host: str, base: str) -> None:
    pkce = Pkce("v" * 43, "challenge")
    url = authorization_url(
        api_host=api_host, client_id="cid", redirect_uri=REDIRECT, state="st", pkce=pkce
    )
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == base
    assert {k: v[0] for k, v in parse_qs(parts.query).items()} == {
        "response_type": "code",
        "client_id": "cid",
        "redirect_uri": REDIRECT,
        "state": "st",
        "code_challenge": "challenge",
        "code_challenge_method": "S256",
    }


def test_code_from_redirect() -> None:
    assert code_from_redirect("?code=abc&state=st", expected_state="st") == "abc"
    assert code_from_redirect({"code": "abc", "state": "st"}, expected_state="st") == "abc"
    refusals = {
        "code=abc&state=other": "state does not match",
        "code=abc": "state does not match",
        "error=access_denied&error_description=User+said+no&state=st": "access_denied, User said no",
        "state=st": "no authorization code",
    }
    for query, said in refusals.items():
        with pytest.raises(AuthenticationFailed, match=said):
            code_from_redirect(query, expected_state="st")


# --- the code exchange ------------------------------------------------------------------------


def exchange(stub: StubServer, pkce: Pkce) -> Token:
    return exchange_code(
        api_host=stub.url,
        client_id="code-client",
        client_secret=SECRET,
        code="the-code",
        redirect_uri=REDIRECT,
        pkce=pkce,
    )


def test_exchange_sends_code_verifier_and_client_authentication(stub: StubServer) -> None:
    answer = {
        "access_token": "at",
        "refresh_token": "rt",
        "expires_in": 900,
        "token_type": "bearer",
    }
    stub.script("POST", "/oauth/token", Reply(200, answer))
    pkce = new_pkce()
    token = exchange(stub, pkce)
    (call,) = stub.calls_to("POST", "/oauth/token")
    assert {k: v[0] for k, v in parse_qs(call.body.decode()).items()} == {
        "grant_type": "authorization_code",
        "code": "the-code",
        "redirect_uri": REDIRECT,
        "code_verifier": pkce.verifier,
    }
    basic = base64.b64encode(f"code-client:{SECRET}".encode()).decode()
    assert call.headers["authorization"] == f"Basic {basic}"
    assert (token.access_token, token.refresh_token, token.expires_in) == ("at", "rt", 900.0)


def test_exchange_without_a_refresh_token_is_refused(stub: StubServer) -> None:
    stub.script("POST", "/oauth/token", Reply(200, {"access_token": "at", "expires_in": 60}))
    with pytest.raises(AuthenticationFailed, match="Code Authorization"):
        exchange(stub, new_pkce())


def test_a_refused_exchange_names_the_remedy_and_no_secret(stub: StubServer) -> None:
    pkce = new_pkce()
    echo = f"bad code the-code for verifier {pkce.verifier} and {SECRET}"
    stub.script("POST", "/oauth/token", Reply(400, {"error": "invalid_grant", "description": echo}))
    with pytest.raises(AuthenticationFailed) as info:
        exchange(stub, pkce)
    text = str(info.value)
    assert "invalid_grant" in text and "wrapupd login" in text and "redirect" in text
    assert "the-code" not in text and pkce.verifier not in text and SECRET not in text


# --- the refresh token file -------------------------------------------------------------------


def test_save_is_atomic_private_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = RefreshTokenFile(tmp_path / "state" / "refresh_token")
    assert store.load() is None
    store.save("rt-1")
    store.save("rt-2")
    assert store.load() == "rt-2"
    assert store.path.read_text() == "rt-2\n"
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    assert os.listdir(store.path.parent) == ["refresh_token"]


def test_a_failed_save_keeps_the_previous_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RefreshTokenFile(tmp_path / "refresh_token")
    store.save("rt-1")

    def full_disk(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError):
        store.save("rt-2")
    assert store.load() == "rt-1"
    assert os.listdir(tmp_path) == ["refresh_token"]


def test_the_seed_stands_in_until_the_file_exists(tmp_path: Path) -> None:
    seed = tmp_path / "credentials" / "refresh_token"
    seed.parent.mkdir()
    seed.write_text("rt-seed\n")
    store = RefreshTokenFile(tmp_path / "state" / "refresh_token", seed=seed)
    assert store.load() == "rt-seed"
    store.save("rt-rotated")
    assert store.load() == "rt-rotated" and seed.read_text() == "rt-seed\n"


@pytest.mark.parametrize("bad", ["", " rt", "rt\n"])
def test_save_refuses_what_would_not_read_back(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError):
        RefreshTokenFile(tmp_path / "refresh_token").save(bad)
