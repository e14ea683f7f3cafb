"""PURE: after a platform error, wait and retry, re-read the live state, or stop with an outcome.

One table for every caller (the applier, ``wrapupd apply``, the code cache, the reconciler), so
"retryable" means one thing everywhere::

    error                         READ (a GET)                   WRITE (the wrap-up PATCH)
    429 RateLimited               Retry(after=Retry-After)       Retry(after=Retry-After)
    403 Forbidden                 Final(forbidden)               Final(forbidden)
    404 NotFound                  Final(too_late)                Recheck
    400 BadRequest, 409 Conflict  Final(failed)                  Recheck
    5xx, 401, timeout, transport  Retry()                        Retry() (it may have landed: the
                                                                 retry proves the state by GET first)
    LoginRequired                 Hold(login_required)           Hold(login_required)
    user-context refusal (4xx)    Final(forbidden)               Hold(user_context_required)

``Retry.after`` is the platform's own wait (the caller pauses every caller for it); None means the
caller's backoff. ``Recheck``: the platform refused the write, and only the live state says why
(coded meanwhile, ACW over, or the code itself refused). ``Hold``: a deployment problem that no
retry fixes until an operator acts (the remedy says how); the item stays pending, uncounted.
A retried item always proves the state again before any write (see the applier).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Literal, overload

from wrapupd.errors import (
    AuthenticationFailed,
    BadRequest,
    Conflict,
    Forbidden,
    LoginRequired,
    NotFound,
    PlatformError,
    RateLimited,
)
from wrapupd.events import Outcome

# A Retry-After beyond this (or not a number at all) is the platform's mistake, not an instruction.
MAX_RETRY_AFTER = 3600.0
READ_PERMISSION = "conversation:communication:view"
WRITE_PERMISSION = "conversation:participant:wrapup"


class Call(enum.Enum):
    """What the failed request was: a read changes nothing; a write may have landed unseen."""

    READ = "read"
    WRITE = "write"


@dataclass(frozen=True, slots=True)
class Retry:
    """Try again: after ``after`` seconds when the platform said so, else after the caller's backoff."""

    after: float | None = None


@dataclass(frozen=True, slots=True)
class Recheck:
    """The platform refused the write: read the live state to learn why before deciding."""

    refusal: str


@dataclass(frozen=True, slots=True)
class Final:
    """Retrying cannot help: the work ends with ``outcome``."""

    outcome: Outcome
    detail: str


@dataclass(frozen=True, slots=True)
class Hold:
    """A deployment problem: keep the work pending until the operator applies ``remedy``."""

    problem: str  # login_required | user_context_required
    detail: str
    remedy: str


LOGIN_REQUIRED = "login_required"
USER_CONTEXT_REQUIRED = "user_context_required"
LOGIN_REMEDY = "sign the integration user in again with `wrapupd login` (no restart needed)"
USER_CONTEXT_REMEDY = (
    'set [genesys] grant = "authorization_code" with an Authorization Code OAuth client, sign '
    "the integration user in once with `wrapupd login`, and restart (see docs/OPERATIONS.md)"
)

Verdict = Retry | Recheck | Final | Hold


@overload
def classify(error: PlatformError, call: Literal[Call.READ] = ...) -> Retry | Final | Hold: ...


@overload
def classify(error: PlatformError, call: Call) -> Verdict: ...


def classify(error: PlatformError, call: Call = Call.READ) -> Verdict:
    """The one decision on a platform error, for a read or for the wrap-up write."""
    if isinstance(error, LoginRequired):
        return Hold(LOGIN_REQUIRED, str(error), LOGIN_REMEDY)
    if call is Call.WRITE and isinstance(error, Forbidden) and error.user_context_required:
        return Hold(USER_CONTEXT_REQUIRED, str(error), USER_CONTEXT_REMEDY)
    if isinstance(error, RateLimited):
        return Retry(after=sane_wait(error.retry_after))
    if isinstance(error, Forbidden):
        return Final(Outcome.FORBIDDEN, forbidden_detail(error, call))
    if isinstance(error, BadRequest | NotFound | Conflict):
        return _refused(error, call)
    return Retry()


def passes(error: PlatformError) -> bool:
    """A failure that may pass by itself (unreachable, 5xx, 429, a timeout), as opposed to one an
    operator must fix (bad credentials, a missing permission, a refused request)."""
    if isinstance(error, AuthenticationFailed):
        return error.status is None or error.status >= 500 or error.status == 429
    return isinstance(classify(error, Call.READ), Retry)


def _refused(error: PlatformError, call: Call) -> Recheck | Final:
    if call is Call.WRITE:
        return Recheck(str(error))
    if isinstance(error, NotFound):
        return Final(Outcome.TOO_LATE, "conversation no longer exists")
    return Final(Outcome.FAILED, f"the platform refused to show the conversation: {error}")


def sane_wait(seconds: float) -> float:
    """A Retry-After bounded to [0, MAX_RETRY_AFTER]; not a number means the longest wait."""
    if math.isnan(seconds):
        return MAX_RETRY_AFTER
    return min(MAX_RETRY_AFTER, max(0.0, seconds))


def forbidden_detail(error: Forbidden, call: Call) -> str:
    """What an operator must fix: the missing permission, or a platform that wants a user token."""
    if call is Call.READ:
        missing = ", ".join(error.missing_permissions) or READ_PERMISSION
        return f"cannot read the conversation: the role lacks {missing}: {error}"
    missing = ", ".join(error.missing_permissions) or WRITE_PERMISSION
    return f"the OAuth client's role lacks {missing}: {error}"
