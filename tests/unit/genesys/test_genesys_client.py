from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from genesys_stub import Call, Reply, StubServer, token_reply

from wrapupd.clock import ManualClock
from wrapupd.errors import (
    AuthenticationFailed,
    Forbidden,
    NotFound,
    PlatformError,
    RateLimited,
    RequestTimeout,
    ServerError,
    TransportError,
    Unauthorized,
    UserContextRequired,
)
from wrapupd.events import Channel, TopicResult
from wrapupd.genesys import GenesysClient, Timeouts
from wrapupd.genesys import client as client_module
from wrapupd.genesys.auth import login_host

SECRET = "s3cret-value"
CONV = "a1f3c0de-2b8e-4d6a-9c41-77e0b5d2f9a3"
AGENT = "8f2c4a6e-1b3d-4e5f-9a7b-c8d9e0f1a2b3"
PARTICIPANT_PATH = f"/api/v2/conversations/{CONV}/participants/{AGENT}"
from platform_samples import SAMPLES  # noqa: E402

UNAUTHORIZED = Reply(401, {"message": "Invalid login credentials.", "code": "bad.credentials"})


def make(stub: StubServer, **kw: Any) -> GenesysClient:
    kw.setdefault("timeouts", Timeouts(connect=1.0, read=1.0))
    return GenesysClient(api_host=stub.url, client_id="cid", client_secret=SECRET, **kw)


@pytest.fixture
async def client(stub: StubServer) -> AsyncIterator[GenesysClient]:
    c = make(stub)
    await c.start()
    yield c
    await c.close()


def bearer(call: Call) -> str:
    return call.headers["authorization"]


# --- hosts and tokens -------------------------------------------------------------------------


def test_login_host() -> None:
    assert login_host("https://api.mypurecloud.de") == "https://login.mypurecloud.de"
    assert login_host("https://api.usw2.pure.cloud/") == "https://login.usw2.pure.cloud"
    assert login_host("http://127.0.0.1:8123") == "http://127.0.0.1:8123"


async def test_start_fetches_a_token_with_basic_auth(stub: StubServer) -> None:
    seen: list[str] = []
    c = make(stub, on_new_token=seen.append)
    before = datetime.now(UTC)
    await c.start()
    (call,) = stub.calls_to("POST", "/oauth/token")
    assert bearer(call) == "Basic " + base64.b64encode(f"cid:{SECRET}".encode()).decode()
    assert call.body == b"grant_type=client_credentials"
    assert call.headers["content-type"] == "application/x-www-form-urlencoded"
    assert seen == ["tok-1"] and c.token_generation == 1
    assert c.token_expires_at is not None
    assert before + timedelta(seconds=3590) < c.token_expires_at < before + timedelta(hours=2)
    await c.close()


@pytest.mark.parametrize("status", [400, 401])
async def test_refused_credentials_are_authentication_failed(stub: StubServer, status: int) -> None:
    body = {"error": "invalid_client", "description": "client not found"}
    stub.script("POST", "/oauth/token", Reply(status, body))
    c = make(stub)
    with pytest.raises(AuthenticationFailed) as info:
        await c.start()
    text = str(info.value)
    assert info.value.status == status
    assert "invalid_client" in text and "client id and secret" in text and "grant type" in text
    assert SECRET not in text and "cid:" not in text
    await c.close()


async def test_token_endpoint_unreachable_is_transport_error(stub: StubServer) -> None:
    stub.script("POST", "/oauth/token", Reply(200, {}, delay=1.0))
    c = make(stub, timeouts=Timeouts(connect=1.0, read=0.1))
    with pytest.raises(RequestTimeout):
        await c.start()
    await c.close()


async def test_401_renews_once_and_retries_once(stub: StubServer, client: GenesysClient) -> None:
    queue = Reply(200, {"id": "q1", "name": "Support"})
    stub.script("GET", "/api/v2/routing/queues/q1", UNAUTHORIZED, queue)
    assert (await client.get_queue("q1")).name == "Support"
    calls = stub.calls_to("GET", "/api/v2/routing/queues/q1")
    assert [bearer(c) for c in calls] == ["Bearer tok-1", "Bearer tok-2"]
    assert len(stub.calls_to("POST", "/oauth/token")) == 2
    assert client.token_generation == 2


