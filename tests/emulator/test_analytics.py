"""The conversation details query subset: interval, paging, conversation and segment filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import PureCloudPlatformClientV2 as sdk_module
import pytest

from emulator_client import RawClient
from genesys_emulator.testing import RunningEmulator

QUERY = "/api/v2/analytics/conversations/details/query"


def interval(zulu: bool = True) -> str:
    now = datetime.now(UTC)
    start, end = now - timedelta(hours=1), now + timedelta(hours=1)
    text = f"{start.isoformat()}/{end.isoformat()}"
    return text.replace("+00:00", "Z") if zulu else text


def dimension(name: str, operator: str = "matches", value: str | None = None) -> dict[str, Any]:
    predicate: dict[str, Any] = {"type": "dimension", "dimension": name, "operator": operator}
    if value is not None:
        predicate["value"] = value
    return predicate


def query(raw: RawClient, token: str, **body: Any) -> Any:
    return raw.call("POST", QUERY, token, {"interval": interval(), **body})


@pytest.fixture
def mixed(emulator: RunningEmulator, wait: Any) -> dict[str, dict[str, Any]]:
    """One open-ACW Support call, one coded Support chat, one open Sales email."""
    open_call = emulator.start_conversation(queue="Support", talk_s=0.01, outcome="nothing")
    coded_chat = emulator.start_conversation(
        queue="Support", media="chat", talk_s=0.01, agent_delay_s=0.01
    )
    sales_email = emulator.start_conversation(
        queue="Sales", media="email", talk_s=0.01, outcome="nothing"
    )
    wait(lambda: len(emulator.ground_truth()) == 3)
    wait(lambda: any(e["wrapup"]["by"] == "agent" for e in emulator.ground_truth()))
    return {"open_call": open_call, "coded_chat": coded_chat, "sales_email": sales_email}


def ids(reply: Any) -> set[str]:
    return {c["conversationId"] for c in reply.body.get("conversations", [])}


def test_sdk_query_with_the_sample_shape(
    emulator: RunningEmulator, sdk: Any, mixed: dict[str, Any]
) -> None:
    body = sdk_module.ConversationQuery()
    body.interval = interval(zulu=False)
    result = sdk_module.ConversationsApi(sdk).post_analytics_conversations_details_query(body)
    assert result.total_hits == 3
    agent = next(p for p in result.conversations[0].participants if p.purpose == "agent")
    assert [s.segment_type for s in agent.sessions[0].segments][:2] == ["alert", "interact"]


def test_conversation_end_not_exists(
    raw: RawClient, main_token: str, mixed: dict[str, Any]
) -> None:
    reply = query(
        raw,
        main_token,
        conversationFilters=[
            {"type": "and", "predicates": [dimension("conversationEnd", "notExists")]}
        ],
    )
    assert ids(reply) == {
        mixed["open_call"]["conversationId"],
        mixed["sales_email"]["conversationId"],
    }


def test_segment_filters_queue_purpose_media(
    emulator: RunningEmulator, raw: RawClient, main_token: str, mixed: dict[str, Any]
) -> None:
    support = mixed["open_call"]["queueId"]
    reply = query(
        raw,
        main_token,
        segmentFilters=[
            {"type": "or", "predicates": [dimension("queueId", value=support)]},
            {
                "type": "and",
                "predicates": [
                    dimension("purpose", value="agent"),
                    dimension("mediaType", value="voice"),
                ],
            },
        ],
    )
    assert ids(reply) == {mixed["open_call"]["conversationId"]}


def test_open_wrapup_segment_filter(raw: RawClient, main_token: str, mixed: dict[str, Any]) -> None:
    predicates = [
        dimension("purpose", value="agent"),
        dimension("segmentType", value="wrapup"),
        dimension("segmentEnd", "notExists"),
        dimension("wrapUpCode", "notExists"),
    ]
    reply = query(raw, main_token, segmentFilters=[{"type": "and", "predicates": predicates}])
    assert ids(reply) == {
        mixed["open_call"]["conversationId"],
        mixed["sales_email"]["conversationId"],
    }


def test_coded_wrapup_segment_has_the_code(
    raw: RawClient, main_token: str, mixed: dict[str, Any]
) -> None:
    reply = query(
        raw,
        main_token,
        segmentFilters=[{"type": "and", "predicates": [dimension("wrapUpCode", "exists")]}],
    )
    assert ids(reply) == {mixed["coded_chat"]["conversationId"]}
    conv = reply.body["conversations"][0]
    assert "conversationEnd" in conv


def test_paging_and_empty_page(raw: RawClient, main_token: str, mixed: dict[str, Any]) -> None:
    first = query(raw, main_token, paging={"pageSize": 2, "pageNumber": 1}, order="asc")
    second = query(raw, main_token, paging={"pageSize": 2, "pageNumber": 2}, order="asc")
    assert len(first.body["conversations"]) == 2 and len(second.body["conversations"]) == 1
    assert first.body["totalHits"] == second.body["totalHits"] == 3
    assert not ids(first) & ids(second)
    past = query(raw, main_token, paging={"pageSize": 2, "pageNumber": 3})
    assert "conversations" not in past.body and past.body["totalHits"] == 3


def test_nothing_found_omits_conversations(raw: RawClient, main_token: str) -> None:
    reply = raw.call(
        "POST",
        QUERY,
        main_token,
        {"interval": "2020-01-01T00:00:00Z/2020-01-02T00:00:00.000+00:00"},
    )
    assert reply.status == 200 and "conversations" not in reply.body


def test_only_conversations_started_in_the_interval(
    raw: RawClient, main_token: str, mixed: dict[str, Any]
) -> None:
    future = datetime.now(UTC) + timedelta(minutes=5)
    text = f"{future.isoformat()}/{(future + timedelta(hours=1)).isoformat()}"
    assert "conversations" not in raw.call("POST", QUERY, main_token, {"interval": text}).body


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"interval": "yesterday"},
        {"interval": "2025-01-02T00:00:00Z/2025-01-01T00:00:00Z"},
        {
            "interval": "2025-01-01T00:00:00Z/2025-01-02T00:00:00Z",
            "paging": {"pageSize": 100, "pageNumber": 1001},
        },
        {
            "interval": "2025-01-01T00:00:00Z/2025-01-02T00:00:00Z",
            "paging": {"pageSize": 101, "pageNumber": 1},
        },
        {
            "interval": "2025-01-01T00:00:00Z/2025-01-02T00:00:00Z",
            "segmentFilters": [{"type": "xor", "predicates": []}],
        },
    ],
)
def test_bad_queries_are_400(raw: RawClient, main_token: str, body: dict[str, Any]) -> None:
    reply = raw.call("POST", QUERY, main_token, body)
    assert (reply.status, reply.body["code"]) == (400, "bad.request")


def test_pagination_limit_message(raw: RawClient, main_token: str) -> None:
    body = {"interval": interval(), "paging": {"pageSize": 100, "pageNumber": 1001}}
    assert (
        raw.call("POST", QUERY, main_token, body).body["message"]
        == "Pagination may not exceed 100000 results."
    )


def test_analytics_permission(raw: RawClient) -> None:
    token = raw.bearer("no-analytics", "no-analytics-secret")
    reply = raw.call("POST", QUERY, token, {"interval": interval()})
    assert reply.status == 403 and "analytics:conversationDetail:view" in reply.body["message"]
