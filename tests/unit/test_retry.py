"""The one retry classifier, as a table: every platform error, for a read and for the write."""

from __future__ import annotations

import math

import pytest

from wrapupd.errors import (
    AuthenticationFailed,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PlatformError,
    RateLimited,
    RequestTimeout,
    ServerError,
    TransportError,
    Unauthorized,
)
from wrapupd.events import Outcome
from wrapupd.retry import MAX_RETRY_AFTER, Call, Final, Hold, Recheck, Retry, Verdict, classify


def kind(verdict: Verdict) -> str:
    """The verdict as one short word, so the table reads like the module docstring."""
    if isinstance(verdict, Retry):
        after = "" if verdict.after is None else f"({verdict.after:g})"
        return f"retry{after}"
    if isinstance(verdict, Recheck):
        return "recheck"
    return f"final:{verdict.outcome.value}"


TABLE: list[tuple[PlatformError, str, str]] = [
    # error                                                      READ                WRITE
    (RateLimited("slow", status=429, retry_after=3.0), "retry(3)", "retry(3)"),
    (Forbidden("no", status=403), "final:forbidden", "final:forbidden"),
    (NotFound("gone", status=404), "final:too_late", "recheck"),
    (BadRequest("bad", status=400), "final:failed", "recheck"),
    (Conflict("changed", status=409), "final:failed", "recheck"),
    (ServerError("down", status=503), "retry", "retry"),
    (Unauthorized("expired", status=401), "retry", "retry"),
    (RequestTimeout("slow"), "retry", "retry"),
    (TransportError("refused"), "retry", "retry"),
    (AuthenticationFailed("no token"), "retry", "retry"),
]


@pytest.mark.parametrize(
    ("error", "read", "write"), TABLE, ids=[type(e).__name__ for e, _, _ in TABLE]
)
def test_every_platform_error_has_one_verdict_per_call(
    error: PlatformError, read: str, write: str
) -> None:
    assert (kind(classify(error, Call.READ)), kind(classify(error, Call.WRITE))) == (read, write)


def test_a_read_is_the_default_call() -> None:
    assert classify(NotFound("gone", status=404)) == classify(
        NotFound("gone", status=404), Call.READ
    )


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        (0.0, 0.0),
        (-5.0, 0.0),
        (math.inf, MAX_RETRY_AFTER),
        (math.nan, MAX_RETRY_AFTER),
        (1e9, MAX_RETRY_AFTER),
    ],
    ids=["now", "negative", "infinite", "nan", "absurd"],
)
def test_a_retry_after_is_bounded_before_anyone_waits_on_it(
    retry_after: float, expected: float
) -> None:
    verdict = classify(RateLimited("slow", status=429, retry_after=retry_after), Call.WRITE)
    assert verdict == Retry(after=expected)


def test_a_read_refused_for_a_permission_names_it() -> None:
    error = Forbidden("nope", status=403, missing_permissions=("conversation:communication:view",))
    verdict = classify(error, Call.READ)
    assert isinstance(verdict, Final) and verdict.outcome is Outcome.FORBIDDEN
    assert "conversation:communication:view" in verdict.detail


def test_a_write_refused_for_client_credentials_says_it_is_a_deployment_problem() -> None:
    error = Forbidden(f"This request {Forbidden.USER_CONTEXT_MARKER}.", status=403)
    verdict = classify(error, Call.WRITE)
    assert isinstance(verdict, Hold) and "user context" in verdict.detail
    assert "authorization_code" in verdict.remedy


def test_a_write_refused_without_named_permissions_names_the_wrapup_permission() -> None:
    verdict = classify(Forbidden("nope", status=403), Call.WRITE)
    assert isinstance(verdict, Final) and "conversation:participant:wrapup" in verdict.detail


def test_a_refused_write_carries_the_refusal_for_the_record() -> None:
    verdict = classify(BadRequest("code not valid", status=400, code="bad.request"), Call.WRITE)
    assert isinstance(verdict, Recheck) and "code not valid" in verdict.refusal
