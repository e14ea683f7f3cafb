from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from platform_samples import SAMPLES
from wrapupd.events import (
    ChannelEnded,
    ConversationEvent,
    Heartbeat,
    SocketClosing,
    UnknownFrame,
)
from wrapupd.genesys import notifications
from wrapupd.genesys.notifications import parse_frame, queue_id_from_topic, queue_topic

QUEUE = "3b0b0c1e-5d3f-4c1a-9a0e-1f2d3c4b5a61"
AGENT = "8f2c4a6e-1b3d-4e5f-9a7b-c8d9e0f1a2b3"


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / name).read_text())
    return data


def frame(topic: str, body: Any) -> str:
    return json.dumps({"topicName": topic, "version": "2", "eventBody": body, "metadata": {}})


def conversation(participants: list[Any]) -> str:
    return frame(queue_topic(QUEUE), {"id": "conv-1", "participants": participants})


def agent_leg(**fields: Any) -> dict[str, Any]:
    """An agent leg that entered ACW (an event snapshot keeps no other), with ``fields`` over it."""
    return {"id": "p", "purpose": "agent", "startAcwTime": "2025-06-10T11:58:41.900Z", **fields}


def only_participant(raw: str) -> Any:
    event = parse_frame(raw)
    assert isinstance(event, ConversationEvent), event
    (participant,) = event.conversation.participants
    return participant


# --- topics -----------------------------------------------------------------------------------


def test_queue_topic_round_trips() -> None:
    assert queue_topic(QUEUE) == f"v2.routing.queues.{QUEUE}.conversations"
    assert queue_id_from_topic(queue_topic(QUEUE)) == QUEUE


@pytest.mark.parametrize(
    "topic",
    [
        "v2.routing.queues..conversations",
        f"v2.routing.queues.{QUEUE}.conversations.calls",
        f"v2.routing.queues.{QUEUE}",
        f"v2.users.{QUEUE}.conversations",
        "channel.metadata",
    ],
)
def test_other_topics_have_no_queue_id(topic: str) -> None:
    assert queue_id_from_topic(topic) is None


# --- samples ----------------------------------------------------------------------------------


def test_agent_in_acw_sample() -> None:
    event = parse_frame(json.dumps(sample("queue_event_agent_in_acw.json")))
    assert isinstance(event, ConversationEvent)
    assert event.queue_id == QUEUE
    snap = event.conversation
    assert snap.id == "a1f3c0de-2b8e-4d6a-9c41-77e0b5d2f9a3"
    (agent,) = snap.participants  # the customer and ACD legs are no decision's business
    assert agent.id == AGENT
    assert agent.user_id == "5f6fe78e-dfbb-400f-a70b-d9b5c8340fdc"
    assert agent.queue_id == QUEUE
    assert agent.start_acw_time == datetime(2025, 6, 10, 11, 58, 41, 900000, tzinfo=UTC)
    assert agent.end_acw_time is None
    assert agent.wrapup_code is None
    assert agent.wrapup_prompt == "mandatory"
    assert agent.media_type == "call"
    (call,) = agent.communications
    assert call.id == "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"
    assert (call.state, call.acw_state, call.wrapup_code) == ("disconnected", "pending", None)


def test_wrapup_applied_sample() -> None:
    event = parse_frame(json.dumps(sample("queue_event_agent_wrapup_applied.json")).encode())
    assert isinstance(event, ConversationEvent)
    agent = event.conversation.participants[-1]
    assert agent.wrapup_code == "560d87d0-ed4c-4662-903d-dce00bfae927"
    assert agent.end_acw_time == datetime(2025, 6, 10, 11, 59, 2, 311000, tzinfo=UTC)
    assert agent.communications[0].acw_state == "complete"


# --- system and metadata frames ---------------------------------------------------------------


def test_heartbeat_and_pong() -> None:
    beat = frame("channel.metadata", {"message": "WebSocket Heartbeat"})
    assert parse_frame(beat) == Heartbeat(pong=False)
    assert parse_frame(frame("channel.metadata", {"message": "pong"})) == Heartbeat(pong=True)


def test_socket_closing() -> None:
    assert parse_frame(frame("v2.system.socket_closing", {})) == SocketClosing()


