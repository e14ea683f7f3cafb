"""The exception tree of wrapupd.

Errors are typed where they cross a boundary (the SDK, the settings file, the ledger) and handled
where a decision is made (the applier, the subscriber, the CLI)::

    WrapupdError
    ├── ConfigError                 bad settings; the CLI exits 78 (EX_CONFIG)
    │   └── ResolutionError         a configured queue or code does not exist / is not assigned
    ├── PlatformError               anything the Genesys Cloud platform answered or failed to answer
    │   ├── TransportError          no HTTP answer: connect refused, reset, DNS
    │   │   └── RequestTimeout      no answer within the read timeout (a write may have landed)
    │   ├── AuthenticationFailed    the OAuth token endpoint refused the client credentials
    │   │   └── LoginRequired       the refresh token is missing, expired or revoked: run `wrapupd login`
    │   └── ApiError                an HTTP error answer with the platform's error body
    │       ├── BadRequest          400 (code e.g. "bad.request")
    │       ├── Unauthorized        401: token expired or revoked
    │       ├── Forbidden           403: missing permission, or client credentials refused (user context)
    │       │   └── UserContextRequired  400 or 403 (any 4xx): the resource refuses client-credentials tokens
    │       ├── NotFound            404
    │       ├── Conflict            409
    │       ├── RateLimited         429 with Retry-After seconds
    │       └── ServerError         5xx
    ├── ChannelGone                 the notification channel no longer exists (404, expired, evicted)
    ├── LedgerError                 the ledger cannot be used as configured: directory, file, schema (exit 78)
    │   └── LedgerInUse             another process already writes this SQLite ledger (exit 78)
    ├── LedgerUnavailable           the ledger's storage fails for now (disk full, I/O error, database
    │                               down): what is queued stays in memory and is retried; not ready
    └── BackgroundJobFailed         a part of the running daemon crashed or stopped; the CLI exits 1

Whether a platform error is worth retrying is decided in one place, :func:`wrapupd.retry.classify`.
"""

from __future__ import annotations


class WrapupdError(Exception):
    """Root of every error wrapupd raises on purpose."""


class ConfigError(WrapupdError):
    """A setting is missing or invalid. The message names the setting, the value and what is allowed."""


class ResolutionError(ConfigError):
    """A configured queue or wrap-up code cannot be found on the platform."""


class PlatformError(WrapupdError):
    """The platform answered with an error, or did not answer."""


class TransportError(PlatformError):
    """No HTTP response: the connection failed before an answer arrived."""


class RequestTimeout(TransportError):
    """The platform did not answer within the read timeout; a write may or may not have landed."""


class AuthenticationFailed(PlatformError):
    """The OAuth token endpoint refused the client id and secret."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class LoginRequired(AuthenticationFailed):
    """No usable refresh token (missing, expired or revoked): run ``wrapupd login`` again."""


class ApiError(PlatformError):
    """An error answer carrying the platform's ``ErrorBody``."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str | None = None,
        context_id: str | None = None,
        method: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.context_id = context_id
        self.method = method
        self.endpoint = endpoint

    def __str__(self) -> str:
        where = f"{self.method} {self.endpoint}: " if self.method and self.endpoint else ""
        code = f" [{self.code}]" if self.code else ""
        ctx = f" (contextId {self.context_id})" if self.context_id else ""
        return f"{where}{self.status}{code} {self.message}{ctx}"


class BadRequest(ApiError):
    """400: the platform refused the request as malformed or not allowed in this state."""


class Unauthorized(ApiError):
    """401: the bearer token expired or was revoked."""


class Forbidden(ApiError):
    """403: a permission is missing, or the resource refuses client-credentials tokens."""

    USER_CONTEXT_MARKER = "requires a user context"

    def __init__(
        self, message: str, *, missing_permissions: tuple[str, ...] = (), **kw: object
    ) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.missing_permissions = missing_permissions

    @property
    def user_context_required(self) -> bool:
        """True when the platform refuses client credentials for this resource (a deployment problem)."""
        return self.USER_CONTEXT_MARKER in self.message


class UserContextRequired(Forbidden):
    """Any 4xx (400 seen, 403 documented) refusing client-credentials tokens: a user's are needed.

    A deployment problem, not a transient one: the remedy is the ``authorization_code`` grant.
    """

    @property
    def user_context_required(self) -> bool:
        """Always true here: the refusal already names the missing user context."""
        return True


class NotFound(ApiError):
    """404: the conversation, participant, queue or channel does not exist (any more)."""


class Conflict(ApiError):
    """409: the resource changed under us."""


class RateLimited(ApiError):
    """429: over the rate limit; wait ``retry_after`` seconds before the next call."""

    def __init__(self, message: str, *, retry_after: float, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class ServerError(ApiError):
    """5xx: the platform failed; retry with backoff."""


class ChannelGone(WrapupdError):
    """The notification channel was deleted, expired or evicted: a new one is needed."""


class LedgerError(WrapupdError):
    """The ledger cannot be used as configured: its directory, its file, its schema or a bug in a write."""


class LedgerInUse(LedgerError):
    """A second process on one SQLite ledger: two replicas would both write (refused, exit 78)."""


class LedgerUnavailable(WrapupdError):
    """The ledger's storage fails for now; queued writes wait in memory and are retried with backoff.

    Raised by the calls that must not go on without the disk (``mark_writing``: no PATCH leaves
    without its durable mark) while the ledger is in this state.
    """


class LedgerConflict(LedgerUnavailable):
    """Two replicas' transactions crossed (a deadlock): the batch is simply tried again at once."""


class BackgroundJobFailed(WrapupdError):
    """A part of the running daemon (subscriber, applier, reconciler, …) crashed or stopped."""
