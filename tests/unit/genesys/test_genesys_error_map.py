from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from PureCloudPlatformClientV2.rest import ApiException

from wrapupd.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    TransportError,
    Unauthorized,
    UserContextRequired,
)
from wrapupd.genesys.error_map import (
    DEFAULT_RETRY_AFTER,
    map_api_exception,
    platform_errors,
    retry_after_seconds,
)
from wrapupd.genesys.http import HttpResponse
from wrapupd.retry import Retry, classify

PATCH = "/api/v2/conversations/{conversationId}/participants/{participantId}"


def api_exception(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    data = body if isinstance(body, str) else json.dumps(body) if body is not None else ""
    return ApiException(http_resp=HttpResponse(status, "Reason", data, headers or {}))


def error_body(status: int, code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"message": message, "code": code, "status": status, "contextId": "ctx-1",
            "details": [], "errors": [], **extra}  # fmt: skip


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, BadRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (429, RateLimited),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (405, ApiError),
        (413, ApiError),
    ],
)
def test_status_decides_the_type(status: int, kind: type[ApiError]) -> None:
    exc = api_exception(status, error_body(status, "some.code", "went wrong"))
    error = map_api_exception(exc, method="PATCH", endpoint=PATCH)
    assert type(error) is kind
    assert isinstance(error, ApiError)
    assert (error.status, error.code, error.context_id) == (status, "some.code", "ctx-1")
    assert (error.method, error.endpoint, error.message) == ("PATCH", PATCH, "went wrong")
    assert str(error) == f"PATCH {PATCH}: {status} [some.code] went wrong (contextId ctx-1)"


def test_retryable_flags() -> None:
    assert isinstance(classify(map_api_exception(api_exception(503))), Retry)
    assert isinstance(classify(map_api_exception(api_exception(429))), Retry)
    assert not isinstance(classify(map_api_exception(api_exception(400))), Retry)


def test_forbidden_missing_permissions_from_message_params() -> None:
    body = error_body(
        403,
        "missing.permissions",
        "You are missing the following permission(s): [conversation:participant:wrapup]",
        messageParams={"permissions": "[conversation:participant:wrapup, routing:queue:view]"},
    )
    error = map_api_exception(api_exception(403, body))
    assert isinstance(error, Forbidden)
    assert error.missing_permissions == ("conversation:participant:wrapup", "routing:queue:view")
    assert not error.user_context_required


def test_forbidden_missing_permissions_from_message_text() -> None:
    message = "Missing permission: analytics:conversationDetail:view"
    error = map_api_exception(api_exception(403, error_body(403, "not.authorized", message)))
    assert isinstance(error, Forbidden)
    assert error.missing_permissions == ("analytics:conversationDetail:view",)


def test_forbidden_user_context_required() -> None:
    message = (
        "This request requires a user context. Client credentials cannot be used for requests "
        "to this resource."
    )
    error = map_api_exception(api_exception(403, error_body(403, "not.authorized", message)))
    assert isinstance(error, Forbidden)
    assert error.user_context_required
    assert error.missing_permissions == ()


USER_CONTEXT = (
    "This request requires a user context. Client credentials cannot be used for requests "
    "to this resource."
)


@pytest.mark.parametrize(
    ("status", "code", "message", "expected"),
    [
        (400, "bad.request", USER_CONTEXT, UserContextRequired),  # the measured capture
        (403, "not.authorized", USER_CONTEXT, UserContextRequired),
        (400, "bad.request", "THIS REQUEST REQUIRES A USER CONTEXT.", UserContextRequired),
        (400, "bad.request", "Client Credentials cannot be used here", UserContextRequired),
        (403, "requires.a.user.context", "Forbidden", UserContextRequired),  # marker in the code
        (404, "not.found", USER_CONTEXT, UserContextRequired),  # any 4xx
        (409, "conflict", USER_CONTEXT, UserContextRequired),
        (401, "bad.credentials", USER_CONTEXT, Unauthorized),  # a dead token stays a dead token
        (429, "too.many.requests", USER_CONTEXT, RateLimited),
        (500, "internal.server.error", USER_CONTEXT, ServerError),
        (400, "bad.request", "Invalid wrap-up code", BadRequest),
        (403, "not.authorized", "Access to Conversation c1 is forbidden.", Forbidden),
        (400, "bad.request", "a user context would be needed", BadRequest),
    ],
)
def test_user_context_refusal_on_any_4xx(
    status: int, code: str, message: str, expected: type[Exception]
) -> None:
    error = map_api_exception(
        api_exception(status, error_body(status, code, message)), method="PATCH", endpoint=PATCH
    )
    assert type(error) is expected
    if isinstance(error, Forbidden):
        assert error.user_context_required is (expected is UserContextRequired)
    if expected is UserContextRequired:
        assert isinstance(error, Forbidden) and error.status == status and error.code == code


