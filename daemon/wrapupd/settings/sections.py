"""The tables of the settings file: ``[genesys]``, ``[defaults]``, ``[[queues]]``, ``[daemon]``,
``[http]``, ``[log]``, each with its defaults, its limits and a description that the reference in
docs/CONFIGURATION.md is generated from."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal, TypeAlias
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic import model_validator as _model_validator
from pydantic_core import PydanticCustomError

from wrapupd.options import DEFAULT_REDIRECT_URI, GrantKind
from wrapupd.settings.regions import KNOWN_REGIONS

ENV_PREFIX = "WRAPUPD_"
ENV_CONFIG_FILE = "WRAPUPD_CONFIG"
# A packager's defaults (the container image's listen address, ...): below the settings file, so
# the operator's file always wins, and only explicit WRAPUPD_* variables win over that.
ENV_DEFAULTS_FILE = "WRAPUPD_DEFAULTS_FILE"
ENV_SECRET_FILE = "WRAPUPD_GENESYS__CLIENT_SECRET_FILE"
CREDENTIAL_NAME = "client_secret"
REFRESH_TOKEN_CREDENTIAL = "refresh_token"
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
ENV_LEDGER_PASSWORD_FILE = "WRAPUPD_LEDGER__PASSWORD_FILE"
LEDGER_CREDENTIAL_NAME = "ledger_password"


# Seconds are floats so tests can use fractions; inf/nan from TOML are refused, and so is anything
# beyond a month (a huge number would be accepted here and overflow a datetime much later).
MAX_SECONDS = 31 * 24 * 3600.0
Seconds: TypeAlias = Annotated[float, Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)]
PositiveSeconds: TypeAlias = Annotated[float, Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False)]
Name: TypeAlias = Annotated[str, Field(min_length=1)]


def located(path: str, message: str) -> PydanticCustomError:
    """A validation error that names the setting it is about, for model-level checks."""
    return PydanticCustomError("wrapupd", message, {"setting_path": path})


def _is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1): traffic that never leaves the host."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _strip(value: object) -> object:
    """Surrounding blanks are never meant: strip them before validation."""
    return value.strip() if isinstance(value, str) else value


class _Section(BaseModel):
    """A TOML table: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- [genesys] ---------------------------------------------------------------------------------


