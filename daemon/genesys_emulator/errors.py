"""Service-shaped errors: every API failure leaves as an ``ErrorBody``-shaped JSON document.

ApiError                      any /api/v2 failure (status + ErrorBody)
ControlError                  bad control-plane input -> 400 {"error": "..."}
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

USER_CONTEXT_MESSAGE = (
    "This request requires a user context. Client credentials cannot be used for requests to "
    "this resource."
)

_GENERIC_CODES = {
    400: (
        "bad.request",
        "The request could not be understood by the server due to malformed syntax.",
    ),
    401: ("bad.credentials", "Invalid login credentials."),
    403: ("not.authorized", "You are not authorized to perform the requested action."),
    404: ("not.found", "The requested resource was not found."),
    405: ("method.not.allowed", "The requested method is not allowed on this resource."),
    409: ("conflict", "The request conflicts with the current state of the resource."),
    500: ("internal.server.error", "The server encountered an unexpected condition."),
    502: ("bad.gateway", "The server received an invalid response from an upstream server."),
    503: ("service.unavailable", "The service is currently unavailable. Please try again later."),
    504: (
        "gateway.timeout",
        "The server did not receive a timely response from an upstream server.",
    ),
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.params = params or {}
        self.headers = headers or {}

    def body(self, context_id: str) -> dict[str, Any]:
        return error_body(self.status, self.code, self.message, context_id, self.params)


class ControlError(Exception):
    """Bad control-plane input; answered 400 {"error": message}."""


def error_body(
    status: int, code: str, message: str, context_id: str, params: dict[str, str] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "code": code, "status": status}
    if params:
        with_params = message
        for key, value in params.items():
            with_params = with_params.replace(value, "{" + key + "}")
        body["messageWithParams"] = with_params
        body["messageParams"] = dict(params)
    body.update({"contextId": context_id, "details": [], "errors": []})
    return body


def generic(status: int, message: str | None = None) -> ApiError:
    code, default = _GENERIC_CODES.get(status, ("error", "An error occurred."))
    return ApiError(status, code, message or default)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "bad.request", message)


def not_found(what: str, entity_id: str) -> ApiError:
    return ApiError(404, "not.found", f"{what} {entity_id} not found", {"id": entity_id})


def missing_permission(permission: str) -> ApiError:
    message = f"You are missing the following permission(s): [{permission}]"
    return ApiError(403, "not.authorized", message, {"permission": permission})


def forbidden(what: str, entity_id: str) -> ApiError:
    return ApiError(403, "not.authorized", f"Access to {what} {entity_id} is forbidden.")


def user_context_required(status: int = 403) -> ApiError:
    """The platform's refusal of a client-credentials token where a user is needed (400 or 403)."""
    code = "not.authorized" if status == 403 else "bad.request"
    return ApiError(status, code, USER_CONTEXT_MESSAGE)


def authentication_required() -> ApiError:
    message = "No authentication bearer token specified in authorization header."
    return ApiError(401, "authentication.required", message)


def bad_credentials() -> ApiError:
    return ApiError(401, "bad.credentials", "Invalid login credentials.")


def rate_limited_body(retry_after: int, context_id: str) -> dict[str, Any]:
    return {
        "message": (
            f"Rate limit exceeded the maximum. Retry the request in [{retry_after}] seconds"
        ),
        "code": "too.many.requests.retry.after",
        "status": 429,
        "contextId": context_id,
        "details": [],
        "errors": [],
    }


def json_response(
    body: object, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        text=json.dumps(body),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def control_error(message: str) -> web.Response:
    return json_response({"error": message}, status=400)