async def test_a_second_401_is_raised(stub: StubServer, client: GenesysClient) -> None:
    stub.script("GET", "/api/v2/routing/queues/q1", UNAUTHORIZED)
    with pytest.raises(Unauthorized):
        await client.get_queue("q1")
    assert len(stub.calls_to("GET", "/api/v2/routing/queues/q1")) == 2
    assert len(stub.calls_to("POST", "/oauth/token")) == 2


async def test_concurrent_401s_share_one_renewal(stub: StubServer, client: GenesysClient) -> None:
    def answer(call: Call) -> Reply:
        if bearer(call) == "Bearer tok-1":
            return UNAUTHORIZED
        return Reply(200, {"id": "q1", "name": "Support"})

    stub.script("GET", "/api/v2/routing/queues/q1", answer)
    await asyncio.gather(*(client.get_queue("q1") for _ in range(6)))
    assert len(stub.calls_to("POST", "/oauth/token")) == 2
    assert client.token_generation == 2


async def test_token_is_renewed_before_expiry(stub: StubServer) -> None:
    clock = ManualClock()
    stub.script("POST", "/oauth/token", token_reply("tok-a", 3600), token_reply("tok-b", 3600))
    stub.script("GET", "/api/v2/routing/queues/q1", Reply(200, {"id": "q1", "name": "S"}))
    c = make(stub, clock=clock, renew_margin_seconds=300)
    await c.start()
    await clock.advance(3299)
    await c.get_queue("q1")
    await clock.advance(2)
    await c.get_queue("q1")
    calls = stub.calls_to("GET", "/api/v2/routing/queues/q1")
    assert [bearer(x) for x in calls] == ["Bearer tok-a", "Bearer tok-b"]
    assert c.token_expires_at == clock.now() + timedelta(seconds=3600)
    await c.close()


async def test_short_tokens_renew_at_half_life(stub: StubServer) -> None:
    clock = ManualClock()
    stub.script("POST", "/oauth/token", token_reply("tok-a", 300), token_reply("tok-b", 300))
    stub.script("GET", "/api/v2/routing/queues/q1", Reply(200, {"id": "q1", "name": "S"}))
    c = make(stub, clock=clock, renew_margin_seconds=300)
    await c.start()
    await clock.advance(149)
    await c.get_queue("q1")
    assert c.token_generation == 1
    await clock.advance(2)
    await c.get_queue("q1")
    assert c.token_generation == 2
    await c.close()


async def test_failed_early_renewal_keeps_the_valid_token(stub: StubServer) -> None:
    clock = ManualClock()
    down = Reply(503, {"message": "down", "code": "service.unavailable"})
    stub.script("POST", "/oauth/token", token_reply("tok-a", 3600), down)
    stub.script("GET", "/api/v2/routing/queues/q1", Reply(200, {"id": "q1", "name": "S"}))
    c = make(stub, clock=clock)
    await c.start()
    await clock.advance(3400)
    await c.get_queue("q1")  # renewal fails, the old token still has 200 s
    assert bearer(stub.calls_to("GET", "/api/v2/routing/queues/q1")[0]) == "Bearer tok-a"
    await clock.advance(300)
    with pytest.raises(ServerError):
        await c.get_queue("q1")  # expired and still no new token
    await c.close()


async def test_renew_token_forces_a_new_token(stub: StubServer, client: GenesysClient) -> None:
    await client.renew_token()
    assert client.token_generation == 2


# --- errors are typed and not retried ---------------------------------------------------------