class GenesysSettings(_Section):
    """``[genesys]``: where the org is, the OAuth client, timeouts and the rate budget."""

    region: str | None = Field(
        default=None,
        description="Genesys Cloud region domain, e.g. mypurecloud.ie (give this or api_host)",
    )
    api_host: str | None = Field(
        default=None,
        description="Explicit API base URL instead of a region: https://<host>, or http:// on"
        " loopback only (e.g. http://127.0.0.1:8080 for the emulator)",
    )
    grant: GrantKind = Field(
        default="client_credentials",
        description="client_credentials (the OAuth client's own token) | authorization_code (an"
        " integration user signed in once with `wrapupd login`, for orgs that refuse wrap-up"
        " writes without a user context)",
    )
    client_id: Name = Field(
        description="OAuth client id: the Client Credentials client, or the Authorization Code"
        " client when grant = authorization_code"
    )
    client_secret: SecretStr = Field(
        description="That OAuth client's secret (prefer client_secret_file or systemd"
        " LoadCredential)"
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
    redirect_uri: str = Field(
        default=DEFAULT_REDIRECT_URI,
        description="authorization_code: the Authorization Code client's redirect URI, where"
        " `wrapupd login` listens (http on loopback, with a port)",
    )
    refresh_token_file: Path | None = Field(
        default=None,
        description="authorization_code: where `wrapupd login` stores the refresh token and the"
        " daemon keeps its rotations (mode 0600; default <daemon.state_dir>/refresh_token;"
        " systemd credential refresh_token is a read-only first token)",
    )

    _normalise = field_validator(
        "region", "api_host", "client_id", "grant", "redirect_uri", mode="before"
    )(_strip)

    @field_validator("redirect_uri")
    @classmethod
    def _loopback_redirect(cls, value: str) -> str:
        parts = urlsplit(value)
        try:
            port = parts.port
        except ValueError:
            port = None
        if parts.scheme != "http" or parts.hostname not in _LOOPBACK_HOSTS or not port:
            raise ValueError(
                "must be a loopback http URL with a port, e.g. http://127.0.0.1:<port>/callback"
                " (`wrapupd login` listens there)"
            )
        return value

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
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise ValueError(
                "must be https:// (http:// sends the client secret and tokens in clear);"
                " http:// only on loopback, e.g. http://127.0.0.1:8080 for the emulator"
            )
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
            raise located("genesys.region", f"give exactly one of region or api_host (got {given})")
        if self.rate_reserve_per_minute >= self.rate_limit_per_minute:
            raise located(
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
    """``[defaults]``: the policy every queue gets unless its own entry says otherwise."""

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
    """One ``[[queues]]`` entry: a queue, its default code, and overrides of ``[defaults]``."""

    queue: Name | None = Field(
        default=None, description="Queue name or id (or one of match, division, all)"
    )
    match: Name | None = Field(
        default=None,
        description="Selector: every queue whose name matches this glob, case-insensitive"
        ' (e.g. "Support*"); an entry naming the queue wins',
    )
    division: Name | None = Field(
        default=None, description="Selector: every queue of this division (name or id)"
    )
    all: bool = Field(default=False, description="Selector: every queue the client can see")
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

    _normalise = field_validator("queue", "match", "division", "default_code", mode="before")(
        _strip
    )

    @_model_validator(mode="after")
    def _one_way_to_pick_queues(self) -> QueueSettings:
        given = [k for k in ("queue", "match", "division") if getattr(self, k)] + (
            ["all"] if self.all else []
        )
        if len(given) != 1:
            got = ", ".join(given) or "none"
            raise ValueError(f"give exactly one of queue, match, division or all (got {got})")
        return self


# --- [ledger] ----------------------------------------------------------------------------------


_CHANNEL_LIFETIME_S = 24 * 3600


class DaemonSettings(_Section):
    """``[daemon]``: state, intervals, retries and workers of the running daemon."""

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
    reconcile_lookback_days: Annotated[int, Field(ge=1, le=31)] = Field(
        default=3,
        description="Sweeps look for open conversations that started up to this many days before"
        " today (long email and messaging conversations stay open for days)",
    )
    drain_seconds: Seconds = Field(
        default=20.0, description="On shutdown, let in-flight writes finish for up to this long"
    )
    retention_days: Annotated[int, Field(ge=0)] = Field(
        default=14,
        description="Forget finished work items after this many days (0: keep everything; export first, see OPERATIONS)",
    )
    heartbeat_timeout_seconds: PositiveSeconds = Field(
        default=75.0, description="Socket silence before a ping, then a reconnect"
    )
    channel_renew_seconds: Annotated[float, Field(gt=0, lt=_CHANNEL_LIFETIME_S)] = Field(
        default=12 * 3600.0,
        description="Re-subscribe the notification channel this often (it expires after 24 h)",
    )
    workers: Annotated[int, Field(ge=1, le=64)] = Field(
        default=4, description="Concurrent appliers (each holds at most one request in flight)"
    )


class HttpSettings(_Section):
    """``[http]``: where ``/livez``, ``/readyz`` and ``/metrics`` listen."""

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
        """The host part of ``listen`` (brackets of an IPv6 address removed)."""
        return _split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        """The port part of ``listen`` (0: any free port)."""
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
    """``[log]``: the log format and level."""

    format: LogFormat = Field(
        default="auto", description="json | console | auto (console on a terminal, json otherwise)"
    )
    level: LogLevel = Field(default="info", description="debug | info | warning | error | critical")

    @field_validator("format", "level", mode="before")
    @classmethod
    def _lowercase(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value
