"""The traffic engine against ground truth, scripted actions, faults, and bad control input."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections import Counter
from typing import Any

import pytest
from websockets.sync.client import connect

from emulator_client import RawClient
from genesys_emulator.testing import ControlPlaneError, RunningEmulator

TIMEOUT_CODE = "ININ-WRAP-UP-TIMEOUT"


def entry(emulator: RunningEmulator, participant_id: str) -> dict[str, Any] | None:
    return next((e for e in emulator.ground_truth() if e["participantId"] == participant_id), None)


def settled(emulator: RunningEmulator, participant_id: str, by: str | None) -> Any:
    found = entry(emulator, participant_id)
    return found if found is not None and found["wrapup"]["by"] == by else None


def test_agent_codes_with_the_scripted_code(emulator: RunningEmulator, wait: Any) -> None:
    started = emulator.start_conversation(
        queue="Support", talk_s=0.01, agent_delay_s=0.02, code="Resolved"
    )
    found = wait(lambda: settled(emulator, started["participantId"], "agent"))
    assert found["wrapup"]["name"] == "Resolved" and found["acwEndedAt"] == found["wrapup"]["at"]


def test_skip_on_an_optional_queue(emulator: RunningEmulator, wait: Any, sdk: Any) -> None:
    import PureCloudPlatformClientV2 as sdk_module

    started = emulator.start_conversation(
        queue="Sales", talk_s=0.01, outcome="skip", agent_delay_s=0.02
    )
    found = wait(lambda: settled(emulator, started["participantId"], "skipped"))
    assert found["wrapup"]["code"] is None and found["acwEndedAt"]
    agent = (
        sdk_module.ConversationsApi(sdk).get_conversation(started["conversationId"]).participants[2]
    )
    assert agent.wrapup_skipped is True and agent.calls[0].after_call_work.state == "skipped"


def test_nothing_leaves_untimed_acw_open(emulator: RunningEmulator, wait: Any) -> None:
    started = emulator.start_conversation(queue="Support", talk_s=0.01, outcome="nothing")
    found = wait(lambda: entry(emulator, started["participantId"]))
    time.sleep(0.1)  # nothing is supposed to happen: give it a chance to
    found = entry(emulator, started["participantId"])
    assert found is not None and found["acwEndedAt"] is None and found["wrapup"]["by"] is None


@pytest.mark.parametrize("queue", ["Fast Timeout", "Fast Forced"])
def test_time_boxed_acw_stamps_the_timeout_code(
    emulator: RunningEmulator, wait: Any, queue: str
) -> None:
    emulator.reset(org="test")
    started = emulator.start_conversation(queue=queue, talk_s=0.01, outcome="nothing")
    found = wait(lambda: settled(emulator, started["participantId"], "timeout"))
    assert found["wrapup"]["code"] == TIMEOUT_CODE


def test_agent_faster_than_timeout_wins(emulator: RunningEmulator, wait: Any) -> None:
    emulator.reset(org="test")
    started = emulator.start_conversation(queue="Fast Timeout", talk_s=0.01, agent_delay_s=0.02)
    assert wait(lambda: settled(emulator, started["participantId"], "agent"))


def test_skip_on_a_mandatory_queue_is_refused(emulator: RunningEmulator) -> None:
    with pytest.raises(ControlPlaneError) as caught:
        emulator.start_conversation(queue="Support", outcome="skip")
    assert caught.value.status == 400 and "skip" in caught.value.body["error"]


def test_step_by_step_actions(emulator: RunningEmulator, wait: Any) -> None:
    a = emulator.start_conversation(queue="Sales", talk_s=0.01, outcome="nothing")
    b = emulator.start_conversation(queue="Sales", talk_s=0.01, outcome="nothing")
    c = emulator.start_conversation(queue="Support", talk_s=0.01, outcome="nothing")
    wait(lambda: len(emulator.ground_truth()) == 3)
    emulator.action(a["conversationId"], action="agent_wrapup", code="Quote sent")
    emulator.action(b["conversationId"], action="skip")
    emulator.action(c["conversationId"], action="end_acw")
    assert entry(emulator, a["participantId"])["wrapup"]["name"] == "Quote sent"
    assert entry(emulator, b["participantId"])["wrapup"]["by"] == "skipped"
    ended = entry(emulator, c["participantId"])
    assert ended["acwEndedAt"] and ended["wrapup"]["by"] is None
    with pytest.raises(ControlPlaneError):
        emulator.action(a["conversationId"], action="skip")


def test_republish_and_silent(
    emulator: RunningEmulator, raw: RawClient, main_token: str, wait: Any
) -> None:
    support = next(
        q["id"]
        for q in emulator.control("GET", "/_emulator/org")["queues"]
        if q["name"] == "Support"
    )
    chan = raw.call("POST", "/api/v2/notifications/channels", main_token).body
    topics = [{"id": f"v2.routing.queues.{support}.conversations"}]
    raw.call(
        "PUT", f"/api/v2/notifications/channels/{chan['id']}/subscriptions", main_token, topics
    )
    with connect(chan["connectUri"]) as ws:
        silent = emulator.start_conversation(
            queue="Support", talk_s=0.01, outcome="nothing", silent=True
        )
        loud = emulator.start_conversation(queue="Support", talk_s=0.01, outcome="nothing")
        wait(lambda: len(emulator.ground_truth()) == 2)
        emulator.action(loud["conversationId"], action="republish")
        seen: Counter[str] = Counter()
        bodies: list[dict[str, Any]] = []
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            try:
                frame = json.loads(ws.recv(timeout=0.05))
            except TimeoutError:
                continue
            if frame["topicName"].startswith("v2.routing"):
                seen[frame["eventBody"]["id"]] += 1
                bodies.append(frame["eventBody"])
    assert seen[silent["conversationId"]] == 0
    assert seen[loud["conversationId"]] == 4  # alerting, connected, ACW, republished
    assert bodies[-1]["participants"] == bodies[-2]["participants"]


def test_conference_and_extra_agents(emulator: RunningEmulator, wait: Any) -> None:
    started = emulator.start_conversation(
        queue="Support",
        talk_s=0.01,
        outcome="nothing",
        conference=2,
        extra_agents=[
            {"queue": "Unwatched Queue", "outcome": "agent_codes", "agent_delay_s": 0.01}
        ],
    )
    assert len(started["participants"]) == 3
    wait(lambda: any(e["wrapup"]["by"] == "agent" for e in emulator.ground_truth()))
    queues = Counter(e["queueId"] for e in emulator.ground_truth())
    assert sorted(queues.values()) == [1, 2]


def test_conversation_ends_when_the_last_agent_finishes(
    emulator: RunningEmulator, wait: Any
) -> None:
    started = emulator.start_conversation(
        queue="Support", talk_s=0.01, outcome="nothing", conference=2
    )
    wait(lambda: len(emulator.ground_truth()) == 2)
    conv = emulator.control("GET", f"/_emulator/conversations/{started['conversationId']}")
    assert "endTime" not in conv
    for p in started["participants"]:
        emulator.action(
            started["conversationId"], action="agent_wrapup", participantId=p["participantId"]
        )
    conv = emulator.control("GET", f"/_emulator/conversations/{started['conversationId']}")
    assert "endTime" in conv


def test_generated_traffic_matches_ground_truth(emulator: RunningEmulator, wait: Any) -> None:
    emulator.reset(org="test")
    run = emulator.traffic(
        count=40,
        rate_per_s=400,
        queues=["Fast Mandatory", "Fast Optional", "Fast Timeout"],
        mix={"agent_codes": 0.4, "skip": 0.3, "nothing": 0.3},
        talk_s=[0.0, 0.02],
        agent_delay_s=[0.0, 0.05],
        seed=7,
    )
    assert run["planned"] == 40
    progress = wait(lambda: (p := emulator.traffic_progress(run["trafficId"]))["done"] and p)
    assert progress["started"] == progress["finished"] == 40
    truth = emulator.ground_truth()
    assert len(truth) == 40
    by = Counter(e["wrapup"]["by"] for e in truth)
    assert set(by) <= {"agent", "skipped", "timeout", None}
    assert by["agent"] > 0 and by["skipped"] > 0 and by["timeout"] > 0
    for e in truth:
        if e["wrapup"]["by"] == "skipped":
            assert e["wrapupPrompt"] == "OPTIONAL"
        if e["wrapup"]["by"] is None:
            assert e["wrapupPrompt"] in ("MANDATORY", "OPTIONAL") and e["acwEndedAt"] is None
        if e["wrapup"]["by"] == "timeout":
            assert e["wrapup"]["code"] == TIMEOUT_CODE


def test_traffic_media_mix(emulator: RunningEmulator, wait: Any) -> None:
    run = emulator.traffic(
        count=10,
        duration_s=0.05,
        media=["chat", "email"],
        queues=["Support", "Sales"],
        talk_s=0.0,
        agent_delay_s=0.0,
        seed=1,
    )
    wait(lambda: emulator.traffic_progress(run["trafficId"])["done"])
    assert {e["mediaType"] for e in emulator.ground_truth()} <= {"chat", "email"}


# --- faults on the REST side ----------------------------------------------------------------


def test_scripted_429_sequence_then_success(
    emulator: RunningEmulator, raw: RawClient, main_token: str
) -> None:
    emulator.fault(
        kind="http", method="GET", path="/api/v2/routing/queues", status=429, retry_after=2, count=2
    )
    emulator.fault(kind="http", method="GET", path="/api/v2/routing/queues", status=503, count=1)
    replies = [raw.call("GET", "/api/v2/routing/queues", main_token) for _ in range(4)]
    assert [r.status for r in replies] == [429, 429, 503, 200]
    assert replies[0].headers["Retry-After"] == "2"
    assert replies[0].body["code"] == "too.many.requests.retry.after"
    assert replies[2].body["code"] == "service.unavailable"
    calls = {(c["path"], c["status"]): c["count"] for c in emulator.calls()}
    assert calls[("/api/v2/routing/queues", 429)] == 2


def test_faulted_wrapup_writes_are_counted(
    emulator: RunningEmulator, raw: RawClient, main_token: str, wait: Any
) -> None:
    started = emulator.start_conversation(queue="Support", talk_s=0.01, outcome="nothing")
    wait(lambda: entry(emulator, started["participantId"]))
    emulator.fault(
        kind="http",
        method="PATCH",
        path="/api/v2/conversations/*/participants/*",
        status=500,
        count=1,
    )
    path = (
        f"/api/v2/conversations/{started['conversationId']}/participants/{started['participantId']}"
    )
    assert raw.call("PATCH", path, main_token, {"wrapup": {"code": "x"}}).status == 500
    assert entry(emulator, started["participantId"])["apiWrapupCalls"] == 1
    patch = next(c for c in emulator.calls() if c["method"] == "PATCH")
    assert (
        patch["path"] == "/api/v2/conversations/{id}/participants/{pid}" and patch["status"] == 500
    )


def test_latency_fault(emulator: RunningEmulator, raw: RawClient, main_token: str) -> None:
    emulator.fault(kind="latency", method="GET", path="/api/v2/routing/*", seconds=0.2, count=1)
    began = time.monotonic()
    assert raw.call("GET", "/api/v2/routing/wrapupcodes", main_token).status == 200
    assert time.monotonic() - began >= 0.2
    began = time.monotonic()
    raw.call("GET", "/api/v2/routing/wrapupcodes", main_token)
    assert time.monotonic() - began < 0.2


def test_clearing_faults(emulator: RunningEmulator, raw: RawClient, main_token: str) -> None:
    emulator.fault(kind="http", status=500, count=5)
    assert len(emulator.control("GET", "/_emulator/faults")["pending"]) == 1
    emulator.control("DELETE", "/_emulator/faults")
    assert raw.call("GET", "/api/v2/routing/queues", main_token).status == 200


def test_reset_clears_everything(
    emulator: RunningEmulator, raw: RawClient, main_token: str, wait: Any
) -> None:
    emulator.start_conversation(queue="Support", talk_s=0.01, outcome="nothing")
    wait(lambda: emulator.ground_truth())
    emulator.reset()
    assert emulator.ground_truth() == [] and emulator.calls() == []
    assert raw.call("GET", "/api/v2/routing/queues", main_token).status == 401


def test_a_request_held_across_a_reset_belongs_to_the_run_before_it(
    emulator: RunningEmulator, raw: RawClient, main_token: str
) -> None:
    """A request still held by a latency fault when the emulator is reset finishes afterwards;
    it is not counted in the new run's call log (a test scoring that run would count a stray)."""
    emulator.fault(kind="latency", method="GET", path="/api/v2/routing/*", seconds=0.3, count=1)
    held = threading.Thread(
        target=raw.call, args=("GET", "/api/v2/routing/wrapupcodes", main_token)
    )
    held.start()
    deadline = time.monotonic() + 5
    while emulator.control("GET", "/_emulator/faults")["pending"] and time.monotonic() < deadline:
        time.sleep(0.01)  # until the request has taken the hold
    emulator.reset()
    held.join(timeout=5)
    assert not held.is_alive()
    assert emulator.calls() == []


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/_emulator/conversations", {"queue": "Nope"}),
        ("POST", "/_emulator/conversations", {"queue": "Support", "media": "fax"}),
        ("POST", "/_emulator/conversations", {"queue": "Support", "talk_s": -1}),
        ("POST", "/_emulator/conversations", {"queue": "Support", "code": "Sale closed"}),
        ("POST", "/_emulator/conversations", [1, 2]),
        ("POST", "/_emulator/conversations/nope/actions", {"action": "skip"}),
        ("POST", "/_emulator/traffic", {}),
        ("POST", "/_emulator/traffic", {"count": 1, "mix": {"dance": 1}}),
        ("POST", "/_emulator/faults", {"kind": "earthquake"}),
        ("POST", "/_emulator/faults", {"kind": "http", "status": 200}),
        ("POST", "/_emulator/reset", {"heartbeat_interval_s": "fast"}),
        ("POST", "/_emulator/reset", {"no_such_option": 1}),
        ("POST", "/_emulator/reset", {"org": "no-such-org"}),
        ("GET", "/_emulator/traffic/nope", None),
    ],
)
def test_bad_control_input_is_400(
    emulator: RunningEmulator, method: str, path: str, body: object
) -> None:
    with pytest.raises(ControlPlaneError) as caught:
        emulator.control(method, path, body)
    assert caught.value.status == 400
    assert isinstance(caught.value.body["error"], str) and caught.value.body["error"]
    assert emulator.control("GET", "/_emulator/calls")["total"] >= 0  # still alive


