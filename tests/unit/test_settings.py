"""Settings: sources and precedence, validation, 2 a.m.-readable errors, secrets kept secret."""

from __future__ import annotations

import re
import textwrap
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from wrapupd.errors import ConfigError
from wrapupd.settings import (
    KNOWN_REGIONS,
    QueuePolicy,
    Settings,
    load_settings,
    settings_reference,
)

SECRET = "s3cr3t-value-never-shown"
CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
EXAMPLE_TOML = CONFIG_DIR / "wrapupd.example.toml"
EXAMPLE_ENV = CONFIG_DIR / "wrapupd.env.example"

MINIMAL = f"""
[genesys]
region = "mypurecloud.ie"
client_id = "client-1"
client_secret = "{SECRET}"

[[queues]]
queue = "Support"
default_code = "No code selected"
"""


def write(tmp_path: Path, text: str, name: str = "wrapupd.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def load(tmp_path: Path, text: str = MINIMAL, env: dict[str, str] | None = None) -> Settings:
    return load_settings(write(tmp_path, text), env or {})


def problems(tmp_path: Path, text: str = MINIMAL, env: dict[str, str] | None = None) -> list[str]:
    """The problem lines of the ConfigError the settings must raise."""
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, env)
    message = str(caught.value)
    assert SECRET not in message
    header, *lines = message.splitlines()
    assert header.startswith("invalid wrapupd configuration")
    return [line.strip() for line in lines]


def with_queue(extra: str) -> str:
    return MINIMAL + textwrap.dedent(extra)


# --- a good file ------------------------------------------------------------------------------


def test_a_minimal_file_loads_with_documented_defaults(tmp_path: Path) -> None:
    s = load(tmp_path)
    assert s.genesys.region == "mypurecloud.ie"
    assert s.api_host == "https://api.mypurecloud.ie"
    assert s.genesys.client_secret.get_secret_value() == SECRET
    assert s.genesys.rate_budget_per_minute == 270
    assert (s.genesys.connect_timeout_seconds, s.genesys.read_timeout_seconds) == (5, 15)
    assert s.genesys.token_renew_margin_seconds == 300
    assert s.daemon.dry_run is False
    assert s.daemon.state_dir == Path("/var/lib/wrapupd")
    assert (s.daemon.code_refresh_seconds, s.daemon.reconcile_interval_seconds) == (300, 300)
    assert s.daemon.reconcile_lookback_days == 3
    assert (s.daemon.drain_seconds, s.daemon.retention_days) == (20, 14)
    assert s.daemon.heartbeat_timeout_seconds == 75
    assert s.daemon.channel_renew_seconds == 12 * 3600
    assert s.daemon.workers == 4
    assert (s.http.host, s.http.port) == ("127.0.0.1", 9464)
    assert (s.log.format, s.log.level) == ("auto", "info")


def test_queue_policies_merge_the_defaults(tmp_path: Path) -> None:
    s = load(
        tmp_path,
        MINIMAL
        + """
[defaults]
grace_seconds = 45
timeout_margin_seconds = 8
notes = "by the robot"

[[queues]]
queue = "Sales"
default_code = "General"
grace_seconds = 0
notes = ""
""",
    )
    assert s.queue_policies() == [
        QueuePolicy("Support", "No code selected", 45, 8, "by the robot"),
        QueuePolicy("Sales", "General", 0, 8, ""),
    ]


def test_an_explicit_api_host_replaces_the_region(tmp_path: Path) -> None:
    s = load(
        tmp_path,
        MINIMAL.replace('region = "mypurecloud.ie"', 'api_host = "http://127.0.0.1:8080/"'),
    )
    assert s.api_host == "http://127.0.0.1:8080"
    assert s.genesys.region is None


@pytest.mark.parametrize("region", KNOWN_REGIONS)
def test_every_known_region_maps_to_its_api_host(tmp_path: Path, region: str) -> None:
    s = load(tmp_path, MINIMAL.replace("mypurecloud.ie", region.upper()))
    assert s.api_host == f"https://api.{region}"


def test_an_ipv6_listen_address_is_understood(tmp_path: Path) -> None:
    s = load(tmp_path, MINIMAL + '[http]\nlisten = "[::1]:0"\n')
    assert (s.http.host, s.http.port) == ("::1", 0)


