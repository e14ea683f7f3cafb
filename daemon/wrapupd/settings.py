"""The settings schema, where settings come from, and errors a tired operator can act on.

Sources, later wins:

1. the TOML file (``load_settings(config_file)``, else ``$WRAPUPD_CONFIG``),
2. environment variables ``WRAPUPD_*``, nested with ``__`` (``WRAPUPD_GENESYS__CLIENT_ID``;
   lists as JSON: ``WRAPUPD_QUEUES='[{"queue": "Support", "default_code": "General"}]'``),
3. the client secret from a file: ``genesys.client_secret_file`` /
   ``WRAPUPD_GENESYS__CLIENT_SECRET_FILE``, else ``$CREDENTIALS_DIRECTORY/client_secret``
   (systemd ``LoadCredential=client_secret:…``).

The file's shape is a public contract (``config/wrapupd.example.toml`` documents every key and a
test checks it against :func:`settings_reference`). Unknown keys are errors everywhere: a typo must
not silently fall back to a default. Every problem becomes one line of a :class:`ConfigError`,
naming the setting path, the value given and what is allowed; the client secret is never shown.

Only ``service``/``cli`` import this module: the parts get plain values (see STYLE.md).
"""

from __future__ import annotations

import contextvars
import json
import math
import os
import re
import tomllib
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeAlias
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic import model_validator as _model_validator
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)
from pydantic_settings.sources.utils import parse_env_vars

from wrapupd.applier import ApplierConfig
from wrapupd.errors import ConfigError
from wrapupd.events import QueuePolicy
from wrapupd.options import DaemonOptions
from wrapupd.reconciler import ReconcilerConfig
from wrapupd.subscriber import SubscriberConfig

__all__ = [
    "ENV_CONFIG_FILE",
    "ENV_PREFIX",
    "KNOWN_REGIONS",
    "DaemonSettings",
    "DefaultsSettings",
    "GenesysSettings",
    "HttpSettings",
    "LogSettings",
    "QueuePolicy",
    "QueueSettings",
    "Settings",
    "load_settings",
    "settings_reference",
]

ENV_PREFIX = "WRAPUPD_"
ENV_CONFIG_FILE = "WRAPUPD_CONFIG"
ENV_SECRET_FILE = "WRAPUPD_GENESYS__CLIENT_SECRET_FILE"
CREDENTIAL_NAME = "client_secret"

KNOWN_REGIONS: tuple[str, ...] = (
    "mypurecloud.com",
    "mypurecloud.ie",
    "mypurecloud.de",
    "mypurecloud.com.au",
    "mypurecloud.jp",
    "usw2.pure.cloud",
    "cac1.pure.cloud",
    "euw2.pure.cloud",
    "aps1.pure.cloud",
    "apne2.pure.cloud",
    "sae1.pure.cloud",
    "mec1.pure.cloud",
    "euc2.pure.cloud",
    "use2.us-gov-pure.cloud",
)

# Seconds are floats so tests can use fractions; inf/nan from TOML are refused.
Seconds: TypeAlias = Annotated[float, Field(ge=0, allow_inf_nan=False)]
PositiveSeconds: TypeAlias = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Name: TypeAlias = Annotated[str, Field(min_length=1)]


def _located(path: str, message: str) -> PydanticCustomError:
    """A validation error that names the setting it is about, for model-level checks."""
    return PydanticCustomError("wrapupd", message, {"setting_path": path})


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


