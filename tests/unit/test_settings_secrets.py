"""Secrets in the settings: never sent in clear, never echoed by a config error, never in a repr."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from wrapupd.errors import ConfigError
from wrapupd.events import QueuePolicy
from wrapupd.options import local_options
from wrapupd.settings import Settings, load_settings

SECRET = "s3cr3t-value-never-shown"
DB_PASSWORD = "pg-pa55word-never-shown"
DAEMON_DIR = Path(__file__).resolve().parents[2] / "daemon"

MINIMAL = f"""
[genesys]
api_host = "http://127.0.0.1:8080"
client_id = "client-1"
client_secret = "{SECRET}"

[[queues]]
queue = "Support"
default_code = "No code selected"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wrapupd.toml"
    path.write_text(textwrap.dedent(text))
    return path


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Settings:
    return load_settings(write(tmp_path, text), env or {})


def config_error(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, env)
    return str(caught.value)


def with_host(host: str) -> str:
    return MINIMAL.replace('"http://127.0.0.1:8080"', f'"{host}"')


# --- http:// only on loopback -----------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "http://api.mypurecloud.ie",
        "http://10.0.0.5:8080",
        "http://127.0.0.1.example.com:8080",
        "http://localhost.example.com",
        "http://[2001:db8::1]:8080",
        "HTTP://proxy.internal:3128",
    ],
)
def test_an_http_api_host_off_loopback_is_refused_naming_the_setting(
    tmp_path: Path, host: str
) -> None:
    message = config_error(tmp_path, with_host(host))
    (line,) = message.splitlines()[1:]
    assert line.strip().startswith("genesys.api_host:")
    assert "https://" in line
    assert "loopback" in line
    assert "in clear" in line


def test_an_http_api_host_from_the_environment_is_refused_too(tmp_path: Path) -> None:
    message = config_error(
        tmp_path, MINIMAL, {"WRAPUPD_GENESYS__API_HOST": "http://api.example.com:80"}
    )
    assert "genesys.api_host:" in message
    assert "loopback" in message


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.4.5.6:9000/", "http://127.4.5.6:9000"),
        ("http://localhost:9000", "http://localhost:9000"),
        ("http://LOCALHOST:9000", "http://LOCALHOST:9000"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("https://api.example.com", "https://api.example.com"),
        ("https://10.0.0.5:8443", "https://10.0.0.5:8443"),
    ],
)
def test_https_anywhere_and_http_on_loopback_are_accepted(
    tmp_path: Path, host: str, expected: str
) -> None:
    assert load(tmp_path, with_host(host)).api_host == expected


# --- a config error never echoes a secret -----------------------------------------------------