def test_log_settings_are_case_insensitive(tmp_path: Path) -> None:
    s = load(tmp_path, MINIMAL + '[log]\nformat = "JSON"\nlevel = "Debug"\n')
    assert (s.log.format, s.log.level) == ("json", "debug")


def test_settings_are_immutable(tmp_path: Path) -> None:
    s = load(tmp_path)
    with pytest.raises(ValueError):
        s.daemon.workers = 9


# --- sources and precedence -------------------------------------------------------------------


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    s = load(
        tmp_path,
        env={
            "WRAPUPD_DAEMON__DRY_RUN": "true",
            "WRAPUPD_GENESYS__CLIENT_ID": "from-env",
            "wrapupd_log__level": "warning",
            "WRAPUPD_DEFAULTS__GRACE_SECONDS": "12.5",
        },
    )
    assert s.daemon.dry_run is True
    assert s.genesys.client_id == "from-env"
    assert s.genesys.region == "mypurecloud.ie"  # the rest of [genesys] still from the file
    assert s.log.level == "warning"
    assert s.queue_policies()[0].grace_seconds == 12.5


def test_queues_can_come_from_the_environment_as_json(tmp_path: Path) -> None:
    s = load(tmp_path, env={"WRAPUPD_QUEUES": '[{"queue": "Env", "default_code": "Code"}]'})
    assert [p.queue for p in s.queue_policies()] == ["Env"]


def test_the_config_file_can_be_named_by_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    s = load_settings(None, {"WRAPUPD_CONFIG": str(path)})
    assert s.genesys.client_id == "client-1"


def test_an_explicit_file_beats_wrapupd_config(tmp_path: Path) -> None:
    explicit = write(tmp_path, MINIMAL, "explicit.toml")
    s = load_settings(explicit, {"WRAPUPD_CONFIG": str(tmp_path / "missing.toml")})
    assert s.genesys.client_id == "client-1"


def test_everything_can_come_from_the_environment_alone() -> None:
    s = load_settings(
        None,
        {
            "WRAPUPD_GENESYS__API_HOST": "http://127.0.0.1:9000",
            "WRAPUPD_GENESYS__CLIENT_ID": "id",
            "WRAPUPD_GENESYS__CLIENT_SECRET": SECRET,
            "WRAPUPD_QUEUES": '[{"queue": "Q", "default_code": "C"}]',
        },
    )
    assert s.api_host == "http://127.0.0.1:9000"


def test_a_secret_file_beats_the_environment_and_the_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-secret-file\n")
    s = load(
        tmp_path,
        env={
            "WRAPUPD_GENESYS__CLIENT_SECRET": "from-env",
            "WRAPUPD_GENESYS__CLIENT_SECRET_FILE": str(secret_file),
        },
    )
    assert s.genesys.client_secret.get_secret_value() == "from-secret-file"
    assert s.genesys.client_secret_file == secret_file


