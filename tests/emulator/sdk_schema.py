"""Check JSON payloads against the official SDK's models, so no test hand-writes expected JSON.

The Genesys Cloud Python SDK (`PureCloudPlatformClientV2`) is generated from the platform's own
API definition: every model class declares `swagger_types` (attribute -> type string) and
`attribute_map` (attribute -> JSON key), and its enum setters know the allowed values. That is the
best machine-readable statement of the platform's shapes we have, so the emulator is held to it:

    check(payload, "QueueConversationEventTopicConversation") -> ["$.participants[0]...: ..."]

`check` walks the payload and the model together and reports, each with a JSON path:
- a key the model does not declare (the real platform sometimes adds stray keys such as
  `additionalProperties`; the emulator must not invent any, so this is strict);
- a value of the wrong JSON type (`int` never accepts a bool, `float` accepts any number);
- a `datetime` that is not an ISO-8601 date-time with a zone (`Z` or `+00:00`), a bad `date`;
- an enum value the SDK would turn into `"outdated_sdk_version"`, or that only matches with a
  different letter case (the SDK compares case-insensitively; the platform does not vary case);
- a value the generated setter rejects outright (`ValueError`: lengths, ranges, patterns), which
  would make the SDK itself fail to deserialise the response;
- a JSON `null` (the platform omits absent fields) unless `allow_null=True`.

`roundtrip` deserialises the payload with the SDK's own deserialiser, serialises it back and reports
anything lost or changed, i.e. what a caller using the SDK would not see.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import PureCloudPlatformClientV2.models as sdk_models
from PureCloudPlatformClientV2.api_client import ApiClient

__all__ = [
    "assert_conforms",
    "check",
    "enum_values",
    "fields",
    "resolve",
    "roundtrip",
    "to_model",
]

OUTDATED = "outdated_sdk_version"
PRIMITIVES = frozenset(
    {"str", "int", "float", "bool", "date", "datetime", "object", "LocalDateTime", "YearMonth"}
)

_LIST = re.compile(r"list\[(?P<item>.*)\]")
_DICT = re.compile(r"dict\((?P<key>[^,]*), (?P<value>.*)\)")
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})",
)
_LOCAL_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_YEAR_MONTH = re.compile(r"\d{4}-\d{2}")
_ALLOWED = re.compile(r"allowed_values = (\[.*?\])", re.DOTALL)


@dataclass(frozen=True)
class Fields:
    """One model's declared fields, keyed by JSON name."""

    model: str
    by_json: dict[str, tuple[str, str]]  # JSON key -> (attribute, swagger type)


@dataclass(frozen=True)
class _Options:
    allow_null: bool
    strict_case: bool
    ignore_keys: frozenset[str]


# --- resolving type specs --------------------------------------------------------------------


def resolve(model: str | type) -> str:
    """Normalise a model class, a model name or a swagger type string to a swagger type string."""
    if isinstance(model, type):
        model = model.__name__
    if not isinstance(model, str):
        raise TypeError(f"model must be a class or a type string, not {model!r}")
    _validate_spec(model)
    return model


def _validate_spec(spec: str) -> None:
    if match := _LIST.fullmatch(spec):
        _validate_spec(match["item"])
    elif match := _DICT.fullmatch(spec):
        _validate_spec(match["value"])
    elif spec not in PRIMITIVES and not inspect.isclass(getattr(sdk_models, spec, None)):
        raise ValueError(
            f"{spec!r} is neither a primitive nor a model of PureCloudPlatformClientV2"
        )


@functools.cache
def fields(model: str) -> Fields:
    """The declared fields of SDK model `model` (a class name)."""
    instance = getattr(sdk_models, model)()
    by_json = {
        instance.attribute_map[attr]: (attr, swagger_type)
        for attr, swagger_type in instance.swagger_types.items()
    }
    return Fields(model=model, by_json=by_json)


@functools.cache
def _probe(model: str) -> Any:
    """One instance per model, used only to call its setters."""
    return getattr(sdk_models, model)()


@functools.cache
def enum_values(model: str, attr: str) -> tuple[str, ...] | None:
    """The allowed values the generated setter of `model.attr` declares, if it is an enum."""
    prop = getattr(getattr(sdk_models, model), attr, None)
    if not isinstance(prop, property) or prop.fset is None:
        return None
    match = _ALLOWED.search(inspect.getsource(prop.fset))
    if match is None:
        return None
    return tuple(_literal_list(match[1]))


def _literal_list(text: str) -> list[str]:
    return re.findall(r'"((?:[^"\\]|\\.)*)"', text)


# --- check -----------------------------------------------------------------------------------


