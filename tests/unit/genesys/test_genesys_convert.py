"""REST models (as the SDK deserialises them) -> wrapupd types."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from PureCloudPlatformClientV2 import ApiClient

from platform_samples import SAMPLES
from wrapupd.detector import decide, may_concern_wrapup
from wrapupd.events import ConversationSnapshot, TopicResult
from wrapupd.genesys.convert import (
    BadConversation,
    EventConversation,
    channel_from_model,
    queue_from_model,
    snapshot_from_event,
    snapshot_from_model,
    topic_results_from_model,
)
from wrapupd.genesys.http import HttpResponse


def model(data: Any, klass: str) -> Any:
    """Deserialise JSON the way the generated API methods do."""
    response = HttpResponse(200, "OK", json.dumps(data), {"Content-Type": "application/json"})
    return ApiClient(host="http://127.0.0.1:9").deserialize(response, klass)


def snapshot_from_event_body(body: dict[str, Any]) -> ConversationSnapshot:
    """An ``eventBody`` already decoded to dicts, read as the one-pass frame decode reads it."""
    return snapshot_from_event(msgspec.convert(body, EventConversation))


def event_body(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((SAMPLES / name).read_text())["eventBody"]
    return body


@pytest.mark.parametrize(
    "name", ["queue_event_agent_in_acw.json", "queue_event_agent_wrapup_applied.json"]
)
def test_rest_and_event_snapshots_agree(name: str) -> None:
    body = event_body(name)
    rest = snapshot_from_model(model(body, "Conversation"))
    event = snapshot_from_event_body(body)
    assert len(rest.participants) == len(body["participants"])  # a REST snapshot keeps them all
    in_acw = tuple(p for p in rest.participants if may_concern_wrapup(p.purpose, p.start_acw_time))
    assert in_acw and event.participants == in_acw
    watched = {p.queue_id for p in rest.participants if p.queue_id}
    assert decide(event, watched) == decide(rest, watched)


def test_an_event_snapshot_keeps_only_the_agent_legs_that_entered_acw() -> None:
    acw = "2025-06-10T11:58:41.900Z"
    body = {
        "id": "c",
        "participants": [
            {"id": "customer", "purpose": "customer", "calls": [{"id": "x"}]},
            {"id": "acd", "purpose": "acd", "queueId": "q"},
            {"id": "alerted", "purpose": "agent", "queueId": "q"},
            {"id": "ivr-with-acw-time", "purpose": "ivr", "startAcwTime": acw},
            {"id": "agent", "purpose": "agent", "queueId": "q", "startAcwTime": acw},
        ],
    }
    snapshot = snapshot_from_event_body(body)
    assert [p.id for p in snapshot.participants] == ["agent"]


def test_every_rest_media_array_and_communication_wrapup() -> None:
    arrays = {
        "calls": "call",
        "callbacks": "callback",
        "chats": "chat",
        "emails": "email",
        "messages": "message",
        "socialExpressions": "social",
        "videos": "video",
        "cobrowsesessions": "cobrowse",
        "screenshares": "screenshare",
    }
    participant: dict[str, Any] = {"id": "p", "purpose": "agent", "wrapupPrompt": "timeout"}
    for key in arrays:
        participant[key] = [
            {"id": key, "afterCallWork": {"state": "pending"}, "wrapup": {"code": f"w-{key}"}}
        ]
    snap = snapshot_from_model(model({"id": "c", "participants": [participant]}, "Conversation"))
    (p,) = snap.participants
    assert [c.media_type for c in p.communications] == list(arrays.values())
    assert {c.acw_state for c in p.communications} == {"pending"}
    assert [c.wrapup_code for c in p.communications] == [f"w-{k}" for k in arrays]
    assert p.wrapup_prompt == "timeout"


def test_unknown_enum_values_pass_through_as_the_sdk_marks_them() -> None:
    participant = {"id": "p", "calls": [{"id": "x", "afterCallWork": {"state": "brandNew"}}]}
    snap = snapshot_from_model(model({"id": "c", "participants": [participant]}, "Conversation"))
    assert snap.participants[0].communications[0].acw_state == "outdated_sdk_version"


def test_rest_times_with_offset_or_naive_are_utc() -> None:
    participant = {
        "id": "p",
        "startAcwTime": "2025-06-10T11:58:41.900+00:00",
        "endAcwTime": "2025-06-10T11:59:02.311",
    }
    snap = snapshot_from_model(model({"id": "c", "participants": [participant]}, "Conversation"))
    (p,) = snap.participants
    assert p.start_acw_time == datetime(2025, 6, 10, 11, 58, 41, 900000, tzinfo=UTC)
    assert p.end_acw_time == datetime(2025, 6, 10, 11, 59, 2, 311000, tzinfo=UTC)


def test_rest_conversation_without_id_is_refused() -> None:
    with pytest.raises(BadConversation):
        snapshot_from_model(model({"participants": []}, "Conversation"))


def test_queue_channel_and_topics() -> None:
    queue = queue_from_model(
        model({"id": "q", "name": "Support", "acwSettings": {"wrapupPrompt": "OPTIONAL"}}, "Queue")
    )
    assert (queue.id, queue.name, queue.wrapup_prompt, queue.acw_timeout_ms) == (
        "q",
        "Support",
        "OPTIONAL",
        None,
    )
    assert not queue.time_boxed
    channel = channel_from_model(model({"id": "ch", "connectUri": "wss://x/ch"}, "Channel"))
    assert channel.expires is None
    listing = model({"entities": [{"id": "t1"}, {"id": "t2", "state": "Rejected"}]},
                    "ChannelTopicEntityListing")  # fmt: skip
    assert topic_results_from_model(listing) == [TopicResult("t1", True), TopicResult("t2", False)]