async def test_429_is_rate_limited_and_not_retried(stub: StubServer, client: GenesysClient) -> None:
    body = {
        "message": "Rate limit exceeded the maximum. Retry the request in [4] seconds",
        "code": "too.many.requests.retry.after",
        "status": 429,
        "contextId": "ctx-9",
    }
    stub.script("PATCH", PARTICIPANT_PATH, Reply(429, body, {"Retry-After": "2"}))
    with pytest.raises(RateLimited) as info:
        await client.patch_participant_wrapup(CONV, AGENT, code_id="c", code_name=None, notes=None)
    assert info.value.retry_after == 2.0 and info.value.context_id == "ctx-9"
    assert info.value.method == "PATCH"
    assert (
        info.value.endpoint == "/api/v2/conversations/{conversationId}/participants/{participantId}"
    )
    assert len(stub.calls_to("PATCH", PARTICIPANT_PATH)) == 1


async def test_read_timeout_is_request_timeout(stub: StubServer) -> None:
    c = make(stub, timeouts=Timeouts(connect=1.0, read=0.2))
    await c.start()
    stub.script("PATCH", PARTICIPANT_PATH, Reply(202, delay=1.0))
    with pytest.raises(RequestTimeout):
        await c.patch_participant_wrapup(CONV, AGENT, code_id="c", code_name=None, notes=None)
    assert len(stub.calls_to("PATCH", PARTICIPANT_PATH)) == 1
    await c.close()


@pytest.mark.parametrize("status", [400, 403])
async def test_user_context_refusal_of_the_write(
    stub: StubServer, client: GenesysClient, status: int
) -> None:
    message = (
        "This request requires a user context. Client credentials cannot be used for requests "
        "to this resource."
    )
    stub.script(
        "PATCH", PARTICIPANT_PATH, Reply(status, {"message": message, "code": "bad.request"})
    )
    with pytest.raises(UserContextRequired) as info:
        await client.patch_participant_wrapup(CONV, AGENT, code_id="c", code_name=None, notes=None)
    assert isinstance(info.value, Forbidden) and info.value.user_context_required
    assert info.value.status == status


async def test_unreadable_answer_is_a_platform_error(
    stub: StubServer, client: GenesysClient
) -> None:
    stub.script("GET", "/api/v2/routing/queues/q1", Reply(200, {"name": "no id"}))
    with pytest.raises(PlatformError) as info:
        await client.get_queue("q1")
    assert type(info.value) is PlatformError
    assert "GET /api/v2/routing/queues/{queueId}" in str(info.value)


async def test_closed_client_refuses_calls(stub: StubServer) -> None:
    c = make(stub)
    await c.start()
    await c.close()
    with pytest.raises(TransportError):
        await c.get_queue("q1")


async def test_on_response_sees_templates_and_statuses(stub: StubServer) -> None:
    seen: list[tuple[str, str, int]] = []
    c = make(stub, on_response=lambda m, t, s, secs: seen.append((m, t, s)))
    await c.start()
    stub.script("GET", "/api/v2/routing/queues/q1", Reply(404, {"message": "no"}))
    with pytest.raises(NotFound):
        await c.get_queue("q1")
    assert seen == [("POST", "/oauth/token", 200), ("GET", "/api/v2/routing/queues/{queueId}", 404)]
    await c.close()


# --- the calls --------------------------------------------------------------------------------


async def test_patch_sends_only_the_wrapup(stub: StubServer, client: GenesysClient) -> None:
    stub.script("PATCH", PARTICIPANT_PATH, Reply(202))
    await client.patch_participant_wrapup(
        CONV, AGENT, code_id="560d87d0", code_name="Resolved", notes="auto-applied by wrapupd"
    )
    await client.patch_participant_wrapup(
        CONV, AGENT, code_id="560d87d0", code_name=None, notes=None
    )
    first, second = stub.calls_to("PATCH", PARTICIPANT_PATH)
    assert first.json() == {
        "wrapup": {"code": "560d87d0", "name": "Resolved", "notes": "auto-applied by wrapupd"}
    }
    assert second.json() == {"wrapup": {"code": "560d87d0"}}
    assert bearer(first) == "Bearer tok-1"


def listing(entities: list[dict[str, Any]], page: int, count: int | None) -> Reply:
    body: dict[str, Any] = {"entities": entities, "pageSize": 100, "pageNumber": page}
    if count is not None:
        body["pageCount"] = count
    return Reply(200, body)