def check(
    payload: object,
    model: str | type,
    *,
    allow_null: bool = False,
    strict_case: bool = True,
    ignore_keys: frozenset[str] | set[str] = frozenset(),
) -> list[str]:
    """Problems that make `payload` differ from SDK `model`; empty when it conforms.

    `model` is a model class, its name, or a swagger type string (`"list[WrapupCode]"`).
    `ignore_keys` names JSON keys that may appear anywhere without being declared.
    """
    options = _Options(allow_null, strict_case, frozenset(ignore_keys))
    problems: list[str] = []
    _check_value(payload, resolve(model), "$", options, problems)
    return problems


def assert_conforms(payload: object, model: str | type, **options: Any) -> None:
    """Fail with every problem, and with what the SDK round trip loses, listed one per line."""
    problems = check(payload, model, **options)
    if not problems:
        problems = roundtrip(payload, model)
    if problems:
        name = resolve(model)
        raise AssertionError(f"payload does not conform to {name}:\n  " + "\n  ".join(problems))


def _check_value(value: object, spec: str, path: str, options: _Options, out: list[str]) -> None:
    if value is None:
        if not options.allow_null:
            out.append(f"{path}: null (the platform omits absent fields), expected {spec}")
        return
    if match := _LIST.fullmatch(spec):
        _check_list(value, match["item"], path, options, out)
    elif match := _DICT.fullmatch(spec):
        _check_dict(value, match["value"], path, options, out)
    elif spec in PRIMITIVES:
        problem = _PRIMITIVE_CHECKS[spec](value)
        if problem:
            out.append(f"{path}: {problem}")
    else:
        _check_model(value, spec, path, options, out)


def _check_list(value: object, item: str, path: str, options: _Options, out: list[str]) -> None:
    if not isinstance(value, list):
        out.append(f"{path}: expected a list of {item}, got {_describe(value)}")
        return
    for index, element in enumerate(value):
        _check_value(element, item, f"{path}[{index}]", options, out)


def _check_dict(value: object, item: str, path: str, options: _Options, out: list[str]) -> None:
    if not isinstance(value, dict):
        out.append(f"{path}: expected an object of {item} values, got {_describe(value)}")
        return
    for key, element in value.items():
        _check_value(element, item, _child(path, key), options, out)


def _check_model(value: object, model: str, path: str, options: _Options, out: list[str]) -> None:
    if not isinstance(value, dict):
        out.append(f"{path}: expected a {model} object, got {_describe(value)}")
        return
    declared = fields(model).by_json
    for key, element in value.items():
        where = _child(path, key)
        if key not in declared:
            if key not in options.ignore_keys:
                out.append(f"{where}: unknown key for {model}")
            continue
        attr, spec = declared[key]
        before = len(out)
        _check_value(element, spec, where, options, out)
        if len(out) == before and element is not None and spec in ("str", "int", "float"):
            _check_setter(element, model, attr, where, options, out)


def _check_setter(
    value: object, model: str, attr: str, path: str, options: _Options, out: list[str]
) -> None:
    """Let the generated setter judge the value: enums, lengths, ranges, patterns."""
    probe = _probe(model)
    try:
        setattr(probe, attr, value)
    except ValueError as error:
        out.append(f"{path}: {value!r} rejected by {model}.{attr} setter: {error}")
        return
    allowed = enum_values(model, attr)
    if getattr(probe, attr) == OUTDATED and value != OUTDATED:
        listed = f" {list(allowed)}" if allowed else ""
        out.append(f"{path}: {value!r} not in enum{listed}")
    elif options.strict_case and allowed and isinstance(value, str) and value not in allowed:
        exact = [v for v in allowed if v.lower() == value.lower()]
        out.append(f"{path}: {value!r} matches enum value {exact} only ignoring case")


# --- primitives ------------------------------------------------------------------------------


def _expect_str(value: object) -> str | None:
    return None if isinstance(value, str) else f"expected str, got {_describe(value)}"


def _expect_int(value: object) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return None
    return f"expected int, got {_describe(value)}"