def test_the_secret_file_may_be_named_in_the_toml(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-toml-named-file")
    text = MINIMAL.replace(f'client_secret = "{SECRET}"', f'client_secret_file = "{secret_file}"')
    assert load(tmp_path, text).genesys.client_secret.get_secret_value() == "from-toml-named-file"


def test_systemd_credentials_beat_the_environment(tmp_path: Path) -> None:
    credentials = tmp_path / "creds"
    credentials.mkdir()
    (credentials / "client_secret").write_text("from-systemd\n")
    s = load(
        tmp_path,
        env={"CREDENTIALS_DIRECTORY": str(credentials), "WRAPUPD_GENESYS__CLIENT_SECRET": "env"},
    )
    assert s.genesys.client_secret.get_secret_value() == "from-systemd"


def test_an_explicit_secret_file_beats_systemd_credentials(tmp_path: Path) -> None:
    credentials = tmp_path / "creds"
    credentials.mkdir()
    (credentials / "client_secret").write_text("from-systemd")
    explicit = tmp_path / "explicit"
    explicit.write_text("explicit")
    s = load(
        tmp_path,
        env={
            "CREDENTIALS_DIRECTORY": str(credentials),
            "WRAPUPD_GENESYS__CLIENT_SECRET_FILE": str(explicit),
        },
    )
    assert s.genesys.client_secret.get_secret_value() == "explicit"


def test_a_credentials_directory_without_our_credential_is_ignored(tmp_path: Path) -> None:
    credentials = tmp_path / "creds"
    credentials.mkdir()
    s = load(tmp_path, env={"CREDENTIALS_DIRECTORY": str(credentials)})
    assert s.genesys.client_secret.get_secret_value() == SECRET


def test_the_process_environment_is_not_read_when_env_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WRAPUPD_DAEMON__WORKERS", "9")
    assert load(tmp_path, env={}).daemon.workers == 4
    assert load_settings(write(tmp_path, MINIMAL)).daemon.workers == 9


# --- errors: one line per problem, naming path, value and what is allowed ---------------------


def test_every_problem_gets_its_own_line(tmp_path: Path) -> None:
    lines = problems(
        tmp_path,
        with_queue(
            """
            [[queues]]
            queue = "Sales"
            default_code = "X"
            grace_seconds = -3
            colour = "blue"

            [daemon]
            dry_run = "maybe"
            workers = 0

            [http]
            listen = "nope"

            [log]
            level = "loud"

            [deamon]
            dry_run = true
            """
        ),
    )
    assert lines == [
        "queues[1].grace_seconds: got -3; must be greater than or equal to 0",
        "queues[1].colour: unknown setting; allowed here: queue, match, division, all,"
        " default_code, grace_seconds,"
        " timeout_margin_seconds, notes",
        "daemon.dry_run: got 'maybe'; must be a valid boolean, unable to interpret input",
        "daemon.workers: got 0; must be greater than or equal to 1",
        "http.listen: got 'nope'; must be host:port, e.g. 127.0.0.1:9464 or [::1]:9464"
        " (port 0-65535)",
        "log.level: got 'loud'; must be 'debug', 'info', 'warning', 'error' or 'critical'",
        "deamon: unknown setting; allowed here: genesys, defaults, queues, daemon, ledger, http, log",
    ]


@pytest.mark.parametrize(
    ("table", "line", "expected"),
    [
        ("defaults", "timeout_margin_seconds = -1", "defaults.timeout_margin_seconds: got -1;"),
        # issue 11 finding 16: accepted once, then an OverflowError at the first ACW event
        (
            "defaults",
            "grace_seconds = 1e14",
            "defaults.grace_seconds: got 100000000000000.0; must be less than or equal to 2678400",
        ),
        (
            "daemon",
            "drain_seconds = 1e14",
            "daemon.drain_seconds: got 100000000000000.0; must be less than or equal to 2678400",
        ),
        ("defaults", "grace_seconds = nan", "defaults.grace_seconds: got nan; must be a finite"),
        ("genesys", "read_timeout_seconds = 0", "genesys.read_timeout_seconds: got 0;"),
        ("daemon", "channel_renew_seconds = 90000", "daemon.channel_renew_seconds: got 90000;"),
        ("daemon", "retention_days = -1", "daemon.retention_days: got -1;"),
        ("daemon", "workers = 0", "daemon.workers: got 0;"),
        ("log", 'format = "xml"', "log.format: got 'xml'; must be 'auto', 'json' or 'console'"),
        ("http", 'listen = "127.0.0.1:70000"', "http.listen: got '127.0.0.1:70000'; must be"),
        ("http", 'listen = ":9464"', "http.listen: got ':9464'; must be host:port"),
    ],
)
def test_out_of_range_values_are_named(
    tmp_path: Path, table: str, line: str, expected: str
) -> None:
    if table == "genesys":
        text = MINIMAL.replace("[genesys]", f"[genesys]\n{line}")
    else:
        text = MINIMAL + f"\n[{table}]\n{line}\n"
    (only,) = problems(tmp_path, text)
    assert only.startswith(expected), only


def test_a_queue_override_below_zero_names_the_queue_index(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        'default_code = "No code selected"', 'default_code = "X"\ngrace_seconds = -1'
    )
    assert problems(tmp_path, text) == [
        "queues[0].grace_seconds: got -1; must be greater than or equal to 0"
    ]


def test_duplicate_queues_are_refused_ignoring_case(tmp_path: Path) -> None:
    text = with_queue(
        """
        [[queues]]
        queue = "Sales"
        default_code = "X"

        [[queues]]
        queue = " support "
        default_code = "Y"
        """
    )
    assert problems(tmp_path, text) == [
        "queues[2].queue: got 'support', already listed as queues[0]; list each queue once"
    ]


def test_at_least_one_queue_is_required(tmp_path: Path) -> None:
    no_queues = MINIMAL.split("[[queues]]")[0]
    assert problems(tmp_path, no_queues) == [
        "queues: required but not set (at least one [[queues]] entry with queue and default_code)"
    ]
    assert problems(tmp_path, no_queues, env={"WRAPUPD_QUEUES": "[]"}) == [
        "queues: empty; at least one [[queues]] entry is required"
    ]


def test_a_queue_needs_a_name_and_a_code(tmp_path: Path) -> None:
    text = MINIMAL.replace('default_code = "No code selected"', "").replace('"Support"', '"  "')
    assert problems(tmp_path, text) == [
        "queues[0].queue: got ''; must not be empty",
        "queues[0].default_code: required but not set",
    ]


def test_region_and_api_host_are_exclusive_and_one_is_required(tmp_path: Path) -> None:
    both = MINIMAL.replace(
        'region = "mypurecloud.ie"', 'region = "mypurecloud.ie"\napi_host = "https://h:1"'
    )
    neither = MINIMAL.replace('region = "mypurecloud.ie"', "")
    assert problems(tmp_path, both) == [
        "genesys.region: give exactly one of region or api_host (got both)"
    ]
    assert problems(tmp_path, neither) == [
        "genesys.region: give exactly one of region or api_host (got neither)"
    ]


def test_an_unknown_region_lists_the_known_ones(tmp_path: Path) -> None:
    (line,) = problems(tmp_path, MINIMAL.replace("mypurecloud.ie", "mypurecloud.moon"))
    assert line.startswith(
        "genesys.region: got 'mypurecloud.moon'; unknown region; known regions: "
    )
    assert "usw2.pure.cloud" in line


def test_a_url_given_as_region_gets_a_hint(tmp_path: Path) -> None:
    (line,) = problems(tmp_path, MINIMAL.replace("mypurecloud.ie", "https://api.mypurecloud.ie"))
    assert "give the bare region domain" in line
    assert "api_host" in line


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8080", "ftp://h", "http://", "http://h/api/v2", "http://h?x=1"]
)
def test_a_malformed_api_host_is_refused(tmp_path: Path, host: str) -> None:
    (line,) = problems(
        tmp_path, MINIMAL.replace('region = "mypurecloud.ie"', f'api_host = "{host}"')
    )
    assert line.startswith(f"genesys.api_host: got '{host}'; must be")