def test_malformed_json_is_400(emulator: RunningEmulator, raw: RawClient) -> None:
    reply = raw.request(
        "POST", "/_emulator/conversations", b"{nope", {"Content-Type": "application/json"}
    )
    assert reply.status == 400 and "error" in reply.body


def test_a_late_answer_fault_lands_the_write_though_its_client_gave_up(
    emulator: RunningEmulator, raw: RawClient, main_token: str, wait: Any
) -> None:
    """Unlike ``latency`` (the request waits, and dies with a client that gives up), ``late_answer``
    handles the request at once and holds only its answer: the write is in the ground truth."""
    started = emulator.start_conversation(queue="Support", talk_s=0.01, outcome="nothing")
    wait(lambda: entry(emulator, started["participantId"]))
    org = emulator.control("GET", "/_emulator/org")
    queue_id = next(q["id"] for q in org["queues"] if q["name"] == "Support")
    codes = raw.call("GET", f"/api/v2/routing/queues/{queue_id}/wrapupcodes", main_token).body
    code = codes["entities"][0]["id"]
    emulator.fault(
        kind="late_answer",
        method="PATCH",
        path="/api/v2/conversations/*/participants/*",
        seconds=1.0,
        count=1,
    )
    path = (
        f"/api/v2/conversations/{started['conversationId']}/participants/{started['participantId']}"
    )
    request = urllib.request.Request(
        raw.base_url + path,
        data=json.dumps({"wrapup": {"code": code}}).encode(),
        method="PATCH",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {main_token}"},
    )
    with pytest.raises(TimeoutError):
        urllib.request.urlopen(request, timeout=0.2)

    landed = wait(lambda: settled(emulator, started["participantId"], "api"))
    assert landed["wrapup"]["code"] == code and landed["apiWrapupCalls"] == 1
