"""The ``[ledger]`` table: SQLite by default, a PostgreSQL URL with its password from the
environment, a file or a systemd credential, never shown; the options the daemon gets."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from wrapupd.errors import ConfigError
from wrapupd.settings import Settings, load_settings

PASSWORD = "db-pa55word-never-shown"
URL = "postgresql://wrapupd@db.example:5432/wrapupd"

MINIMAL = """
[genesys]
region = "mypurecloud.ie"
client_id = "client-1"
client_secret = "client-secret"

[[queues]]
queue = "Support"
default_code = "No code selected"
"""


def load(tmp_path: Path, extra: str = "", env: dict[str, str] | None = None) -> Settings:
    path = tmp_path / "wrapupd.toml"
    path.write_text(textwrap.dedent(MINIMAL + extra))
    return load_settings(path, env or {})


def problems(tmp_path: Path, extra: str = "", env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, extra, env)
    message = str(caught.value)
    assert PASSWORD not in message
    return [line.strip() for line in message.splitlines()[1:]]


def test_without_a_ledger_table_the_daemon_keeps_sqlite_in_its_state_dir(tmp_path: Path) -> None:
    options = load(tmp_path).daemon_options()
    assert options.ledger_url is None
    assert options.ledger_password is None


def test_the_url_and_password_come_from_the_environment(tmp_path: Path) -> None:
    env = {"WRAPUPD_LEDGER__URL": URL, "WRAPUPD_LEDGER__PASSWORD": PASSWORD}
    options = load(tmp_path, env=env).daemon_options()
    assert (options.ledger_url, options.ledger_password) == (URL, PASSWORD)
    assert PASSWORD not in repr(options)


def test_the_password_file_variable_of_the_kubernetes_manifest_is_read(tmp_path: Path) -> None:
    secret = tmp_path / "ledger_password"
    secret.write_text(PASSWORD + "\n")
    env = {"WRAPUPD_LEDGER__URL": URL, "WRAPUPD_LEDGER__PASSWORD_FILE": str(secret)}
    assert load(tmp_path, env=env).ledger_password == PASSWORD


def test_the_password_file_may_be_named_in_the_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD)
    settings = load(tmp_path, f'[ledger]\nurl = "{URL}"\npassword_file = "{secret}"\n')
    assert settings.ledger_password == PASSWORD


def test_the_systemd_credential_ledger_password_is_read(tmp_path: Path) -> None:
    credentials = tmp_path / "creds"
    credentials.mkdir()
    (credentials / "ledger_password").write_text(PASSWORD)
    settings = load(
        tmp_path, f'[ledger]\nurl = "{URL}"\n', env={"CREDENTIALS_DIRECTORY": str(credentials)}
    )
    assert settings.ledger_password == PASSWORD


def test_an_empty_password_file_is_reported_by_its_setting(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("")
    found = problems(tmp_path, env={"WRAPUPD_LEDGER__PASSWORD_FILE": str(secret)})
    assert any(p.startswith("ledger.password_file:") and "empty" in p for p in found)


def test_a_password_inside_the_url_is_refused_without_echoing_it(tmp_path: Path) -> None:
    url = f"postgresql://wrapupd:{PASSWORD}@db.example/wrapupd"
    found = problems(tmp_path, f'[ledger]\nurl = "{url}"\n')
    assert any(p.startswith("ledger.url:") and "password" in p for p in found)


def test_a_url_that_is_not_postgresql_is_refused(tmp_path: Path) -> None:
    found = problems(tmp_path, '[ledger]\nurl = "mysql://db/wrapupd"\n')
    assert any(p.startswith("ledger.url:") for p in found)


def test_lease_settings_reach_the_options(tmp_path: Path) -> None:
    options = load(tmp_path, "[ledger]\nlease_seconds = 12\nheartbeat_seconds = 4\n")
    replicas = options.daemon_options().replicas
    assert (replicas.lease_seconds, replicas.heartbeat_seconds) == (12.0, 4.0)


def test_a_heartbeat_slower_than_half_the_lease_is_refused(tmp_path: Path) -> None:
    found = problems(tmp_path, "[ledger]\nlease_seconds = 4\nheartbeat_seconds = 3\n")
    assert any(p.startswith("ledger.heartbeat_seconds:") for p in found)
