"""The async facade over the synchronous Genesys Cloud SDK: what the rest of wrapupd calls.

Every call runs in a bounded thread pool (``max_workers``) and returns wrapupd types only
(:mod:`wrapupd.events`); every failure is a :mod:`wrapupd.errors` ``PlatformError``:

- an ``ApiException`` is mapped by :mod:`.error_map` (with the method and endpoint template);
- no answer is a ``TransportError`` / ``RequestTimeout`` (:mod:`.http`, which never retries);
- an answer the SDK cannot deserialise is a plain ``PlatformError``.

Before each call the token is renewed if it is within its renewal window; a call answered 401 is
retried once after a (single-flight) renewal. Nothing else is retried here: rate limits,
timeouts and server errors are the caller's decision.

Cancellation: cancelling the awaiting task does **not** stop a request already running in a
worker thread; the request completes (or times out) and its result is discarded. A cancelled
PATCH may therefore still land: callers re-check by GET before writing again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple, TypeVar

from wrapupd.clock import Clock, SystemClock
from wrapupd.errors import NotFound, PlatformError, TransportError, Unauthorized
from wrapupd.events import Channel, ConversationSnapshot, Queue, TopicResult, WrapupCode
from wrapupd.genesys import convert
from wrapupd.genesys.auth import Grant, TokenEndpoint, TokenManager
from wrapupd.genesys.error_map import invoke_mapped
from wrapupd.genesys.grants import ClientCredentialsGrant
from wrapupd.genesys.http import api_http_client, sdk_api_client
from wrapupd.genesys.queries import (
    PAGE_SIZE,
    analytics_open_conversations_query,
    rate_limit_window,
    read_listing_page,
)
from wrapupd.genesys.sdk import (
    AnalyticsApi,
    ConversationsApi,
    NotificationsApi,
    RoutingApi,
    UsersApi,
)

__all__ = [
    "ANALYTICS_RESULT_CAP",
    "PAGE_SIZE",
    "GenesysClient",
    "Timeouts",
    "UserIdentity",
    "analytics_open_conversations_query",
    "rate_limit_window",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

ANALYTICS_RESULT_CAP = 100_000  # pageSize x pageNumber beyond this is a 400
_MAX_PAGES = 1_000  # a guard against a listing that never ends

_QUEUES = "/api/v2/routing/queues"
_QUEUE = "/api/v2/routing/queues/{queueId}"
_QUEUE_CODES = "/api/v2/routing/queues/{queueId}/wrapupcodes"
_CODES = "/api/v2/routing/wrapupcodes"
_CONVERSATION = "/api/v2/conversations/{conversationId}"
_PARTICIPANT = "/api/v2/conversations/{conversationId}/participants/{participantId}"
_DETAILS_QUERY = "/api/v2/analytics/conversations/details/query"
_CHANNELS = "/api/v2/notifications/channels"
_CHANNEL = "/api/v2/notifications/channels/{channelId}"
_SUBSCRIPTIONS = "/api/v2/notifications/channels/{channelId}/subscriptions"
_USERS_ME = "/api/v2/users/me"


@dataclass(frozen=True)
class Timeouts:
    """Explicit HTTP timeouts: the SDK sets none, and a hung call would hold a worker forever."""

    connect: float = 5.0
    read: float = 15.0


class UserIdentity(NamedTuple):
    """Who a user-context token acts as (``GET /api/v2/users/me``)."""

    id: str
    name: str


class GenesysClient:
    """One org, one grant, one token, one connection pool.

    The grant is client credentials from ``client_id`` and ``client_secret`` unless ``grant`` is
    given (:mod:`wrapupd.genesys.grants`: ``AuthorizationCodeGrant``, …); give one or the other.
    """

    def __init__(
        self,
        *,
        api_host: str,
        client_id: str | None = None,
        client_secret: str | None = None,
        grant: Grant | None = None,
        timeouts: Timeouts = Timeouts(),
        max_workers: int = 8,
        renew_margin_seconds: float = 300.0,
        clock: Clock | None = None,
        on_response: Callable[[str, str, int, float], None] | None = None,
        on_new_token: Callable[[str], None] | None = None,
        on_rate_limit: Callable[[int, int, float], None] | None = None,
    ) -> None:
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_rate_limit = on_rate_limit
        self._on_new_token = on_new_token
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="wrapupd-genesys")
        hook = self._response_hook(on_response)
        self._http = api_http_client(
            api_host, timeouts.connect, timeouts.read, max_workers + 1, hook
        )
        self._api = sdk_api_client(api_host.rstrip("/"), self._http)
        self._routing = RoutingApi(self._api)
        self._conversations = ConversationsApi(self._api)
        self._analytics = AnalyticsApi(self._api)
        self._notifications = NotificationsApi(self._api)
        self._users = UsersApi(self._api)
        self._grant = grant or _client_credentials(client_id, client_secret)
        self._auth = TokenManager(
            partial(self._grant.fetch, TokenEndpoint(self._http, api_host=api_host)),
            executor=self._executor,
            clock=clock or SystemClock(),
            renew_margin_seconds=renew_margin_seconds,
            on_new_token=self._install_token,
        )

    def __repr__(self) -> str:
        return f"GenesysClient(api_host={self._api.host!r}, grant={self._grant.name!r})"

    # --- lifecycle and token ------------------------------------------------------------------

    def _response_hook(
        self, on_response: Callable[[str, str, int, float], None] | None
    ) -> Callable[[str, str, int, float, Mapping[str, str]], None]:
        """Runs in the worker thread: metrics directly, rate-limit headers over to the event loop."""

        def hook(
            method: str, template: str, status: int, seconds: float, headers: Mapping[str, str]
        ) -> None:
            if on_response is not None:
                on_response(method, template, status, seconds)
            window = rate_limit_window(headers)
            if window is not None and self._on_rate_limit is not None and self._loop is not None:
                self._loop.call_soon_threadsafe(self._on_rate_limit, *window)

        return hook

    async def start(self) -> None:
        """Get the first token: raises ``AuthenticationFailed`` or a ``TransportError``."""
        self._loop = asyncio.get_running_loop()
        await self._auth.renew()

    async def close(self) -> None:
        """Stop taking calls; requests already in worker threads finish on their own."""
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._http.close()

    @property
    def token_expires_at(self) -> datetime | None:
        """When the current access token expires (None before start)."""
        return self._auth.expires_at

    @property
    def token_generation(self) -> int:
        """Bumped on every new token: the subscriber rolls its channel over to a new token's."""
        return self._auth.generation

    @property
    def grant(self) -> Grant:
        """The grant this client gets its tokens with."""
        return self._grant

    @property
    def renewal_error(self) -> PlatformError | None:
        """Why the last token renewal failed, until one succeeds.

        ``LoginRequired`` means no request can succeed until ``wrapupd login`` stores a new
        refresh token: go not-ready with that remedy, and keep the pending work.
        """
        return self._auth.renewal_error

    async def renew_token(self) -> None:
        """A new token now (after ``token_revoked``, say), shared with any renewal in flight."""
        await self._auth.renew()

    def _install_token(self, token: str) -> None:
        self._api.access_token = token
        if self._on_new_token is not None:
            try:
                self._on_new_token(token)
            except Exception:
                log.exception("on_new_token callback failed")

    # --- users --------------------------------------------------------------------------------

    async def current_user(self) -> UserIdentity:
        """Who the token acts as; a client-credentials token raises ``UserContextRequired``."""

        def call() -> UserIdentity:
            user = self._users.get_users_me()
            return UserIdentity(convert.required_id(user.id, "user id"), user.name or "")

        return await self._call("GET", _USERS_ME, call)

    # --- routing ------------------------------------------------------------------------------

    async def list_queues(self, name: str | None = None) -> list[Queue]:
        """All queues, or those named exactly ``name`` (the API's own filter is looser).

        With a name and no exact match, case-insensitive matches are returned instead.
        """
        filters = {"name": name} if name else {}
        fetch = partial(self._routing.get_routing_queues, **filters)
        queues = await self._all_pages(_QUEUES, fetch, convert.queue_from_model)
        if not name:
            return queues
        exact = [q for q in queues if q.name == name]
        return exact or [q for q in queues if q.name.casefold() == name.casefold()]

    async def get_queue(self, queue_id: str) -> Queue:
        """One queue, with its ACW settings."""

        def call() -> Queue:
            return convert.queue_from_model(self._routing.get_routing_queue(queue_id))

        return await self._call("GET", _QUEUE, call)

    async def list_queue_wrapup_codes(self, queue_id: str) -> list[WrapupCode]:
        """Every code assigned to this queue (all pages): only these can be applied there."""
        fetch = partial(self._routing.get_routing_queue_wrapupcodes, queue_id)
        return await self._all_pages(_QUEUE_CODES, fetch, convert.wrapup_code_from_model)

    async def list_wrapup_codes(self) -> list[WrapupCode]:
        """Every wrap-up code of the org (all pages), to resolve a code by name or id."""
        fetch = self._routing.get_routing_wrapupcodes
        return await self._all_pages(_CODES, fetch, convert.wrapup_code_from_model)

    # --- conversations ------------------------------------------------------------------------

    async def get_conversation(self, conversation_id: str) -> ConversationSnapshot:
        """The conversation's live state: the proof a write is taken on."""

        def call() -> ConversationSnapshot:
            return convert.snapshot_from_model(
                self._conversations.get_conversation(conversation_id)
            )

        return await self._call("GET", _CONVERSATION, call)

    async def patch_participant_wrapup(
        self,
        conversation_id: str,
        participant_id: str,
        *,
        code_id: str,
        code_name: str | None,
        notes: str | None,
    ) -> None:
        """``PATCH .../participants/{id}`` with a body of **only** ``{"wrapup": {...}}``.

        The SDK serialises models without their ``None`` attributes, so the other fields of
        ``MediaParticipantRequest`` (``state``, ``held``, …, each an action) are never sent.
        """
        body = convert.wrapup_request(code_id, code_name, notes)

        def call() -> None:
            self._conversations.patch_conversation_participant(
                conversation_id, participant_id, body
            )

        await self._call("PATCH", _PARTICIPANT, call)

    async def query_open_conversations(
        self, queue_ids: Sequence[str], start: datetime, end: datetime
    ) -> list[str]:
        """Ids of conversations in ``[start, end)`` on these queues with an agent and no end yet.

        A candidate list only (confirm each by GET); all pages up to the platform's 100,000 cap;
        deduplicated in order, as results shift while the interval is live.
        """
        if not queue_ids:
            return []
        found: dict[str, None] = {}
        for page_number in range(1, ANALYTICS_RESULT_CAP // PAGE_SIZE + 1):
            body = analytics_open_conversations_query(queue_ids, start, end, page_number)
            ids, size, total = await self._call(
                "POST", _DETAILS_QUERY, partial(self._details, body)
            )
            found.update(dict.fromkeys(ids))
            if size < PAGE_SIZE or (total is not None and page_number * PAGE_SIZE >= total):
                break
        return list(found)

    def _details(self, body: dict[str, Any]) -> tuple[list[str], int, int | None]:
        """One page: (conversation ids, page size as answered, totalHits if given)."""
        answer = self._analytics.post_analytics_conversations_details_query(body)
        conversations = getattr(answer, "conversations", None) or []
        ids = [c.conversation_id for c in conversations if c.conversation_id]
        total = getattr(answer, "total_hits", None)
        return ids, len(conversations), total if isinstance(total, int) else None

    # --- notification channels ----------------------------------------------------------------

    async def create_channel(self) -> Channel:
        """A new notification channel (its id and connectUri are credentials)."""

        def call() -> Channel:
            return convert.channel_from_model(self._notifications.post_notifications_channels())

        return await self._call("POST", _CHANNELS, call)

    async def subscribe(self, channel_id: str, topics: Sequence[str]) -> list[TopicResult]:
        """Replace the channel's topics (``PUT ...?ignoreErrors=true``).

        Each listed topic comes back ``permitted`` or rejected with a reason, instead of one topic
        the client may not see failing the whole call. The answer is returned as the platform
        gave it; the caller compares it with what it asked for.
        """
        body = [{"id": topic} for topic in topics]

        def call() -> list[TopicResult]:
            listing = self._notifications.put_notifications_channel_subscriptions(
                channel_id, body, ignore_errors=True
            )
            return convert.topic_results_from_model(listing)

        return await self._call("PUT", _SUBSCRIPTIONS, call)

    async def channel_exists(self, channel_id: str) -> bool:
        """``HEAD`` the channel: 200 alive, 404 gone; any other failure raises."""
        try:
            await self._call(
                "HEAD",
                _CHANNEL,
                partial(self._notifications.head_notifications_channel, channel_id),
            )
        except NotFound:
            return False
        return True

    # --- machinery ----------------------------------------------------------------------------

    async def _all_pages(
        self, template: str, fetch: Callable[..., Any], to_item: Callable[[Any], T]
    ) -> list[T]:
        items: list[T] = []
        for page_number in range(1, _MAX_PAGES + 1):
            page = partial(read_listing_page, fetch, page_number, to_item)
            entities, last = await self._call("GET", template, page)
            items.extend(entities)
            if last:
                break
        return items

    async def _call(self, method: str, template: str, fn: Callable[[], T]) -> T:
        """Run one SDK call in a worker; on 401, renew the token once and retry once."""
        await self._auth.ensure_fresh()
        generation = self._auth.generation
        try:
            return await self._in_worker(method, template, fn)
        except Unauthorized:
            await self._auth.renew(stale_generation=generation)
            return await self._in_worker(method, template, fn)

    async def _in_worker(self, method: str, template: str, fn: Callable[[], T]) -> T:
        if self._closed:
            raise TransportError(f"{method} {template}: the Genesys client is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, invoke_mapped, method, template, fn)


def _client_credentials(client_id: str | None, client_secret: str | None) -> Grant:
    if client_id is None or client_secret is None:
        raise ValueError("GenesysClient needs a grant, or a client_id and client_secret")
    return ClientCredentialsGrant(client_id, client_secret)
