"""A deployment problem no retry can fix is a Hold: the item stays pending, never ends as
forbidden or too late, and the operator is told the remedy."""

from __future__ import annotations

import pytest

from wrapupd.errors import Forbidden, LoginRequired, PlatformError, UserContextRequired
from wrapupd.retry import Call, Final, Hold, classify

USER_CONTEXT = (
    "This request requires a user context. Client credentials cannot be used for requests to "
    "this resource."
)


@pytest.mark.parametrize("status", [400, 403])
def test_the_user_context_refusal_holds_a_write_whatever_its_4xx(status: int) -> None:
    verdict = classify(UserContextRequired(USER_CONTEXT, status=status), Call.WRITE)
    assert isinstance(verdict, Hold)
    assert verdict.problem == "user_context_required"
    assert 'grant = "authorization_code"' in verdict.remedy


def test_a_403_carrying_the_marker_is_held_like_the_typed_refusal() -> None:
    verdict = classify(Forbidden(USER_CONTEXT, status=403), Call.WRITE)
    assert isinstance(verdict, Hold) and verdict.problem == "user_context_required"


@pytest.mark.parametrize("call", [Call.READ, Call.WRITE])
def test_a_refused_refresh_token_holds_reads_and_writes_until_a_new_login(call: Call) -> None:
    verdict = classify(LoginRequired("the refresh token expired", status=400), call)
    assert isinstance(verdict, Hold)
    assert verdict.problem == "login_required"
    assert "wrapupd login" in verdict.remedy


def test_a_missing_permission_still_ends_the_item_as_forbidden() -> None:
    verdict = classify(Forbidden("Access is forbidden.", status=403), Call.WRITE)
    assert isinstance(verdict, Final)


def test_a_hold_says_what_the_platform_said() -> None:
    error: PlatformError = UserContextRequired(USER_CONTEXT, status=400)
    verdict = classify(error, Call.WRITE)
    assert isinstance(verdict, Hold) and USER_CONTEXT in verdict.detail