def test_the_reserve_must_leave_a_budget(tmp_path: Path) -> None:
    text = MINIMAL.replace("[genesys]", "[genesys]\nrate_limit_per_minute = 30")
    assert problems(tmp_path, text) == [
        "genesys.rate_reserve_per_minute: got 30; must be less than rate_limit_per_minute (30)"
    ]


def test_missing_credentials_say_where_they_may_come_from(tmp_path: Path) -> None:
    text = MINIMAL.replace('client_id = "client-1"', "").replace(f'client_secret = "{SECRET}"', "")
    lines = problems(tmp_path, text)
    assert lines[0] == "genesys.client_id: required but not set"
    assert lines[1].startswith("genesys.client_secret: required but not set (set it in the file,")
    assert "WRAPUPD_GENESYS__CLIENT_SECRET_FILE" in lines[1]
    assert "LoadCredential" in lines[1]


def test_an_empty_file_asks_for_genesys_and_queues(tmp_path: Path) -> None:
    lines = problems(tmp_path, "")
    assert [line.split(":")[0] for line in lines] == ["genesys", "queues"]


# --- errors: files and environment ------------------------------------------------------------


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file .*absent\.toml: not found"):
        load_settings(tmp_path / "absent.toml", {})


def test_a_missing_file_named_by_the_environment_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"absent\.toml: not found"):
        load_settings(None, {"WRAPUPD_CONFIG": str(tmp_path / "absent.toml")})


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_settings(tmp_path, {})


