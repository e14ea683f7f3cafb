"""Org scale for issues 13/14: thousands of generated queues, listed by pages and subscribed over
several channels of 1,000 topics. Functional only; the speed figures are in bench/emulator_scale.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.sync.client import connect

from emulator_client import RawClient
from genesys_emulator.testing import RunningEmulator

EXTRA = 2500
CHANNELS = "/api/v2/notifications/channels"


@pytest.fixture
def scaled(emulator: RunningEmulator, raw: RawClient) -> tuple[RunningEmulator, str]:
    emulator.reset(extra_queues=EXTRA)
    return emulator, raw.bearer(emulator.client_id, emulator.client_secret)


def all_queues(raw: RawClient, token: str) -> list[dict[str, Any]]:
    queues, path = [], "/api/v2/routing/queues?pageSize=500&pageNumber=1"
    while path:
        page = raw.call("GET", path, token).body
        queues += page["entities"]
        path = page.get("nextUri")
    return queues


def test_generated_queues_are_listed_by_pages_in_name_order(
    scaled: tuple[RunningEmulator, str], raw: RawClient
) -> None:
    _, token = scaled
    queues = all_queues(raw, token)
    assert len(queues) == EXTRA + 6 == len({q["id"] for q in queues})
    names = [q["name"].lower() for q in queues]
    assert names == sorted(names)
    first = raw.call("GET", "/api/v2/routing/queues?pageSize=500", token).body
    assert (first["total"], first["pageCount"]) == (EXTRA + 6, 6)


def test_generated_queues_have_codes_and_stable_ids(
    scaled: tuple[RunningEmulator, str], raw: RawClient
) -> None:
    emulator, token = scaled
    queue = raw.call("GET", "/api/v2/routing/queues?name=Scale%20Queue%2002500", token).body
    queue_id = queue["entities"][0]["id"]
    codes = raw.call("GET", f"/api/v2/routing/queues/{queue_id}/wrapupcodes", token).body
    assert codes["total"] == 2
    emulator.reset()
    emulator.reset(extra_queues=EXTRA)  # generated again from scratch
    token = raw.bearer(emulator.client_id, emulator.client_secret)  # a reset forgets tokens
    again = raw.call("GET", "/api/v2/routing/queues?name=Scale%20Queue%2002500", token).body
    assert again["entities"][0]["id"] == queue_id


def test_several_channels_of_a_thousand_topics_receive_their_events(
    scaled: tuple[RunningEmulator, str], raw: RawClient
) -> None:
    emulator, token = scaled
    topics = [f"v2.routing.queues.{q['id']}.conversations" for q in all_queues(raw, token)]
    channels = []
    for start in range(0, 2000, 1000):
        channel = raw.call("POST", CHANNELS, token).body
        body = [{"id": t} for t in topics[start : start + 1000]]
        reply = raw.call("PUT", f"{CHANNELS}/{channel['id']}/subscriptions", token, body)
        assert reply.status == 200 and len(reply.body["entities"]) == 1000
        channels.append(channel)
    over = raw.call(
        "POST", f"{CHANNELS}/{channels[0]['id']}/subscriptions", token, [{"id": topics[2000]}]
    )
    assert over.status == 400
    target = topics[1500]  # on the second channel
    queue_id = target.split(".")[3]
    with connect(channels[1]["connectUri"], max_size=None) as ws:
        ws.send(json.dumps({"message": "ping"}))
        started = emulator.start_conversation(queue=queue_id, outcome="nothing")
        while True:
            frame = json.loads(ws.recv(timeout=5))
            if frame.get("eventBody", {}).get("id") == started["conversationId"]:
                assert frame["topicName"] == target
                break


def test_a_thousand_topics_over_the_socket(
    scaled: tuple[RunningEmulator, str], raw: RawClient
) -> None:
    _, token = scaled
    topics = [f"v2.routing.queues.{q['id']}.conversations" for q in all_queues(raw, token)]
    channel = raw.call("POST", CHANNELS, token).body
    with connect(channel["connectUri"], max_size=None) as ws:
        ws.send(json.dumps({"message": "subscribe", "topics": topics[:1000], "correlationId": "s"}))
        ack = next(f for f in (json.loads(ws.recv(timeout=5)) for _ in range(50)) if "result" in f)
        assert ack["result"] == "200"
    listed = raw.call("GET", f"{CHANNELS}/{channel['id']}/subscriptions", token).body
    assert len(listed["entities"]) == 1000