BROKEN = {
    "the secret given as the [genesys] table": f"""
        genesys = "{SECRET}"

        [[queues]]
        queue = "Support"
        default_code = "No code selected"
        """,
    "the secret given as a number": MINIMAL.replace(f'"{SECRET}"', "123456789012345"),
    "the secret pasted into the neighbouring setting": MINIMAL.replace(
        'client_id = "client-1"', f'client_id = "client-1"\nrate_limit_per_minute = "{SECRET}"'
    ),
    "the secret inside another value": MINIMAL.replace(
        'client_id = "client-1"',
        f'client_id = "client-1"\nread_timeout_seconds = "x{SECRET}x"',
    ),
    "the secret as a queue name, next to a wrong type": MINIMAL.replace(
        'queue = "Support"', f'queue = "{SECRET}"\ngrace_seconds = "soon"'
    ),
    "the [ledger] table as a string": f'ledger = "{DB_PASSWORD}"\n' + MINIMAL,
    "the database password in another ledger setting": MINIMAL
    + f'\n[ledger]\npassword = "{DB_PASSWORD}"\nlease_seconds = "{DB_PASSWORD}"\n',
}
# The setting each broken file must be reported under.
NAMED = {
    "the secret given as the [genesys] table": "genesys",
    "the secret given as a number": "genesys.client_secret",
    "the secret pasted into the neighbouring setting": "genesys.rate_limit_per_minute",
    "the secret inside another value": "genesys.read_timeout_seconds",
    "the secret as a queue name, next to a wrong type": "queues[0].grace_seconds",
    "the [ledger] table as a string": "ledger",
    "the database password in another ledger setting": "ledger.lease_seconds",
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_config_error_names_the_setting_but_never_echoes_a_secret(
    tmp_path: Path, name: str
) -> None:
    message = config_error(tmp_path, BROKEN[name])
    assert NAMED[name] + ":" in message
    for secret in (SECRET, DB_PASSWORD, "123456789012345"):
        assert secret.lower() not in message.lower()


def test_a_secret_from_the_secret_file_is_not_echoed_elsewhere(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    text = MINIMAL.replace(f'client_secret = "{SECRET}"', "").replace(
        "[[queues]]", f'rate_reserve_per_minute = "{SECRET}"\n\n[[queues]]'
    )
    message = config_error(
        tmp_path, text, {"WRAPUPD_GENESYS__CLIENT_SECRET_FILE": str(secret_file)}
    )
    assert "genesys.rate_reserve_per_minute:" in message
    assert SECRET not in message


def test_a_secret_from_the_environment_is_not_echoed_elsewhere(tmp_path: Path) -> None:
    text = MINIMAL.replace(f'client_secret = "{SECRET}"', f'read_timeout_seconds = "{SECRET}"')
    message = config_error(tmp_path, text, {"WRAPUPD_GENESYS__CLIENT_SECRET": SECRET.upper()})
    assert "genesys.read_timeout_seconds:" in message
    assert SECRET not in message.lower()


def test_an_ordinary_bad_value_is_still_quoted(tmp_path: Path) -> None:
    # Only wrapupd's own variables are credentials to it: another program's token is not.
    message = config_error(
        tmp_path,
        MINIMAL.replace("[[queues]]", 'rate_limit_per_minute = "lots"\n\n[[queues]]'),
        {"SOME_TOOL_TOKEN": "lots"},
    )
    assert "genesys.rate_limit_per_minute: got 'lots'; must be a valid integer" in message


@pytest.mark.parametrize("command", ["check", "run"])
def test_the_operator_sees_exit_78_naming_the_setting_and_no_secret(
    tmp_path: Path, command: str
) -> None:
    path = write(tmp_path, BROKEN["the secret given as the [genesys] table"])
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("WRAPUPD_")}
    env["PYTHONPATH"] = os.pathsep.join([str(DAEMON_DIR), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-m", "wrapupd", command, "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 78
    assert "genesys:" in done.stderr
    assert SECRET not in done.stdout + done.stderr


# --- reprs ------------------------------------------------------------------------------------


def test_loaded_settings_never_show_a_secret_in_a_repr(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + f'\n[ledger]\nurl = "postgresql://wrapupd@db:5432/w"\npassword = "{DB_PASSWORD}"\n'
    )
    settings = load(tmp_path, text)
    assert settings.genesys.client_secret.get_secret_value() == SECRET
    assert settings.ledger_password == DB_PASSWORD
    shown = [repr(settings), str(settings), repr(settings.genesys), str(settings.ledger)]
    options = settings.daemon_options()
    shown += [repr(options), str(options), f"{options}", repr([options])]
    assert options.client_secret == SECRET
    assert options.ledger_password == DB_PASSWORD
    for text in shown:
        assert SECRET not in text
        assert DB_PASSWORD not in text
    assert "client-1" in repr(options)  # the repr still says which client


def test_local_options_never_show_the_secret_in_a_repr(tmp_path: Path) -> None:
    options = local_options(
        api_host="http://127.0.0.1:1",
        client_id="client-1",
        client_secret=SECRET,
        policies=[QueuePolicy("Support", "General", 30.0, 5.0, None)],
        state_dir=tmp_path,
        ledger_password=DB_PASSWORD,
    )
    for text in (repr(options), str(options)):
        assert SECRET not in text
        assert DB_PASSWORD not in text


@pytest.mark.parametrize(
    "line",
    [
        f"client_secret = {SECRET}",
        f'client_secret = "{SECRET}',
        f'client_secret = "{SECRET[:6]}\\q{SECRET[6:]}"',
    ],
)
def test_a_secret_line_that_is_not_toml_is_not_quoted(tmp_path: Path, line: str) -> None:
    message = config_error(tmp_path, MINIMAL.replace(f'client_secret = "{SECRET}"', line))
    assert "invalid TOML" in message
    assert SECRET[6:] not in message


def test_a_secret_in_an_unparseable_variable_is_not_quoted(tmp_path: Path) -> None:
    env = {"WRAPUPD_GENESYS": f'{{"client_id": "c", "client_secret": "{SECRET}"'}
    message = config_error(tmp_path, MINIMAL, env)
    assert "WRAPUPD_GENESYS" in message
    assert SECRET not in message


def test_a_secret_in_a_message_of_our_own_is_hidden(tmp_path: Path) -> None:
    queue = f'[[queues]]\nqueue = "{SECRET}"\ndefault_code = "General"\n'
    message = config_error(tmp_path, MINIMAL + queue + queue)
    assert "queues[2].queue:" in message
    assert "already listed as queues[1]" in message
    assert SECRET not in message