def _expect_float(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"expected number, got {_describe(value)}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"expected a finite number, got {value!r}"
    return None


def _expect_bool(value: object) -> str | None:
    return None if isinstance(value, bool) else f"expected bool, got {_describe(value)}"


def _expect_object(value: object) -> str | None:
    return None


def _expect_pattern(
    pattern: re.Pattern[str], parse: Callable[[str], object], what: str
) -> Callable[[object], str | None]:
    def expect(value: object) -> str | None:
        if not isinstance(value, str):
            return f"expected {what} string, got {_describe(value)}"
        if pattern.fullmatch(value) is None:
            return f"{value!r} is not {what}"
        try:
            parse(value)
        except ValueError as error:
            return f"{value!r} is not a valid {what}: {error}"
        return None

    return expect


def _parse_year_month(value: str) -> object:
    return date.fromisoformat(value + "-01")


_PRIMITIVE_CHECKS: dict[str, Callable[[object], str | None]] = {
    "str": _expect_str,
    "int": _expect_int,
    "float": _expect_float,
    "bool": _expect_bool,
    "object": _expect_object,
    "datetime": _expect_pattern(_DATETIME, datetime.fromisoformat, "ISO-8601 date-time with zone"),
    "LocalDateTime": _expect_pattern(_LOCAL_DATETIME, datetime.fromisoformat, "local date-time"),
    "date": _expect_pattern(_DATE, date.fromisoformat, "ISO-8601 date"),
    "YearMonth": _expect_pattern(_YEAR_MONTH, _parse_year_month, "year-month"),
}


# --- round trip ------------------------------------------------------------------------------


def roundtrip(payload: object, model: str | type) -> list[str]:
    """What is lost or changed when the SDK deserialises `payload` and serialises it back."""
    spec = resolve(model)
    client = _client()
    try:
        parsed = client._ApiClient__deserialize(payload, spec)
    except Exception as error:  # the SDK raises ApiException, ValueError, TypeError, ...
        return [f"$: the SDK cannot deserialise it as {spec}: {error!r}"]
    again = client.sanitize_for_serialization(parsed)
    problems: list[str] = []
    _compare(payload, again, spec, "$", problems)
    return problems


@functools.cache
def _client() -> ApiClient:
    return ApiClient(host="http://127.0.0.1:9")  # never called: only its (de)serialiser is used


def _compare(before: object, after: object, spec: str, path: str, out: list[str]) -> None:
    if before is None:
        return
    if after is None:
        out.append(f"{path}: lost in the SDK round trip (was {_short(before)})")
    elif (match := _LIST.fullmatch(spec)) and isinstance(before, list):
        _compare_list(before, after, match["item"], path, out)
    elif (match := _DICT.fullmatch(spec)) and isinstance(before, dict):
        _compare_dict(before, after, match["value"], path, out)
    elif spec not in PRIMITIVES and isinstance(before, dict):
        _compare_model(before, after, spec, path, out)
    elif not _same_scalar(before, after, spec):
        out.append(f"{path}: {_short(before)} came back as {_short(after)}")


def _compare_list(before: list[Any], after: object, item: str, path: str, out: list[str]) -> None:
    if not isinstance(after, list) or len(after) != len(before):
        out.append(f"{path}: list came back as {_short(after)}")
        return
    for index, (old, new) in enumerate(zip(before, after, strict=True)):
        _compare(old, new, item, f"{path}[{index}]", out)


def _compare_dict(
    before: dict[str, Any], after: object, item: str, path: str, out: list[str]
) -> None:
    if not isinstance(after, dict):
        out.append(f"{path}: object came back as {_short(after)}")
        return
    for key, old in before.items():
        _compare(old, after.get(key), item, _child(path, key), out)


def _compare_model(
    before: dict[str, Any], after: object, model: str, path: str, out: list[str]
) -> None:
    if not isinstance(after, dict):
        out.append(f"{path}: {model} came back as {_short(after)}")
        return
    declared = fields(model).by_json
    for key, old in before.items():
        where = _child(path, key)
        if key not in declared:
            out.append(f"{where}: dropped by the SDK (not a field of {model})")
        else:
            _compare(old, after.get(key), declared[key][1], where, out)


def _same_scalar(before: object, after: object, spec: str) -> bool:
    if spec in ("datetime", "LocalDateTime", "date") and isinstance(before, str):
        try:
            return _as_instant(before, spec) == _as_instant(str(after), spec)
        except ValueError:
            return False
    if spec == "float":
        return before == after
    return before == after and type(before) is type(after)


def _as_instant(text: str, spec: str) -> object:
    return date.fromisoformat(text[:10]) if spec == "date" else datetime.fromisoformat(text)


# --- formatting ------------------------------------------------------------------------------


def _child(path: str, key: object) -> str:
    if isinstance(key, str) and _IDENTIFIER.fullmatch(key):
        return f"{path}.{key}"
    return f"{path}[{key!r}]"


def _describe(value: object) -> str:
    kind = {dict: "object", list: "list", str: "str", bool: "bool", int: "int", float: "float"}
    return f"{kind.get(type(value), type(value).__name__)} {_short(value)}"


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def to_model(payload: object, model: str | type) -> Any:
    """The SDK object for `payload`, built by the SDK's own deserialiser (handy for request bodies)."""
    return _client()._ApiClient__deserialize(payload, resolve(model))