class _Section(BaseModel):
    """A TOML table: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- [genesys] ---------------------------------------------------------------------------------


class GenesysSettings(_Section):
    region: str | None = Field(
        default=None,
        description="Genesys Cloud region domain, e.g. mypurecloud.ie (give this or api_host)",
    )
    api_host: str | None = Field(
        default=None,
        description="Explicit API base URL instead of a region, e.g. http://127.0.0.1:8080"
        " for the emulator or a proxy",
    )
    client_id: Name = Field(description="OAuth client-credentials client id")
    client_secret: SecretStr = Field(
        description="OAuth client secret (prefer client_secret_file or systemd LoadCredential)"
    )
    client_secret_file: Path | None = Field(
        default=None, description="File holding the client secret; overrides client_secret"
    )
    connect_timeout_seconds: PositiveSeconds = Field(
        default=5.0, description="TCP/TLS connect timeout for every platform request"
    )
    read_timeout_seconds: PositiveSeconds = Field(
        default=15.0, description="Time to wait for a platform answer before giving up on a request"
    )
    rate_limit_per_minute: Annotated[int, Field(gt=0)] = Field(
        default=300, description="The platform's request limit for this OAuth client, per minute"
    )
    rate_reserve_per_minute: Annotated[int, Field(ge=0)] = Field(
        default=30,
        description="Requests per minute left unused for other tools sharing the client;"
        " wrapupd's budget is the limit minus this",
    )
    token_renew_margin_seconds: Seconds = Field(
        default=300.0, description="Renew the access token this long before it expires"
    )

    _normalise = field_validator("region", "api_host", "client_id", mode="before")(_strip)

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str | None) -> str | None:
        if value is None:
            return None
        domain = value.lower()
        if domain in KNOWN_REGIONS:
            return domain
        if "://" in domain or domain.startswith(("api.", "login.")):
            raise ValueError(
                "give the bare region domain (e.g. mypurecloud.ie); for a URL use api_host"
            )
        raise ValueError(f"unknown region; known regions: {', '.join(KNOWN_REGIONS)}")

    @field_validator("api_host")
    @classmethod
    def _valid_api_host(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:8080"
            )
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("must be a bare base URL without path, query or fragment")
        return value.rstrip("/")

    @field_validator("client_secret")
    @classmethod
    def _secret_not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @_model_validator(mode="after")
    def _one_host_and_a_budget(self) -> GenesysSettings:
        if (self.region is None) == (self.api_host is None):
            given = "both" if self.region else "neither"
            raise _located(
                "genesys.region", f"give exactly one of region or api_host (got {given})"
            )
        if self.rate_reserve_per_minute >= self.rate_limit_per_minute:
            raise _located(
                "genesys.rate_reserve_per_minute",
                f"got {self.rate_reserve_per_minute}; must be less than"
                f" rate_limit_per_minute ({self.rate_limit_per_minute})",
            )
        return self

    @property
    def base_url(self) -> str:
        """The REST base URL: ``https://api.<region>``, or the explicit ``api_host``."""
        if self.api_host is not None:
            return self.api_host
        return f"https://api.{self.region}"

    @property
    def rate_budget_per_minute(self) -> int:
        """Requests per minute wrapupd allows itself."""
        return self.rate_limit_per_minute - self.rate_reserve_per_minute


# --- [defaults] and [[queues]] -----------------------------------------------------------------


class DefaultsSettings(_Section):
    grace_seconds: Seconds = Field(
        default=30.0, description="Wait this long after ACW starts before applying the default code"
    )
    timeout_margin_seconds: Seconds = Field(
        default=5.0,
        description="On time-boxed queues, apply the code at least this long before the"
        " platform's ACW timeout stamps ININ-WRAP-UP-TIMEOUT",
    )
    notes: str = Field(
        default="Default applied by wrapupd",
        description="Wrap-up notes written with the default code",
    )


class QueueSettings(_Section):
    queue: Name = Field(description="Queue name or id")
    default_code: Name = Field(
        description="Wrap-up code name or id to apply; must be assigned to the queue"
    )
    grace_seconds: Seconds | None = Field(
        default=None, description="Overrides defaults.grace_seconds"
    )
    timeout_margin_seconds: Seconds | None = Field(
        default=None, description="Overrides defaults.timeout_margin_seconds"
    )
    notes: str | None = Field(default=None, description="Overrides defaults.notes")

    _normalise = field_validator("queue", "default_code", mode="before")(_strip)


# --- [daemon], [http], [log] -------------------------------------------------------------------

_CHANNEL_LIFETIME_S = 24 * 3600


class DaemonSettings(_Section):
    dry_run: bool = Field(default=False, description="Detect and log, but never write a code")
    state_dir: Path = Field(
        default=Path("/var/lib/wrapupd"), description="Directory for the ledger (wrapupd.sqlite3)"
    )
    code_refresh_seconds: PositiveSeconds = Field(
        default=300.0, description="Re-read queues and their wrap-up codes this often"
    )
    reconcile_interval_seconds: PositiveSeconds = Field(
        default=300.0, description="Sweep for ACW participants the socket missed this often"
    )
    drain_seconds: Seconds = Field(
        default=20.0, description="On shutdown, let in-flight writes finish for up to this long"
    )
    retention_days: Annotated[int, Field(gt=0)] = Field(
        default=14, description="Forget finished work items after this many days"
    )
    heartbeat_timeout_seconds: PositiveSeconds = Field(
        default=75.0, description="Socket silence before a ping, then a reconnect"
    )
    max_attempts: Annotated[int, Field(ge=1)] = Field(
        default=8, description="Give up on a work item after this many write attempts"
    )
    channel_renew_seconds: Annotated[float, Field(gt=0, lt=_CHANNEL_LIFETIME_S)] = Field(
        default=12 * 3600.0,
        description="Re-subscribe the notification channel this often (it expires after 24 h)",
    )
    workers: Annotated[int, Field(ge=1, le=64)] = Field(
        default=4, description="Concurrent appliers (each holds at most one request in flight)"
    )


