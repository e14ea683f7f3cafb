"""A packager's defaults file (``WRAPUPD_DEFAULTS_FILE``, what the container image ships) sits below
the operator's settings file: the container's defaults never override the TOML; only explicit
``WRAPUPD_*`` variables do."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from wrapupd.errors import ConfigError
from wrapupd.settings import load_settings

SETTINGS = """
[genesys]
region = "mypurecloud.ie"
client_id = "client-1"
client_secret = "s3cret"

[http]
listen = "127.0.0.1:9555"

[[queues]]
queue = "Support"
default_code = "No code selected"
"""

CONTAINER_DEFAULTS = """
[http]
listen = "0.0.0.0:9464"

[daemon]
state_dir = "/var/lib/wrapupd"

[log]
format = "json"
"""


def files(tmp_path: Path, settings: str = SETTINGS) -> tuple[Path, dict[str, str]]:
    config = tmp_path / "wrapupd.toml"
    config.write_text(textwrap.dedent(settings))
    defaults = tmp_path / "container.toml"
    defaults.write_text(textwrap.dedent(CONTAINER_DEFAULTS))
    return config, {"WRAPUPD_DEFAULTS_FILE": str(defaults)}


def test_the_settings_file_wins_over_the_containers_defaults(tmp_path: Path) -> None:
    config, env = files(tmp_path)
    settings = load_settings(config, env)
    assert (settings.http.host, settings.http.port) == ("127.0.0.1", 9555)  # asked for loopback
    assert settings.daemon.state_dir == Path("/var/lib/wrapupd")  # the file is silent: default
    assert settings.log.format == "json"


def test_an_explicit_environment_variable_wins_over_both(tmp_path: Path) -> None:
    config, env = files(tmp_path)
    settings = load_settings(config, {**env, "WRAPUPD_HTTP__LISTEN": "127.0.0.1:9666"})
    assert settings.http.port == 9666


def test_a_missing_defaults_file_is_a_clear_error(tmp_path: Path) -> None:
    config, _ = files(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_settings(config, {"WRAPUPD_DEFAULTS_FILE": str(tmp_path / "absent.toml")})
    assert "absent.toml: not found" in str(caught.value)