def queues(start: int, n: int) -> list[dict[str, Any]]:
    prompt = {"wrapupPrompt": "MANDATORY_TIMEOUT", "timeoutMs": 30000}
    return [
        {"id": f"q{i}", "name": f"Queue {i}", "acwSettings": prompt}
        for i in range(start, start + n)
    ]


async def test_list_queues_reads_every_page(stub: StubServer, client: GenesysClient) -> None:
    stub.script(
        "GET",
        "/api/v2/routing/queues",
        listing(queues(0, 100), 1, 2),
        listing(queues(100, 3), 2, 2),
    )
    result = await client.list_queues()
    assert [q.id for q in result] == [f"q{i}" for i in range(103)]
    assert result[0].time_boxed and result[0].acw_timeout_ms == 30000
    pages = [c.query["pageNumber"] for c in stub.calls_to("GET", "/api/v2/routing/queues")]
    assert pages == [["1"], ["2"]]


async def test_list_queues_by_exact_name(stub: StubServer, client: GenesysClient) -> None:
    found = [{"id": "a", "name": "Support Tier 2"}, {"id": "b", "name": "Support"}]
    stub.script("GET", "/api/v2/routing/queues", listing(found, 1, 1))
    assert [q.id for q in await client.list_queues("Support")] == ["b"]
    assert stub.calls_to("GET", "/api/v2/routing/queues")[0].query["name"] == ["Support"]
    assert [q.id for q in await client.list_queues("support")] == ["b"]  # no exact: casefold


async def test_wrapup_code_listings_without_page_count(
    stub: StubServer, client: GenesysClient
) -> None:
    codes = [{"id": f"c{i}", "name": f"Code {i}"} for i in range(150)]
    path = "/api/v2/routing/queues/q1/wrapupcodes"
    stub.script("GET", path, listing(codes[:100], 1, None), listing(codes[100:], 2, None))
    result = await client.list_queue_wrapup_codes("q1")
    assert [c.id for c in result] == [c["id"] for c in codes]
    stub.script("GET", "/api/v2/routing/wrapupcodes", listing(codes[:2], 1, 1))
    assert [c.name for c in await client.list_wrapup_codes()] == ["Code 0", "Code 1"]


async def test_get_conversation_is_a_rest_snapshot(stub: StubServer, client: GenesysClient) -> None:
    body = json.loads((SAMPLES / "queue_event_agent_in_acw.json").read_text())["eventBody"]
    stub.script("GET", f"/api/v2/conversations/{CONV}", Reply(200, body))
    snap = await client.get_conversation(CONV)
    assert snap.id == CONV and [p.purpose for p in snap.participants] == [
        "customer",
        "acd",
        "agent",
    ]
    agent = snap.participants[2]
    assert agent.id == AGENT and agent.purpose == "agent" and agent.wrapup_code is None
    assert agent.start_acw_time == datetime(2025, 6, 10, 11, 58, 41, 900000, tzinfo=UTC)
    assert agent.communications[0].acw_state == "pending"


def analytics_page(ids: list[str], total: int | None) -> Reply:
    body: dict[str, Any] = {"conversations": [{"conversationId": i} for i in ids]}
    if total is not None:
        body["totalHits"] = total
    return Reply(200, body)