class HttpSettings(_Section):
    listen: str = Field(
        default="127.0.0.1:9464",
        description="host:port for /livez, /readyz and /metrics (port 0: any)",
    )

    @field_validator("listen")
    @classmethod
    def _host_and_port(cls, value: str) -> str:
        _split_listen(value)
        return value.strip()

    @property
    def host(self) -> str:
        return _split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return _split_listen(self.listen)[1]


def _split_listen(value: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` into parts; ValueError says what is expected."""
    host, sep, port_text = value.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError("must be host:port, e.g. 127.0.0.1:9464 or [::1]:9464 (port 0-65535)")
    return host, int(port_text)


LogFormat = Literal["auto", "json", "console"]
LogLevel = Literal["debug", "info", "warning", "error", "critical"]


class LogSettings(_Section):
    format: LogFormat = Field(
        default="auto", description="json | console | auto (console on a terminal, json otherwise)"
    )
    level: LogLevel = Field(default="info", description="debug | info | warning | error | critical")

    @field_validator("format", "level", mode="before")
    @classmethod
    def _lowercase(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


# --- the whole file ----------------------------------------------------------------------------


class Settings(BaseSettings):
    """Everything the daemon is told. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        case_sensitive=False,
        extra="forbid",
        frozen=True,
    )

    genesys: GenesysSettings
    defaults: DefaultsSettings = Field(default_factory=DefaultsSettings)
    queues: list[QueueSettings] = Field(min_length=1)
    daemon: DaemonSettings = Field(default_factory=DaemonSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    log: LogSettings = Field(default_factory=LogSettings)

    @field_validator("queues")
    @classmethod
    def _each_queue_once(cls, queues: list[QueueSettings]) -> list[QueueSettings]:
        first_seen: dict[str, int] = {}
        for index, entry in enumerate(queues):
            seen = first_seen.setdefault(entry.queue.casefold(), index)
            if seen != index:
                raise _located(
                    f"queues[{index}].queue",
                    f"got {entry.queue!r}, already listed as queues[{seen}]; list each queue once",
                )
        return queues

    @property
    def api_host(self) -> str:
        """The REST base URL: ``https://api.<region>``, or ``genesys.api_host`` when given."""
        return self.genesys.base_url

    def daemon_options(self) -> DaemonOptions:
        """The daemon's plain options: every part gets its values from here, never the settings."""
        g, d = self.genesys, self.daemon
        return DaemonOptions(
            api_host=self.api_host,
            client_id=g.client_id,
            client_secret=g.client_secret.get_secret_value(),
            policies=tuple(self.queue_policies()),
            state_dir=d.state_dir,
            listen=(self.http.host, self.http.port),
            connect_timeout=g.connect_timeout_seconds,
            read_timeout=g.read_timeout_seconds,
            budget_per_minute=g.rate_budget_per_minute,
            rate_limit_per_minute=g.rate_limit_per_minute,
            token_renew_margin=g.token_renew_margin_seconds,
            code_refresh_seconds=d.code_refresh_seconds,
            drain_seconds=d.drain_seconds,
            retention_days=d.retention_days,
            subscriber=SubscriberConfig(
                heartbeat_timeout=d.heartbeat_timeout_seconds,
                renew_interval=d.channel_renew_seconds,
            ),
            applier=ApplierConfig(
                dry_run=d.dry_run, workers=d.workers, max_attempts=d.max_attempts
            ),
            reconciler=ReconcilerConfig(interval=d.reconcile_interval_seconds),
        )

    def queue_policies(self) -> list[QueuePolicy]:
        """Each queue's effective policy, ``[defaults]`` merged in, in file order."""
        return [self._policy(entry) for entry in self.queues]

    def _policy(self, entry: QueueSettings) -> QueuePolicy:
        defaults = self.defaults
        return QueuePolicy(
            queue=entry.queue,
            default_code=entry.default_code,
            grace_seconds=_first(entry.grace_seconds, defaults.grace_seconds),
            timeout_margin_seconds=_first(
                entry.timeout_margin_seconds, defaults.timeout_margin_seconds
            ),
            notes=entry.notes if entry.notes is not None else defaults.notes,
        )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Highest priority first: init kwargs, secret file, environment, TOML file."""
        layers = _CURRENT_LAYERS.get() or _Layers.gather(None, os.environ)
        return (
            init_settings,
            _DictSource(settings_cls, layers.secret),
            _MappingEnvSource(settings_cls, layers.env),
            _DictSource(settings_cls, layers.file),
        )


def _first(override: float | None, default: float) -> float:
    return default if override is None else override


# --- sources -----------------------------------------------------------------------------------


class _DictSource(PydanticBaseSettingsSource):
    """Already-read data, passed on untouched (so unknown keys still reach ``extra="forbid"``)."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._data


class _MappingEnvSource(EnvSettingsSource):
    """The stock environment source, reading a given mapping instead of ``os.environ``.

    ``_load_env_vars`` is the hook pydantic-settings' own dotenv source overrides.
    """

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._mapping = env
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._mapping, self.case_sensitive, self.env_ignore_empty)


@dataclass(frozen=True)
class _Layers:
    """What each source contributes, read up front so every I/O problem is reported together."""

    file: dict[str, Any]
    env: Mapping[str, str]
    secret: dict[str, Any]
    origin: str

    stray_env: tuple[str, ...] = ()

    @classmethod
    def gather(cls, config_file: Path | None, env: Mapping[str, str]) -> _Layers:
        """Read the file and the secret; a problem there stops loading before validation.

        Without the file, validation would only add noise ("genesys: required"). Stray
        environment variables are kept and reported together with the validation problems.
        """
        problems: list[str] = []
        path = Path(config_file) if config_file is not None else _env_path(env, ENV_CONFIG_FILE)
        data = _read_toml(path, problems) if path is not None else {}
        secret = _read_secret(data, env, problems)
        stray = tuple(_stray_env_vars(env))
        if problems:
            raise ConfigError(_report([*problems, *stray], _origin(path)))
        return cls(file=data, env=env, secret=secret, origin=_origin(path), stray_env=stray)


_CURRENT_LAYERS: contextvars.ContextVar[_Layers | None] = contextvars.ContextVar(
    "wrapupd_settings_layers", default=None
)


def _origin(path: Path | None) -> str:
    return f"file {path}, then {ENV_PREFIX}* environment" if path else f"{ENV_PREFIX}* environment"


def _env_lookup(env: Mapping[str, str], name: str) -> str | None:
    """Environment lookup ignoring case, as pydantic-settings does for the other variables."""
    upper = name.upper()
    for key, value in env.items():
        if key.upper() == upper:
            return value
    return None


def _env_path(env: Mapping[str, str], name: str) -> Path | None:
    value = _env_lookup(env, name)
    return Path(value) if value else None


def _read_toml(path: Path, problems: list[str]) -> dict[str, Any]:
    """The parsed file, or {} with a problem line (not found, unreadable, bad TOML + line)."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        problems.append(f"config file {path}: not found")
    except IsADirectoryError:
        problems.append(f"config file {path}: is a directory, expected a TOML file")
    except OSError as exc:
        problems.append(f"config file {path}: cannot read it ({exc.strerror})")
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"config file {path}: invalid TOML: {exc}")
    except UnicodeDecodeError:
        problems.append(f"config file {path}: not UTF-8 text")
    return {}


def _stray_env_vars(env: Mapping[str, str]) -> list[str]:
    """``WRAPUPD_*`` variables that set nothing: a typo would otherwise be silently ignored."""
    sections = set(Settings.model_fields)
    problems = []
    for key in sorted(env):
        upper = key.upper()
        if not upper.startswith(ENV_PREFIX) or upper == ENV_CONFIG_FILE:
            continue
        head = upper[len(ENV_PREFIX) :].split("__", 1)[0].lower()
        if head not in sections:
            problems.append(
                f"environment {key}: not a wrapupd setting; {_env_hint(head, sections)}"
            )
    return problems


def _env_hint(head: str, sections: set[str]) -> str:
    for section in sorted(sections):
        if head.startswith(section + "_"):
            rest = head[len(section) + 1 :].upper()
            return f"nested keys use a double underscore: {ENV_PREFIX}{section.upper()}__{rest}"
    known = ", ".join(
        f"{ENV_PREFIX}{s.upper()}" + ("" if s == "queues" else "__*") for s in sorted(sections)
    )
    return f"expected {ENV_CONFIG_FILE} or one of {known}"


def _read_secret(
    file_data: dict[str, Any], env: Mapping[str, str], problems: list[str]
) -> dict[str, Any]:
    """The client secret from a file, as a source layer above the environment.

    An explicit ``client_secret_file`` (environment, else TOML) wins over systemd's
    ``$CREDENTIALS_DIRECTORY/client_secret``; a missing credentials file there is not an error,
    the directory may hold other credentials.
    """
    explicit = _env_path(env, ENV_SECRET_FILE) or _toml_secret_file(file_data)
    if explicit is not None:
        return _secret_layer(explicit, "genesys.client_secret_file", problems)
    directory = _env_lookup(env, "CREDENTIALS_DIRECTORY")
    if directory and (Path(directory) / CREDENTIAL_NAME).exists():
        return _secret_layer(Path(directory) / CREDENTIAL_NAME, "$CREDENTIALS_DIRECTORY", problems)
    return {}


def _toml_secret_file(file_data: dict[str, Any]) -> Path | None:
    genesys = file_data.get("genesys")
    value = genesys.get("client_secret_file") if isinstance(genesys, dict) else None
    return Path(value) if isinstance(value, str) and value else None


def _secret_layer(path: Path, setting: str, problems: list[str]) -> dict[str, Any]:
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        problems.append(f"{setting}: cannot read {path} ({exc.strerror})")
        return {}
    except UnicodeDecodeError:
        problems.append(f"{setting}: {path} is not UTF-8 text")
        return {}
    if not secret:
        problems.append(f"{setting}: {path} is empty; it must hold the OAuth client secret")
        return {}
    return {"genesys": {"client_secret": secret}}


# --- loading and error reports -----------------------------------------------------------------


def load_settings(
    config_file: Path | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Read, merge and validate every source; raise one ConfigError listing every problem.

    ``env`` defaults to ``os.environ``; tests pass a dict so nothing leaks in from the machine.
    """
    environment = os.environ if env is None else env
    layers = _Layers.gather(config_file, environment)
    result = _validate(layers)
    if isinstance(result, Settings) and not layers.stray_env:
        return result
    problems = [*layers.stray_env, *([] if isinstance(result, Settings) else result)]
    # Raised outside any ``except``: the ValidationError (whose text may quote the secret) must
    # not ride along as __context__ into a traceback.
    raise ConfigError(_report(problems, layers.origin))


def _validate(layers: _Layers) -> Settings | list[str]:
    token = _CURRENT_LAYERS.set(layers)
    try:
        return Settings()  # type: ignore[call-arg]  # values come from the sources
    except ValidationError as exc:
        return [_describe(error) for error in exc.errors()]
    except SettingsError as exc:
        return [_env_parse_problem(str(exc))]
    finally:
        _CURRENT_LAYERS.reset(token)


def _env_parse_problem(text: str) -> str:
    """pydantic-settings could not decode a variable holding a table or list (it wants JSON)."""
    match = re.search(r'field "(\w+)"', text)
    if match is None:
        return f"environment: {ENV_PREFIX}* variables could not be parsed"
    name = f"{ENV_PREFIX}{match.group(1).upper()}"
    if match.group(1) == "queues":
        return f"environment {name}: not valid JSON; give a JSON list such as {_QUEUES_JSON}"
    return (
        f"environment {name}: not valid JSON; give a JSON object, or single keys as {name}__<KEY>"
    )


_QUEUES_JSON = '[{"queue": "Support", "default_code": "General"}]'


def _report(problems: Sequence[str], origin: str) -> str:
    noun = "problem" if len(problems) == 1 else "problems"
    lines = [f"invalid wrapupd configuration ({origin}): {len(problems)} {noun}"]
    lines += [f"  {problem}" for problem in problems]
    return "\n".join(lines)


_MISSING_HINTS = {
    "genesys": " (a [genesys] table with region, client_id, client_secret)",
    "queues": " (at least one [[queues]] entry with queue and default_code)",
    "genesys.client_secret": (
        f" (set it in the file, {ENV_PREFIX}GENESYS__CLIENT_SECRET, {ENV_SECRET_FILE},"
        f" or systemd LoadCredential={CREDENTIAL_NAME}:<file>)"
    ),
}


def _describe(error: ErrorDetails) -> str:
    """One line: setting path, what was wrong with the given value, what is allowed."""
    ctx = error.get("ctx") or {}
    path = str(ctx.get("setting_path") or _dotted(error["loc"]))
    kind = error["type"]
    if kind == "wrapupd":
        return f"{path}: {error['msg']}"
    if kind == "extra_forbidden":
        return f"{path}: unknown setting{_allowed_keys_hint(error['loc'])}"
    if kind == "missing":
        return f"{path}: required but not set{_MISSING_HINTS.get(path, '')}"
    if kind == "too_short" and path == "queues":
        return f"{path}: empty; at least one [[queues]] entry is required"
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return f"{path}: {_given(path, error['input'])}must not be empty"
    return f"{path}: {_given(path, error['input'])}{_allowed(error['msg'])}"


def _dotted(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _given(path: str, value: object) -> str:
    """The offending value, quoted as given; secrets and whole tables are never echoed."""
    if "secret" in path:
        return "invalid value (not shown); "
    if isinstance(value, str | int | float | bool) or value is None:
        shown = "true" if value is True else "false" if value is False else repr(value)
        return f"got {shown}; "
    return ""


def _allowed(message: str) -> str:
    """Pydantic's wording, turned from "Input should be …" into "must be …"."""
    message = message.removeprefix("Value error, ")
    return re.sub(r"^(Input|String|List|Value|Dictionary|Object) should ", "must ", message)


def _allowed_keys_hint(loc: tuple[int | str, ...]) -> str:
    model = _model_at(loc[:-1])
    if model is None:
        return ""
    return "; allowed here: " + ", ".join(model.model_fields)


def _model_at(loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The model class that validates the table at ``loc`` (for listing its allowed keys)."""
    model: type[BaseModel] = Settings
    for part in loc:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part)
        nested = _model_of(info.annotation) if info is not None else None
        if nested is None:
            return None
        model = nested
    return model


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model inside ``Model``, ``list[Model]`` or ``Model | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


# --- documentation -----------------------------------------------------------------------------


def settings_reference() -> list[tuple[str, str, str]]:
    """(dotted key, default as TOML, description) for every setting, in schema order.

    Documentation is generated from (and tested against) this, so the schema stays the single
    source of truth. List entries appear as ``queues[].key``.
    """
    return list(_reference_rows(Settings, ""))


def _reference_rows(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, str, str]]:
    for name, info in model.model_fields.items():
        nested = _model_of(info.annotation)
        if nested is not None:
            is_list = typing.get_origin(info.annotation) is list
            yield from _reference_rows(nested, f"{prefix}{name}{'[]' if is_list else ''}.")
        else:
            yield (f"{prefix}{name}", _toml_default(info), info.description or "")


def _toml_default(info: FieldInfo) -> str:
    if info.is_required():
        return "(required)"
    value = info.get_default(call_default_factory=True)
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value))


REFERENCE_BEGIN = "<!-- settings-reference:begin (generated by `make docs` from settings.py) -->"
REFERENCE_END = "<!-- settings-reference:end -->"


def reference_markdown() -> str:
    """The settings table of docs/CONFIGURATION.md, rendered from the schema so the two cannot drift."""
    rows = ["| setting | environment variable | default | meaning |", "|---|---|---|---|"]
    for key, default, description in settings_reference():
        env = "—" if "[]" in key else "`WRAPUPD_" + key.upper().replace(".", "__") + "`"
        rows.append(f"| `{key}` | {env} | `{default}` | {description.replace('|', '/')} |")
    return "\n".join(rows)


def rewrite_reference(document: str) -> str:
    """Replace the generated block of a Markdown document with the current reference."""
    head, _, rest = document.partition(REFERENCE_BEGIN)
    _, _, tail = rest.partition(REFERENCE_END)
    return f"{head}{REFERENCE_BEGIN}\n{reference_markdown()}\n{REFERENCE_END}{tail}"


if __name__ == "__main__":  # `python -m wrapupd.settings FILE`: refresh the reference in FILE
    import sys as _sys

    target = Path(_sys.argv[1])
    target.write_text(rewrite_reference(target.read_text()))
