"""Settings of the OAuth grant: client credentials by default, or the authorization-code grant of a
signed-in integration user, with its redirect URI and refresh-token file, as plain options."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from wrapupd.errors import ConfigError
from wrapupd.options import DEFAULT_REDIRECT_URI, GrantOptions
from wrapupd.settings import load_settings

SECRET = "s3cr3t-value-never-shown"

BASE = f"""
[genesys]
region = "mypurecloud.ie"
client_id = "client-1"
client_secret = "{SECRET}"
{{extra}}

[daemon]
state_dir = "{{state}}"

[[queues]]
queue = "Support"
default_code = "No code selected"
"""


def settings_file(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "wrapupd.toml"
    text = BASE.replace("{extra}", textwrap.dedent(extra)).replace("{state}", str(tmp_path))
    path.write_text(text)
    return path


def problems(tmp_path: Path, extra: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(settings_file(tmp_path, extra), env or {})
    assert SECRET not in str(caught.value)
    return [line.strip() for line in str(caught.value).splitlines()[1:]]


def test_the_grant_defaults_to_client_credentials(tmp_path: Path) -> None:
    options = load_settings(settings_file(tmp_path), {}).daemon_options()
    assert options.grant.kind == GrantOptions().kind == "client_credentials"
    assert options.grant.redirect_uri == DEFAULT_REDIRECT_URI == "http://127.0.0.1:8765/callback"


def test_the_authorization_code_grant_keeps_its_refresh_token_in_the_state_directory(
    tmp_path: Path,
) -> None:
    options = load_settings(
        settings_file(tmp_path, 'grant = "authorization_code"'), {}
    ).daemon_options()
    assert options.grant.kind == "authorization_code"
    assert options.grant.refresh_token_file == tmp_path / "refresh_token"
    assert options.grant.refresh_token_seed is None


def test_an_explicit_refresh_token_file_and_redirect_uri_are_used(tmp_path: Path) -> None:
    extra = f"""
    grant = "authorization_code"
    redirect_uri = "http://localhost:9000/wrapupd/done"
    refresh_token_file = "{tmp_path / "elsewhere" / "token"}"
    """
    grant = load_settings(settings_file(tmp_path, extra), {}).daemon_options().grant
    assert grant.redirect_uri == "http://localhost:9000/wrapupd/done"
    assert grant.refresh_token_file == tmp_path / "elsewhere" / "token"


def test_the_systemd_credential_seeds_the_refresh_token(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "refresh_token").write_text("seed-token\n")
    env = {"CREDENTIALS_DIRECTORY": str(credentials)}
    extra = 'grant = "authorization_code"'
    grant = load_settings(settings_file(tmp_path, extra), env).daemon_options().grant
    assert grant.refresh_token_seed == credentials / "refresh_token"
    assert grant.refresh_token_file == tmp_path / "refresh_token"  # the seed is never written


def test_the_grant_can_be_chosen_from_the_environment(tmp_path: Path) -> None:
    env = {"WRAPUPD_GENESYS__GRANT": "authorization_code"}
    grant = load_settings(settings_file(tmp_path), env).daemon_options().grant
    assert grant.kind == "authorization_code"


def test_an_unknown_grant_is_refused_with_the_choices(tmp_path: Path) -> None:
    (line,) = problems(tmp_path, 'grant = "implicit"')
    assert line.startswith("genesys.grant: got 'implicit'")
    assert "client_credentials" in line and "authorization_code" in line


@pytest.mark.parametrize(
    "uri",
    [
        "https://127.0.0.1:8765/callback",  # the listener speaks plain HTTP on loopback
        "http://example.com:8765/callback",  # not loopback: the code would leave the machine
        "http://127.0.0.1/callback",  # no port to listen on
        "127.0.0.1:8765/callback",
    ],
)
def test_a_redirect_uri_the_login_cannot_listen_on_is_refused(tmp_path: Path, uri: str) -> None:
    (line,) = problems(tmp_path, f'redirect_uri = "{uri}"')
    assert line.startswith("genesys.redirect_uri: ")
    assert "http://127.0.0.1:<port>/" in line


def test_the_grant_options_never_show_the_secret(tmp_path: Path) -> None:
    options = load_settings(settings_file(tmp_path, 'grant = "authorization_code"'), {})
    assert SECRET not in repr(options.daemon_options())