@pytest.mark.parametrize("kind", ["no_longer_subscribed", "token_revoked"])
def test_channel_ended(kind: str) -> None:
    topic = f"v2.system.{kind}.chan-1"
    body = {"channelId": "chan-1", "systemTopicType": kind, "reason": "expired", "message": "m"}
    assert parse_frame(frame(topic, body)) == ChannelEnded(topic, "expired")
    assert parse_frame(frame(topic, None)) == ChannelEnded(topic, None)


def test_unknown_topic() -> None:
    result = parse_frame(frame("v2.users.u1.presence", {}))
    assert result == UnknownFrame("v2.users.u1.presence", "unknown_topic")


# --- malformed input --------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["", "{", "not json", b"\xff\xfe", "[" * 100_000])
def test_malformed_json(raw: str | bytes) -> None:
    result = parse_frame(raw)
    assert isinstance(result, UnknownFrame)
    assert result.problem == "malformed_json"


@pytest.mark.parametrize(
    "raw", ["[]", "42", "null", '"x"', "{}", '{"topicName": 7}', '{"topicName": ""}']
)
def test_bad_envelope(raw: str) -> None:
    result = parse_frame(raw)
    assert isinstance(result, UnknownFrame)
    assert result.problem == "bad_envelope"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (None, "eventBody: Expected `object`, got `null`"),
        ([], "eventBody: Expected `object`, got `array`"),
        ({"participants": []}, "missing required field `id`"),
        ({"id": ""}, "at `$.id`"),
        ({"id": 5}, "at `$.id`"),
        ({"id": "c", "participants": {}}, "at `$.participants`"),
        ({"id": "c", "participants": ["x"]}, "at `$.participants[0]`"),
        ({"id": "c", "participants": [{"purpose": "agent"}]}, "`id` - at `$.participants[0]`"),
        ({"id": "c", "participants": [{"id": "p", "purpose": 3}]}, "$.participants[0].purpose"),
        ({"id": "c", "participants": [{"id": "p", "startAcwTime": 12}]}, "[0].startAcwTime"),
        ({"id": "c", "participants": [{"id": "p", "endAcwTime": "yesterday"}]}, "[0].endAcwTime"),
        ({"id": "c", "participants": [{"id": "p", "wrapup": "x"}]}, "[0].wrapup`"),
        ({"id": "c", "participants": [{"id": "p", "wrapup": {"code": 1}}]}, "[0].wrapup.code"),
        ({"id": "c", "participants": [{"id": "p", "wrapupTimeoutMs": "9"}]}, "[0].wrapupTimeoutMs"),
        (
            {"id": "c", "participants": [agent_leg(wrapupTimeoutMs=1.5)]},
            "wrapupTimeoutMs is not an integer",
        ),
        ({"id": "c", "participants": [{"id": "p", "calls": {}}]}, "[0].calls`"),
        ({"id": "c", "participants": [{"id": "p", "calls": [1]}]}, "[0].calls[0]`"),
        (
            {"id": "c", "participants": [{"id": "p", "calls": [{"afterCallWork": []}]}]},
            "calls[0].afterCallWork",
        ),
    ],
)
def test_bad_conversation(body: Any, detail: str) -> None:
    result = parse_frame(frame(queue_topic(QUEUE), body))
    assert isinstance(result, UnknownFrame)
    assert result.problem == "bad_conversation"
    assert result.topic == queue_topic(QUEUE)
    assert detail in result.detail


# --- field details ----------------------------------------------------------------------------


def test_times_accept_z_offset_and_naive() -> None:
    expected = datetime(2025, 6, 10, 11, 58, 41, 900000, tzinfo=UTC)
    for text in (
        "2025-06-10T11:58:41.900Z",
        "2025-06-10T11:58:41.900+00:00",
        "2025-06-10T11:58:41.9",
    ):
        participant = only_participant(conversation([agent_leg(startAcwTime=text)]))
        assert participant.start_acw_time == expected


def test_unknown_keys_and_nulls_are_ignored() -> None:
    raw: dict[str, Any] = agent_leg(
        **{
            "additionalProperties": {},
            "userId": None,
            "wrapup": None,
            "calls": None,
            "futureField": [1, 2, {"x": None}],
            "chats": [{"id": "c1", "additionalProperties": {}, "afterCallWork": None}],
        }
    )
    participant = only_participant(conversation([raw, {"id": "q", "purpose": None}]))
    assert participant.user_id is None and participant.wrapup_code is None
    assert participant.communications[0].acw_state is None