async def test_query_open_conversations(stub: StubServer, client: GenesysClient) -> None:
    path = "/api/v2/analytics/conversations/details/query"
    page1 = [f"c{i}" for i in range(100)]
    page2 = ["c99", "c100", "c101"]  # results shift while the interval is live: dedupe
    stub.script("POST", path, analytics_page(page1, 103), analytics_page(page2, 103))
    start = datetime(2025, 6, 9, tzinfo=UTC)
    end = datetime(2025, 6, 10, 12, 4, 0, 500000, tzinfo=UTC)
    ids = await client.query_open_conversations(["q1", "q2"], start, end)
    assert ids == [*page1, "c100", "c101"]
    first, second = stub.calls_to("POST", path)
    body = first.json()
    assert body["interval"] == "2025-06-09T00:00:00.000Z/2025-06-10T12:04:00.500Z"
    assert body["paging"] == {"pageSize": 100, "pageNumber": 1}
    assert second.json()["paging"]["pageNumber"] == 2
    assert body["conversationFilters"] == [
        {
            "type": "and",
            "predicates": [
                {"type": "dimension", "dimension": "conversationEnd", "operator": "notExists"}
            ],
        }
    ]
    queue_filter, purpose_filter = body["segmentFilters"]
    assert queue_filter["type"] == "or"
    assert [p["value"] for p in queue_filter["predicates"]] == ["q1", "q2"]
    assert purpose_filter["predicates"] == [
        {"type": "dimension", "dimension": "purpose", "operator": "matches", "value": "agent"}
    ]


async def test_query_open_conversations_empty_page(stub: StubServer, client: GenesysClient) -> None:
    path = "/api/v2/analytics/conversations/details/query"
    stub.script("POST", path, Reply(200, {}))
    start = datetime(2025, 6, 9, tzinfo=UTC)
    assert await client.query_open_conversations(["q1"], start, start + timedelta(hours=1)) == []
    assert await client.query_open_conversations([], start, start) == []
    assert len(stub.calls_to("POST", path)) == 1


async def test_query_stops_at_the_result_cap(
    stub: StubServer, client: GenesysClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert client_module.ANALYTICS_RESULT_CAP == 100_000  # pageSize x pageNumber limit
    monkeypatch.setattr(client_module, "ANALYTICS_RESULT_CAP", 500)  # five pages, not 1,000
    path = "/api/v2/analytics/conversations/details/query"
    counter = iter(range(10**9))

    def full_page(_: Call) -> Reply:
        n = next(counter)
        return analytics_page([f"c{n}-{i}" for i in range(100)], None)

    stub.script("POST", path, full_page)
    start = datetime(2025, 6, 9, tzinfo=UTC)
    ids = await client.query_open_conversations(["q1"], start, start + timedelta(hours=1))
    assert len(ids) == 500
    assert [c.json()["paging"]["pageNumber"] for c in stub.calls_to("POST", path)] == [
        1,
        2,
        3,
        4,
        5,
    ]


async def test_channels(stub: StubServer, client: GenesysClient) -> None:
    stub.script(
        "POST",
        "/api/v2/notifications/channels",
        Reply(
            200,
            {"id": "ch1", "connectUri": "ws://127.0.0.1/ch1", "expires": "2025-06-11T11:00:00Z"},
        ),
    )
    channel = await client.create_channel()
    assert channel == Channel("ch1", "ws://127.0.0.1/ch1", datetime(2025, 6, 11, 11, tzinfo=UTC))
    stub.script("HEAD", "/api/v2/notifications/channels/ch1", Reply(200))
    stub.script("HEAD", "/api/v2/notifications/channels/gone", Reply(404, {"message": "x"}))
    assert await client.channel_exists("ch1")
    assert not await client.channel_exists("gone")


async def test_subscribe_replaces_topics_ignoring_errors(
    stub: StubServer, client: GenesysClient
) -> None:
    path = "/api/v2/notifications/channels/ch1/subscriptions"
    answer = {
        "entities": [
            {"id": "v2.routing.queues.q1.conversations", "state": "Permitted"},
            {
                "id": "v2.routing.queues.q2.conversations",
                "state": "Rejected",
                "rejectionReason": "Missing permissions",
                "missingPermissions": ["routing:queue:view"],
            },
        ]
    }
    stub.script("PUT", path, Reply(200, answer))
    topics = ["v2.routing.queues.q1.conversations", "v2.routing.queues.q2.conversations"]
    results = await client.subscribe("ch1", topics)
    assert results == [
        TopicResult(topics[0], True),
        TopicResult(topics[1], False, "Missing permissions", ("routing:queue:view",)),
    ]
    (call,) = stub.calls_to("PUT", path)
    assert call.query == {"ignoreErrors": ["true"]}
    assert call.json() == [{"id": t} for t in topics]