def test_an_unreadable_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, MINIMAL)

    def refuse(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(ConfigError, match=r"cannot read it \(Permission denied\)"):
        load_settings(path, {})


def test_invalid_toml_reports_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[genesys]\nregion = "mypurecloud.ie"\nclient_id = \n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    (line,) = str(caught.value).splitlines()[1:]
    assert "invalid TOML" in line
    assert "line 3" in line


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('notes = "café"'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1\.toml: not UTF-8 text"):
        load_settings(path, {})


def test_typos_in_environment_names_are_reported(tmp_path: Path) -> None:
    lines = problems(
        tmp_path,
        env={
            "WRAPUPD_GENESYS_CLIENT_ID": "single-underscore",
            "WRAPUPD_LOGGING__LEVEL": "debug",
            "WRAPUPD_DAEMON__WORKRES": "3",
        },
    )
    assert lines == [
        "environment WRAPUPD_GENESYS_CLIENT_ID: not a wrapupd setting; nested keys use a double"
        " underscore: WRAPUPD_GENESYS__CLIENT_ID",
        "environment WRAPUPD_LOGGING__LEVEL: not a wrapupd setting; expected WRAPUPD_CONFIG or"
        " one of WRAPUPD_DAEMON__*, WRAPUPD_DEFAULTS__*, WRAPUPD_GENESYS__*, WRAPUPD_HTTP__*,"
        " WRAPUPD_LEDGER__*, WRAPUPD_LOG__*, WRAPUPD_QUEUES",
        "daemon.workres: unknown setting; allowed here: dry_run, state_dir, code_refresh_seconds,"
        " reconcile_interval_seconds, reconcile_lookback_days, drain_seconds, retention_days, heartbeat_timeout_seconds,"
        " channel_renew_seconds, workers",
    ]


def test_bad_json_in_the_environment_is_named(tmp_path: Path) -> None:
    assert problems(tmp_path, env={"WRAPUPD_QUEUES": "[{not json"}) == [
        "environment WRAPUPD_QUEUES: not valid JSON; give a JSON list such as"
        ' [{"queue": "Support", "default_code": "General"}]'
    ]


def test_unrelated_environment_variables_are_ignored(tmp_path: Path) -> None:
    assert (
        load(tmp_path, env={"PATH": "/bin", "WRAPUPDX": "1", "HOME": "/root"}).daemon.workers == 4
    )


@pytest.mark.parametrize("content", ["", "   \n"])
def test_an_empty_secret_file_is_an_error(tmp_path: Path, content: str) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(content)
    assert problems(tmp_path, env={"WRAPUPD_GENESYS__CLIENT_SECRET_FILE": str(secret_file)}) == [
        f"genesys.client_secret_file: {secret_file} is empty; it must hold the OAuth client secret"
    ]


def test_a_missing_secret_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "absent"
    assert problems(tmp_path, env={"WRAPUPD_GENESYS__CLIENT_SECRET_FILE": str(path)}) == [
        f"genesys.client_secret_file: cannot read {path} (No such file or directory)"
    ]


# --- the secret stays secret ------------------------------------------------------------------


def test_the_secret_is_not_in_repr_or_str(tmp_path: Path) -> None:
    s = load(tmp_path)
    assert isinstance(s.genesys.client_secret, SecretStr)
    for text in (repr(s), str(s), repr(s.genesys), s.model_dump_json()):
        assert SECRET not in text


@pytest.mark.parametrize(
    "mutation",
    [
        # a typo'd key whose value is the secret
        lambda t: t.replace("client_secret =", "client_secert ="),
        # a model-level error whose input is the whole [genesys] table
        lambda t: t.replace(
            'region = "mypurecloud.ie"', 'region = "mypurecloud.ie"\napi_host = "https://h:1"'
        ),
        # the secret given with the wrong type
        lambda t: t.replace(f'"{SECRET}"', f'["{SECRET}"]'),
    ],
)
def test_the_secret_never_appears_in_an_error(
    tmp_path: Path, mutation: Callable[[str], str]
) -> None:
    text = mutation(MINIMAL)
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    error = caught.value
    assert SECRET not in str(error)
    assert error.__cause__ is None
    assert (
        error.__context__ is None
    )  # the ValidationError (which quotes inputs) does not ride along


def test_a_secret_from_the_environment_never_appears_in_an_error(tmp_path: Path) -> None:
    text = MINIMAL.replace(f'client_secret = "{SECRET}"', "")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, env={"WRAPUPD_GENESYS__CLIENT_SECRETT": SECRET})
    assert SECRET not in str(caught.value)


# --- reference and the example files ----------------------------------------------------------


def test_the_reference_lists_every_setting_with_default_and_description() -> None:
    rows = {key: (default, description) for key, default, description in settings_reference()}
    assert rows["genesys.client_secret"][0] == "(required)"
    assert rows["genesys.region"][0] == "(unset)"
    assert rows["defaults.grace_seconds"][0] == "30"
    assert rows["defaults.notes"][0] == '"Default applied by wrapupd"'
    assert rows["daemon.dry_run"][0] == "false"
    assert rows["daemon.state_dir"][0] == '"/var/lib/wrapupd"'
    assert rows["queues[].default_code"][0] == "(required)"
    assert rows["http.listen"][0] == '"127.0.0.1:9464"'
    assert all(description for _, description in rows.values())
    assert len(rows) == len(settings_reference())  # no duplicates


def _documented_keys(text: str) -> set[str]:
    """Keys set or shown commented-out in the example, as dotted paths."""
    keys: set[str] = set()
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if header := re.fullmatch(r"(\[\[?)([a-z_]+)\]\]?", line):
            section = header.group(2) + ("[]" if header.group(1) == "[[" else "")
            continue
        if match := re.fullmatch(r"#?\s*([a-z_]+)\s*=.*", line):
            keys.add(f"{section}.{match.group(1)}")
    return keys


def test_the_example_toml_documents_every_setting() -> None:
    documented = _documented_keys(EXAMPLE_TOML.read_text())
    reference = {key for key, _, _ in settings_reference()}
    assert reference - documented == set()
    assert documented - reference == set()


def test_the_example_toml_shows_the_real_defaults() -> None:
    text = EXAMPLE_TOML.read_text()
    for key, default, _ in settings_reference():
        if default.startswith("("):
            continue
        name = key.rsplit(".", 1)[1]
        if key.startswith("queues[]"):
            continue  # queue entries show overrides, not defaults
        assert re.search(rf"^#?\s*{name} = {re.escape(default)}\s*(#.*)?$", text, re.M), key


def test_the_example_toml_loads(tmp_path: Path) -> None:
    s = load_settings(EXAMPLE_TOML, {"WRAPUPD_GENESYS__CLIENT_SECRET": "example-secret"})
    assert [p.queue for p in s.queue_policies()] == ["Support", "Sales"]
    assert s.queue_policies()[0].grace_seconds == 0
    assert tomllib.loads(EXAMPLE_TOML.read_text())["genesys"]["region"] in KNOWN_REGIONS


def test_the_example_environment_file_loads_with_the_example_toml(tmp_path: Path) -> None:
    secret_file = tmp_path / "client_secret"
    secret_file.write_text("example-secret")
    env = {}
    for line in EXAMPLE_ENV.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = value
    assert set(env) >= {"WRAPUPD_CONFIG", "WRAPUPD_GENESYS__CLIENT_ID"}
    env["WRAPUPD_CONFIG"] = str(EXAMPLE_TOML)
    env["WRAPUPD_GENESYS__CLIENT_SECRET_FILE"] = str(secret_file)
    s = load_settings(None, env)
    assert s.genesys.client_secret.get_secret_value() == "example-secret"


def test_commented_env_examples_are_valid_settings(tmp_path: Path) -> None:
    env = {"WRAPUPD_GENESYS__CLIENT_SECRET": "example-secret"}
    for line in EXAMPLE_ENV.read_text().splitlines():
        if match := re.fullmatch(r"#\s*(WRAPUPD_[A-Z_]+)=(.*)", line.strip()):
            env[match.group(1)] = match.group(2)
    assert len(env) > 3
    load_settings(EXAMPLE_TOML, env)
