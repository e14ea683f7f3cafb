"""Where settings come from, read up front: the TOML file, the environment, the secret file.

Each source becomes a pydantic-settings source so that validation sees one merged document and
unknown keys still reach ``extra="forbid"``; every I/O problem is collected, not raised one by one.
"""

from __future__ import annotations

import contextvars
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

from wrapupd.errors import ConfigError
from wrapupd.settings.sections import (
    CREDENTIAL_NAME,
    ENV_CONFIG_FILE,
    ENV_DEFAULTS_FILE,
    ENV_LEDGER_PASSWORD_FILE,
    ENV_PREFIX,
    ENV_SECRET_FILE,
    LEDGER_CREDENTIAL_NAME,
    REFRESH_TOKEN_CREDENTIAL,
)


class DictSource(PydanticBaseSettingsSource):
    """Already-read data, passed on untouched (so unknown keys still reach ``extra="forbid"``)."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """The value of one top-level key, as read."""
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._data


class MappingEnvSource(EnvSettingsSource):
    """The stock environment source, reading a given mapping instead of ``os.environ``.

    ``_load_env_vars`` is the hook pydantic-settings' own dotenv source overrides.
    """

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._mapping = env
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._mapping, self.case_sensitive, self.env_ignore_empty)


@dataclass(frozen=True)
class Layers:
    """What each source contributes, read up front so every I/O problem is reported together."""

    file: dict[str, Any]
    env: Mapping[str, str]
    secret: dict[str, Any]
    origin: str

    stray_env: tuple[str, ...] = ()
    refresh_token_seed: Path | None = None

    @classmethod
    def gather(cls, config_file: Path | None, env: Mapping[str, str], sections: set[str]) -> Layers:
        """Read the file and the secret; a problem there stops loading before validation.

        Without the file, validation would only add noise ("genesys: required"). Stray
        environment variables are kept and reported together with the validation problems.
        """
        problems: list[str] = []
        path = Path(config_file) if config_file is not None else _env_path(env, ENV_CONFIG_FILE)
        data = _under(_packaged_defaults(env, problems), _read_toml(path, problems) if path else {})
        secret = _read_secret(data, env, problems) | _read_ledger_password(data, env, problems)
        stray = tuple(_stray_env_vars(env, sections))
        if problems:
            raise ConfigError(report([*problems, *stray], _origin(path)))
        return cls(
            file=data,
            env=env,
            secret=secret,
            origin=_origin(path),
            stray_env=stray,
            refresh_token_seed=_credential(env, REFRESH_TOKEN_CREDENTIAL),
        )


def _packaged_defaults(env: Mapping[str, str], problems: list[str]) -> dict[str, Any]:
    """The ``WRAPUPD_DEFAULTS_FILE`` a package ships (the container image does), or {}."""
    path = _env_path(env, ENV_DEFAULTS_FILE)
    return _read_toml(path, problems) if path is not None else {}


def _under(defaults: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """``data`` over ``defaults``, table by table: a key the settings file sets always wins."""
    merged = dict(defaults)
    for key, value in data.items():
        below = merged.get(key)
        merged[key] = (
            _under(below, value) if isinstance(below, dict) and isinstance(value, dict) else value
        )
    return merged


def _credential(env: Mapping[str, str], name: str) -> Path | None:
    """A systemd credential's file (``LoadCredential=<name>:…``), when the unit passed one."""
    directory = _env_lookup(env, "CREDENTIALS_DIRECTORY")
    path = Path(directory) / name if directory else None
    return path if path is not None and path.is_file() else None


CURRENT_LAYERS: contextvars.ContextVar[Layers | None] = contextvars.ContextVar(
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


def _stray_env_vars(env: Mapping[str, str], sections: set[str]) -> list[str]:
    """``WRAPUPD_*`` variables that set nothing: a typo would otherwise be silently ignored."""
    problems = []
    for key in sorted(env):
        upper = key.upper()
        if not upper.startswith(ENV_PREFIX) or upper in (ENV_CONFIG_FILE, ENV_DEFAULTS_FILE):
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


@dataclass(frozen=True)
class _SecretFile:
    """A secret that may come from a file: where the file is named, and where its value goes."""

    section: str
    key: str
    env_file: str
    credential: str
    meaning: str

    def layer(
        self, file_data: dict[str, Any], env: Mapping[str, str], problems: list[str]
    ) -> dict[str, Any]:
        """The secret from a file, as a source layer above the environment.

        An explicit ``<key>_file`` (environment, else TOML) wins over systemd's
        ``$CREDENTIALS_DIRECTORY/<credential>``; a missing credentials file there is not an error,
        the directory may hold other credentials.
        """
        explicit = _env_path(env, self.env_file) or self._toml_file(file_data)
        if explicit is not None:
            return self._read(explicit, f"{self.section}.{self.key}_file", problems)
        directory = _env_lookup(env, "CREDENTIALS_DIRECTORY")
        if directory and (Path(directory) / self.credential).exists():
            return self._read(Path(directory) / self.credential, "$CREDENTIALS_DIRECTORY", problems)
        return {}

    def _toml_file(self, file_data: dict[str, Any]) -> Path | None:
        table = file_data.get(self.section)
        value = table.get(f"{self.key}_file") if isinstance(table, dict) else None
        return Path(value) if isinstance(value, str) and value else None

    def _read(self, path: Path, setting: str, problems: list[str]) -> dict[str, Any]:
        try:
            secret = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            problems.append(f"{setting}: cannot read {path} ({exc.strerror})")
            return {}
        except UnicodeDecodeError:
            problems.append(f"{setting}: {path} is not UTF-8 text")
            return {}
        if not secret:
            problems.append(f"{setting}: {path} is empty; it must hold the {self.meaning}")
            return {}
        return {self.section: {self.key: secret}}


_CLIENT_SECRET = _SecretFile(
    "genesys", "client_secret", ENV_SECRET_FILE, CREDENTIAL_NAME, "OAuth client secret"
)
_LEDGER_PASSWORD = _SecretFile(
    "ledger", "password", ENV_LEDGER_PASSWORD_FILE, LEDGER_CREDENTIAL_NAME, "database password"
)


def _read_secret(
    file_data: dict[str, Any], env: Mapping[str, str], problems: list[str]
) -> dict[str, Any]:
    """The OAuth client secret from a file or a systemd credential, when one is named."""
    return _CLIENT_SECRET.layer(file_data, env, problems)


def _read_ledger_password(
    file_data: dict[str, Any], env: Mapping[str, str], problems: list[str]
) -> dict[str, Any]:
    """The ledger's database password from a file or the systemd credential ``ledger_password``."""
    return _LEDGER_PASSWORD.layer(file_data, env, problems)


def report(problems: Sequence[str], origin: str) -> str:
    """Every problem on its own line under one heading that says where settings came from."""
    noun = "problem" if len(problems) == 1 else "problems"
    lines = [f"invalid wrapupd configuration ({origin}): {len(problems)} {noun}"]
    lines += [f"  {problem}" for problem in problems]
    return "\n".join(lines)
