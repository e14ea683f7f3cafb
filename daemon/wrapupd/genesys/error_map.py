"""``ApiException`` -> :mod:`wrapupd.errors`, in one place at the SDK boundary.

Decisions are made on the HTTP status (Genesys documents no wrap-up-specific error codes); the
platform's ``ErrorBody`` fields ``code``, ``message`` and ``contextId`` are carried over for logs.
Nothing from the request (headers, token, secret) ever reaches a message: only the answer's body.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from wrapupd.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PlatformError,
    RateLimited,
    ServerError,
    TransportError,
    Unauthorized,
    UserContextRequired,
    WrapupdError,
)
from wrapupd.genesys.http import endpoint
from wrapupd.genesys.sdk import ApiException

T = TypeVar("T")

__all__ = [
    "DEFAULT_RETRY_AFTER",
    "USER_CONTEXT_MARKERS",
    "ErrorBody",
    "invoke_mapped",
    "map_api_exception",
    "parse_error_body",
    "platform_errors",
    "refuses_client_credentials",
    "retry_after_seconds",
]

DEFAULT_RETRY_AFTER = 10.0  # seconds, when a 429 names no wait at all
_MAX_MESSAGE = 500
_RETRY_IN = re.compile(r"Retry the request in \[?(\d+(?:\.\d+)?)\]? seconds?", re.IGNORECASE)
# "This request requires a user context. Client credentials cannot be used for requests to this
# resource." (measured as a 400 on GET /api/v2/users/me; a 403 is also possible). A code is read
# with its dots and underscores as spaces, so "requires.a.user.context" would match too.
USER_CONTEXT_MARKERS = ("requires a user context", "client credentials cannot be used")
_WORD_SEPARATORS = re.compile(r"[\s._]+")
_PERMISSION = re.compile(r"\b[A-Za-z][\w-]*:[\w*-]+:[\w*-]+\b")
_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
}


class ErrorBody:
    """The fields of the platform's ``ErrorBody`` that wrapupd reads (all optional)."""

    __slots__ = ("code", "context_id", "message", "raw")

    def __init__(self, raw: Mapping[str, Any], fallback_message: str) -> None:
        self.raw = raw
        self.code = _opt_str(raw.get("code"))
        self.context_id = _opt_str(raw.get("contextId"))
        self.message = _opt_str(raw.get("message")) or fallback_message


def parse_error_body(body: object, fallback_message: str) -> ErrorBody:
    """Read a JSON ``ErrorBody``; a non-JSON answer (a proxy's HTML page) keeps a short excerpt."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if not isinstance(text, str) or not text.strip():
        return ErrorBody({}, fallback_message)
    try:
        raw = json.loads(text)
    except ValueError:
        return ErrorBody({}, _shorten(" ".join(text.split())) or fallback_message)
    if not isinstance(raw, dict):
        return ErrorBody({}, fallback_message)
    return ErrorBody(raw, fallback_message)


def map_api_exception(
    exc: Any,
    *,
    method: str | None = None,
    endpoint: str | None = None,
    now: datetime | None = None,
) -> PlatformError:
    """The wrapupd error for one ``ApiException`` (``exc`` is typed loosely: the SDK is untyped)."""
    status = exc.status if isinstance(exc.status, int) else 0
    reason = _opt_str(exc.reason) or "no reason given"
    if status == 0:  # the SDK's own SSL / deserialisation failures carry no HTTP status
        where = f"{method} {endpoint}: " if method and endpoint else ""
        return TransportError(f"{where}{_shorten(reason)}")
    body = parse_error_body(exc.body, f"HTTP {status} {reason}")
    kw: dict[str, Any] = {
        "status": status,
        "code": body.code,
        "context_id": body.context_id,
        "method": method,
        "endpoint": endpoint,
    }
    message = _shorten(body.message)
    if 400 <= status < 500 and status not in (401, 429) and refuses_client_credentials(body):
        return UserContextRequired(message, **kw)
    if status == 403:
        return Forbidden(message, missing_permissions=missing_permissions(body), **kw)
    if status == 429:
        headers = _headers(exc)
        wait = retry_after_seconds(headers, body.message, now=now)
        return RateLimited(message, retry_after=wait, **kw)
    if status >= 500:
        return ServerError(message, **kw)
    return _BY_STATUS.get(status, ApiError)(message, **kw)


@contextlib.contextmanager
def platform_errors(method: str, endpoint: str) -> Iterator[None]:
    """Raise the wrapupd error for any ``ApiException`` escaping the block."""
    try:
        yield
    except ApiException as exc:
        # ``from None``: the SDK's exception text dumps every response header; keep logs lean.
        raise map_api_exception(exc, method=method, endpoint=endpoint) from None


def retry_after_seconds(
    headers: Mapping[str, str], message: str | None, *, now: datetime | None = None
) -> float:
    """``Retry-After`` (seconds or an HTTP date), else "Retry the request in [N] seconds", else
    ``inin-ratelimit-reset``, else :data:`DEFAULT_RETRY_AFTER`."""
    for value in (_header(headers, "Retry-After"), _from_message(message)):
        seconds = _parse_wait(value, now)
        if seconds is not None:
            return seconds
    reset = _parse_wait(_header(headers, "inin-ratelimit-reset"), now)
    return reset if reset is not None and reset > 0 else DEFAULT_RETRY_AFTER


def refuses_client_credentials(body: ErrorBody) -> bool:
    """The platform's user-context refusal: its marker in the message or the code, any case."""
    texts = (body.message, _opt_str(body.raw.get("messageWithParams")), body.code)
    for text in texts:
        if text is None:
            continue
        words = " ".join(_WORD_SEPARATORS.split(text.lower()))
        if any(marker in words for marker in USER_CONTEXT_MARKERS):
            return True
    return False


def missing_permissions(body: ErrorBody) -> tuple[str, ...]:
    """Permissions named by a 403: ``messageParams`` values first, else the message text."""
    found: list[str] = []
    params = body.raw.get("messageParams")
    if isinstance(params, dict):
        for key, value in params.items():
            if "permission" in str(key).lower():
                found.extend(_PERMISSION.findall(_flatten(value)))
    if not found and "permission" in body.message.lower():
        found.extend(_PERMISSION.findall(body.message))
    return tuple(dict.fromkeys(found))


def _parse_wait(value: str | None, now: datetime | None) -> float | None:
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _from_message(message: str | None) -> str | None:
    match = _RETRY_IN.search(message or "")
    return match.group(1) if match else None


def _headers(exc: Any) -> Mapping[str, str]:
    headers = getattr(exc, "headers", None)
    return headers if isinstance(headers, Mapping) else {}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # plain dicts are case-sensitive; urllib3's HTTPHeaderDict is not
        lowered = name.lower()
        value = next((v for k, v in headers.items() if str(k).lower() == lowered), None)
    return str(value) if value is not None else None


def _flatten(value: object) -> str:
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    return str(value)


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def invoke_mapped(method: str, template: str, fn: Callable[[], T]) -> T:
    """In a worker thread: name the endpoint for metrics, map every failure to wrapupd errors."""
    with endpoint(template), platform_errors(method, template):
        try:
            return fn()
        except (WrapupdError, ApiException):
            raise
        except Exception as exc:  # the SDK could not read the answer (or build the request)
            detail = f"{type(exc).__name__}: {exc}"[:300]
            raise PlatformError(f"{method} {template}: unreadable answer ({detail})") from exc