def test_user_context_marker_in_message_with_params() -> None:
    body = error_body(400, "bad.request", "Bad request", messageWithParams=USER_CONTEXT)
    assert isinstance(map_api_exception(api_exception(400, body)), UserContextRequired)


def test_forbidden_plain() -> None:
    message = "Access to Conversation c1 is forbidden."
    error = map_api_exception(api_exception(403, error_body(403, "not.authorized", message)))
    assert isinstance(error, Forbidden)
    assert error.missing_permissions == () and not error.user_context_required


RATE_MESSAGE = "Rate limit exceeded the maximum. Retry the request in [7] seconds"


def test_rate_limited_uses_retry_after_header() -> None:
    body = error_body(429, "too.many.requests.retry.after", RATE_MESSAGE)
    error = map_api_exception(api_exception(429, body, {"Retry-After": "3"}))
    assert isinstance(error, RateLimited)
    assert error.retry_after == 3.0
    assert error.code == "too.many.requests.retry.after"


def test_rate_limited_falls_back_to_message_then_reset_then_default() -> None:
    body = error_body(429, "too.many.requests.retry.after", RATE_MESSAGE)
    error = map_api_exception(api_exception(429, body))
    assert isinstance(error, RateLimited) and error.retry_after == 7.0
    plain = error_body(429, "too.many.requests", "slow down")
    error = map_api_exception(api_exception(429, plain, {"inin-ratelimit-reset": "12"}))
    assert isinstance(error, RateLimited) and error.retry_after == 12.0
    error = map_api_exception(api_exception(429, plain))
    assert isinstance(error, RateLimited) and error.retry_after == DEFAULT_RETRY_AFTER


def test_retry_after_http_date_and_case() -> None:
    now = datetime(2025, 6, 10, 12, 0, 0, tzinfo=UTC)
    headers = {"retry-after": "Tue, 10 Jun 2025 12:00:05 GMT"}
    assert retry_after_seconds(headers, None, now=now) == 5.0
    assert retry_after_seconds({"Retry-After": "garbage"}, RATE_MESSAGE) == 7.0


def test_non_json_body_keeps_a_short_excerpt() -> None:
    html = "<html><body>" + "Bad Gateway " * 100 + "</body></html>"
    error = map_api_exception(api_exception(502, html), method="GET", endpoint="/x")
    assert isinstance(error, ServerError)
    assert error.message.startswith("<html><body>Bad Gateway")
    assert len(error.message) <= 500
    assert error.code is None


def test_empty_body_uses_status_and_reason() -> None:
    error = map_api_exception(api_exception(404))
    assert isinstance(error, NotFound)
    assert error.message == "HTTP 404 Reason"


def test_status_zero_is_a_transport_error() -> None:
    error = map_api_exception(ApiException(status=0, reason="SSLError\ncertificate verify failed"))
    assert type(error) is TransportError


def test_context_manager_maps_and_hides_the_sdk_exception() -> None:
    with pytest.raises(NotFound) as info, platform_errors("GET", "/api/v2/conversations/{id}"):
        raise api_exception(404, error_body(404, "not.found", "gone"))
    assert info.value.endpoint == "/api/v2/conversations/{id}"
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_context_manager_lets_other_errors_through() -> None:
    with pytest.raises(KeyError), platform_errors("GET", "/x"):
        raise KeyError("k")
