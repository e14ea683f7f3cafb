"""Loading the settings: every source read, merged and validated, and every problem reported at once
in words a tired operator can act on (the setting, the value given, what is allowed)."""

from __future__ import annotations

import os
import re
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import SettingsError

from wrapupd.errors import ConfigError
from wrapupd.settings.schema import Settings
from wrapupd.settings.sections import CREDENTIAL_NAME, ENV_PREFIX, ENV_SECRET_FILE
from wrapupd.settings.sources import CURRENT_LAYERS, Layers, report


def load_settings(
    config_file: Path | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Read, merge and validate every source; raise one ConfigError listing every problem.

    ``env`` defaults to ``os.environ``; tests pass a dict so nothing leaks in from the machine.
    """
    environment = os.environ if env is None else env
    layers = Layers.gather(config_file, environment, set(Settings.model_fields))
    result = _validate(layers)
    if isinstance(result, Settings) and not layers.stray_env:
        result._refresh_token_seed = layers.refresh_token_seed
        return result
    problems = [*layers.stray_env, *([] if isinstance(result, Settings) else result)]
    # Raised outside any ``except``: the ValidationError (whose text may quote the secret) must
    # not ride along as __context__ into a traceback.
    raise ConfigError(report(problems, layers.origin))


def _validate(layers: Layers) -> Settings | list[str]:
    token = CURRENT_LAYERS.set(layers)
    try:
        return Settings()  # type: ignore[call-arg]  # values come from the sources
    except ValidationError as exc:
        secrets = _secrets_given(layers)
        return [_unquoted(_describe(error, secrets), secrets) for error in exc.errors()]
    except SettingsError as exc:
        return [_env_parse_problem(str(exc))]
    finally:
        CURRENT_LAYERS.reset(token)


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


_MISSING_HINTS = {
    "genesys": " (a [genesys] table with region, client_id, client_secret)",
    "queues": " (at least one [[queues]] entry with queue and default_code)",
    "genesys.client_secret": (
        f" (set it in the file, {ENV_PREFIX}GENESYS__CLIENT_SECRET, {ENV_SECRET_FILE},"
        f" or systemd LoadCredential={CREDENTIAL_NAME}:<file>)"
    ),
}


# Keys whose values are credentials, wherever they are given (file, environment, secret file).
_SECRET_WORDS = ("secret", "password", "token")
# Shorter values are placeholders, not credentials: hiding every "s" would make messages unreadable.
_SHORTEST_CREDENTIAL = 6


def _secrets_given(layers: Layers) -> tuple[str, ...]:
    """Every credential value the sources hold, lower-cased: an error must quote none of them."""
    found: list[str] = []
    for layer in (layers.file, layers.secret):
        _collect_secrets(layer, found)
    for key, value in layers.env.items():
        if key.upper().startswith(ENV_PREFIX) and _names_a_secret(key):
            found.append(value)
    values = {value.strip().lower() for value in found}
    return tuple(v for v in values if len(v) >= _SHORTEST_CREDENTIAL)


def _unquoted(problem: str, secrets: tuple[str, ...]) -> str:
    """The last guard: a credential inside any message (one of ours quoting a value) is hidden."""
    for secret in secrets:
        problem = re.sub(re.escape(secret), "(not shown)", problem, flags=re.IGNORECASE)
    return problem


def _collect_secrets(value: object, found: list[str], key: str = "") -> None:
    if isinstance(value, dict):
        for name, item in value.items():
            _collect_secrets(item, found, str(name))
    elif isinstance(value, list):
        for item in value:
            _collect_secrets(item, found, key)
    elif _names_a_secret(key) and value is not None:
        found.append(str(value))


def _names_a_secret(key: str) -> bool:
    """``client_secret``, ``WRAPUPD_LEDGER__PASSWORD`` …, but not ``client_secret_file``."""
    lower = key.lower()
    return any(word in lower for word in _SECRET_WORDS) and not lower.endswith("_file")


def _describe(error: ErrorDetails, secrets: tuple[str, ...]) -> str:
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
    if kind == "model_type":
        # Whatever stands where a table belongs is not quoted: it may be a pasted secret.
        return f"{path}: must be a table of settings, not a single value"
    given = _given(path, error["input"], secrets)
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return f"{path}: {given}must not be empty"
    return f"{path}: {given}{_allowed(error['msg'])}"


def _dotted(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _given(path: str, value: object, secrets: tuple[str, ...]) -> str:
    """The offending value, quoted as given; secrets and whole tables are never echoed.

    Nor is a value that holds a credential given elsewhere (a secret pasted one line off).
    """
    if "secret" in path or "password" in path or path == "ledger.url":
        return "invalid value (not shown); "
    if any(secret in str(value).lower() for secret in secrets):
        return "invalid value (not shown: it holds a credential); "
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
        nested = model_of(info.annotation) if info is not None else None
        if nested is None:
            return None
        model = nested
    return model


def model_of(annotation: Any) -> type[BaseModel] | None:
    """The model inside ``Model``, ``list[Model]`` or ``Model | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = model_of(arg)
        if found is not None:
            return found
    return None