def test_communication_level_wrapup_and_every_media_array() -> None:
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
    raw: dict[str, Any] = agent_leg(wrapup={"code": ""})
    for key in arrays:
        raw[key] = [{"id": key, "state": "connected", "wrapup": {"code": f"code-{key}"}}]
    participant = only_participant(conversation([raw]))
    assert participant.wrapup_code is None  # an empty code is no code
    assert [c.media_type for c in participant.communications] == list(arrays.values())
    assert [c.wrapup_code for c in participant.communications] == [f"code-{k}" for k in arrays]


def test_enumeration_values_the_sdk_does_not_know_pass_through() -> None:
    raw = agent_leg(
        wrapupPrompt="someFuturePrompt",
        calls=[{"id": "c", "state": "parkedSomewhere", "afterCallWork": {"state": "paused"}}],
    )
    participant = only_participant(conversation([raw, {"id": "v", "purpose": "virtualAgent"}]))
    assert participant.wrapup_prompt == "someFuturePrompt"
    (call,) = participant.communications
    assert (call.state, call.acw_state) == ("parkedSomewhere", "paused")


def test_a_queue_frame_without_an_event_body_is_a_bad_conversation() -> None:
    result = parse_frame(json.dumps({"topicName": queue_topic(QUEUE)}))
    assert result == UnknownFrame(queue_topic(QUEUE), "bad_conversation", "eventBody missing")


def test_bytes_and_text_frames_read_alike() -> None:
    raw = json.dumps(sample("queue_event_agent_in_acw.json"))
    assert parse_frame(raw) == parse_frame(raw.encode())


def test_integral_float_timeout_is_accepted() -> None:
    participant = only_participant(conversation([agent_leg(wrapupTimeoutMs=120000.0)]))
    assert participant.wrapup_timeout_ms == 120000


# --- fuzz -------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=15), children, max_size=4)
    ),
    max_leaves=25,
)
participant_keys = st.sampled_from(
    ["id", "purpose", "userId", "queueId", "startAcwTime", "endAcwTime", "wrapup", "wrapupPrompt",
     "wrapupTimeoutMs", "calls", "chats", "emails", "messages", "afterCallWork", "state", "code"]
)  # fmt: skip
field_values = json_values | st.sampled_from(
    ["2025-06-10T11:58:41.900Z", "2025-13-99T99:00:00Z", "pending", {"code": "x"}, [{}]]
)
participants = st.lists(st.dictionaries(participant_keys, field_values, max_size=8), max_size=3)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_parse_frame_never_raises_on_any_text(raw: str | bytes) -> None:
    parse_frame(raw)


any_topic = st.sampled_from(
    [
        queue_topic(QUEUE),
        "channel.metadata",
        "v2.system.token_revoked.x",
        "v2.system.socket_closing",
    ]
) | st.text(max_size=40)
any_body = json_values | st.fixed_dictionaries(
    {"id": st.text(max_size=5), "participants": participants}
)


@settings(max_examples=300, deadline=None)
@given(topic=any_topic, body=any_body)
def test_parse_frame_never_raises_on_any_envelope(topic: str, body: Any) -> None:
    result = parse_frame(frame(topic, body))
    assert isinstance(
        result, ConversationEvent | Heartbeat | ChannelEnded | SocketClosing | UnknownFrame
    )


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_mutated_sample_never_raises(data: st.DataObject) -> None:
    event = copy.deepcopy(sample("queue_event_agent_in_acw.json"))
    agent = event["eventBody"]["participants"][2]
    call = agent["calls"][0]
    call[data.draw(st.sampled_from(sorted(call)))] = data.draw(field_values)
    agent[data.draw(st.sampled_from(sorted(agent)))] = data.draw(field_values)
    parse_frame(json.dumps(event))


@settings(max_examples=300, deadline=None)
@given(topic=any_topic, body=any_body)
def test_the_one_pass_read_and_the_careful_read_agree(topic: str, body: Any) -> None:
    raw = frame(topic, body)
    assert parse_frame(raw) == notifications._parse_envelope_first(raw)
