"""Every emulator endpoint and event, driven through the official SDK, checked against its models.

Each REST call goes through `PureCloudPlatformClientV2` pointed at the emulator; the raw JSON the
emulator sent (`ApiClient.last_response.data`, or `ApiException.body`) is then checked with
`sdk_schema.assert_conforms` against the response model the SDK itself declares for that call.
Events are read from the notification WebSocket with the `websockets` client and every frame is
checked. Nothing here hand-writes the expected JSON: the SDK models are the specification.
"""

from __future__ import annotations

import base64
import inspect
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import PureCloudPlatformClientV2
import pytest
from PureCloudPlatformClientV2 import (
    AnalyticsApi,
    ChannelTopic,
    ConversationsApi,
    MediaParticipantRequest,
    NotificationsApi,
    RoutingApi,
    UsersApi,
    WrapupInput,
)
from PureCloudPlatformClientV2.api_client import ApiClient
from PureCloudPlatformClientV2.rest import ApiException
from sdk_schema import assert_conforms, check, to_model
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from genesys_emulator.testing import RunningEmulator

pytestmark = pytest.mark.timeout(60)

from platform_samples import SAMPLES  # noqa: E402

ENVELOPE_KEYS = {"topicName", "version", "eventBody", "metadata"}
METADATA_FRAMES = {"WebSocket Heartbeat", "pong"}
MEDIA_ARRAYS = ("calls", "callbacks", "chats", "emails", "messages")
RATE_HEADERS = ("inin-ratelimit-count", "inin-ratelimit-allowed", "inin-ratelimit-reset")
NO_SUCH_ID = "0b5e9a7c-6d1f-4c2e-9a3b-7f8e1d2c3b4a"
POLL_S = 0.02
WAIT_S = 10.0
# GENESYS.md §3 names not.authorized; real missing-permission answers also use missing.permissions.
FORBIDDEN_CODES = {"not.authorized", "missing.permissions"}


# --- helpers ---------------------------------------------------------------------------------


def org_summary(emulator: RunningEmulator) -> dict[str, Any]:
    return emulator.control("GET", "/_emulator/org")


def queue_named(emulator: RunningEmulator, prompt: str) -> dict[str, Any]:
    """The first queue of the loaded org whose ACW prompt is `prompt`."""
    return next(q for q in org_summary(emulator)["queues"] if q["wrapupPrompt"] == prompt)


def client_where(emulator: RunningEmulator, accept: Callable[[dict[str, Any]], bool]) -> Any:
    client = next(c for c in org_summary(emulator)["clients"] if accept(c))
    return sdk_client(emulator, client["id"], client["secret"])


def sdk_client(emulator: RunningEmulator, client_id: str, secret: str) -> ApiClient:
    api = ApiClient(host=emulator.base_url)
    api.get_client_credentials_token(client_id, secret)
    return api


def main_client(emulator: RunningEmulator) -> ApiClient:
    return client_where(emulator, lambda c: c["main"])


def narrow_client(emulator: RunningEmulator) -> tuple[ApiClient, list[str], dict[str, Any]]:
    """A client that sees only some queues: its SDK client, the queue ids it sees, a hidden queue."""
    summary = org_summary(emulator)
    client = next(c for c in summary["clients"] if c["visibleQueues"] is not None)
    hidden = next(q for q in summary["queues"] if q["id"] not in client["visibleQueues"])
    api = sdk_client(emulator, client["id"], client["secret"])
    return api, client["visibleQueues"], hidden


def last_json(api: ApiClient) -> Any:
    """The raw JSON body of the SDK's last successful call, as the emulator sent it."""
    return json.loads(api.last_response.data)


def assert_platform_headers(headers: Any) -> None:
    """Every platform response carries the rate-limit and correlation headers (GENESYS.md §3)."""
    present = {name.lower() for name in headers}
    missing = [h for h in (*RATE_HEADERS, "inin-correlation-id") if h not in present]
    assert not missing, f"missing headers {missing} in {dict(headers)}"


def last_conforms(api: ApiClient, model: str) -> Any:
    body = last_json(api)
    assert_conforms(body, model)
    assert_platform_headers(api.last_response.getheaders())
    assert api.last_response.getheader("Content-Type").startswith("application/json")
    return body


def sdk_error(call: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[int, Any]:
    """Status and parsed body of the `ApiException` that `call` must raise."""
    with pytest.raises(ApiException) as raised:
        call(*args, **kwargs)
    error = raised.value
    return error.status, json.loads(error.body) if error.body else None


def assert_error_body(status: int, body: Any, expected_status: int, code: str | set[str]) -> None:
    assert status == expected_status, body
    assert_conforms(body, "ErrorBody")
    assert {"message", "code", "status", "contextId"} <= set(body), body
    assert body["status"] == expected_status
    assert body["code"] in ({code} if isinstance(code, str) else code), body
    assert body["message"]


def raw_request(
    emulator: RunningEmulator,
    method: str,
    path: str,
    token: str | None = None,
    body: object = None,
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
) -> tuple[int, dict[str, str], Any]:
    """Plain urllib, for what the SDK cannot send or hides (token bodies, 401s, raw routes)."""
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        data = json.dumps(body).encode()
    request = urllib.request.Request(
        emulator.base_url + path, data=data, method=method, headers=all_headers
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, got, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, got, raw = error.code, dict(error.headers), error.read()
    return status, got, json.loads(raw) if raw else None


def token_request(emulator: RunningEmulator, client_id: str, secret: str) -> tuple[int, Any]:
    """The client-credentials grant exactly as GENESYS.md §1 describes it (no SDK model exists)."""
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    status, _, body = raw_request(
        emulator,
        "POST",
        "/oauth/token",
        headers={
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        data=b"grant_type=client_credentials",
    )
    return status, body


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    """Poll an observable fact; never a bare sleep."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(POLL_S)
    return value


def participant(conversation: dict[str, Any], participant_id: str) -> dict[str, Any]:
    return next(p for p in conversation["participants"] if p["id"] == participant_id)


def communications(p: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for array in MEDIA_ARRAYS for c in p.get(array, [])]


def queue_topic(queue_id: str) -> str:
    return f"v2.routing.queues.{queue_id}.conversations"


def topics(*names: str) -> list[ChannelTopic]:
    result = []
    for name in names:
        topic = ChannelTopic()
        topic.id = name
        result.append(topic)
    return result


def wrapup_request(code_id: str, notes: str | None = None) -> MediaParticipantRequest:
    """Body **only** `{"wrapup": {...}}` (GENESYS.md §6); `wrapup` is a `WrapupInput` in SDK 269."""
    wrapup = WrapupInput()
    wrapup.code = code_id
    if notes is not None:
        wrapup.notes = notes
    body = MediaParticipantRequest()
    body.wrapup = wrapup
    return body


class Conversation:
    """A conversation started through the control plane and read back through the SDK."""

    def __init__(self, api: ApiClient, started: dict[str, Any]) -> None:
        self.api = api
        self.id: str = started["conversationId"]
        self.participant_id: str = started["participantId"]
        self.queue_id: str = started["queueId"]
        self.communication_id: str = started["communicationId"]
        self.snapshots: list[dict[str, Any]] = []

    def get(self) -> dict[str, Any]:
        """GET it through the SDK; every body read is checked against `Conversation`."""
        parsed = ConversationsApi(self.api).get_conversation(self.id)
        body = last_conforms(self.api, "Conversation")
        assert parsed.id == self.id
        self.snapshots.append(body)
        return body

    def agent(self) -> dict[str, Any]:
        return participant(self.get(), self.participant_id)

    def wait_agent(self, accept: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        def accepted() -> dict[str, Any] | None:
            agent = self.agent()
            return agent if accept(agent) else None

        return wait_for(accepted, what)


def agent_connected(agent: dict[str, Any]) -> bool:
    return any(c.get("state") == "connected" for c in communications(agent))


def agent_in_acw(agent: dict[str, Any]) -> bool:
    acw = [c.get("afterCallWork", {}).get("state") for c in communications(agent)]
    return "startAcwTime" in agent and "endAcwTime" not in agent and "pending" in acw


def agent_acw_over(agent: dict[str, Any]) -> bool:
    return "endAcwTime" in agent


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def api(emulator: RunningEmulator) -> ApiClient:
    return main_client(emulator)


@pytest.fixture
def mandatory_queue(emulator: RunningEmulator) -> dict[str, Any]:
    return queue_named(emulator, "MANDATORY")


def start(
    emulator: RunningEmulator, api: ApiClient, queue: dict[str, Any], **script: Any
) -> Conversation:
    script.setdefault("outcome", "nothing")
    script.setdefault("talk_s", 0.05)
    return Conversation(api, emulator.start_conversation(queue=queue["name"], **script))


# --- OAuth -----------------------------------------------------------------------------------


def test_token_response(emulator: RunningEmulator) -> None:
    status, body = token_request(emulator, emulator.client_id, emulator.client_secret)
    assert status == 200, body
    assert {"access_token", "token_type", "expires_in"} <= set(body)
    assert isinstance(body["access_token"], str) and body["access_token"]
    assert body["token_type"] == "bearer"
    assert isinstance(body["expires_in"], int) and not isinstance(body["expires_in"], bool)
    assert body["expires_in"] > 0
    assert set(body) <= {"access_token", "token_type", "expires_in", "scope", "refresh_token"}


@pytest.mark.parametrize("secret", ["wrong-secret", ""])
def test_bad_credentials_answer_an_oauth_error(emulator: RunningEmulator, secret: str) -> None:
    status, body = token_request(emulator, emulator.client_id, secret)
    assert status in (400, 401), body
    assert isinstance(body, dict) and isinstance(body.get("error"), str), body
    with pytest.raises(ApiException) as raised:
        ApiClient(host=emulator.base_url).get_client_credentials_token(emulator.client_id, secret)
    assert raised.value.status in (400, 401)


def test_sdk_token_call_stores_a_working_token(api: ApiClient) -> None:
    assert api.access_token
    RoutingApi(api).get_routing_queues()
    assert_conforms(last_json(api), "QueueEntityListing")


@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_missing_or_bad_bearer_is_a_401_error_body(
    emulator: RunningEmulator, token: str | None
) -> None:
    status, _, body = raw_request(emulator, "GET", "/api/v2/routing/queues", token=token)
    assert status == 401
    assert_conforms(body, "ErrorBody")
    assert body["status"] == 401
    with pytest.raises(ApiException) as raised:
        api = ApiClient(host=emulator.base_url)
        api.access_token = token or ""
        RoutingApi(api).get_routing_queues()
    assert raised.value.status == 401
    assert_conforms(json.loads(raised.value.body), "ErrorBody")


# --- routing ---------------------------------------------------------------------------------


def test_queue_listing_conforms_and_deserialises(api: ApiClient, emulator: RunningEmulator) -> None:
    org_queues = org_summary(emulator)["queues"]
    listing = RoutingApi(api).get_routing_queues(page_size=100)
    body = last_conforms(api, "QueueEntityListing")
    assert {q.name for q in listing.entities} == {q["name"] for q in org_queues}
    assert body["total"] == len(org_queues)
    for queue in listing.entities:
        assert queue.acw_settings.wrapup_prompt != "outdated_sdk_version"


def test_queue_listing_by_name(api: ApiClient, mandatory_queue: dict[str, Any]) -> None:
    listing = RoutingApi(api).get_routing_queues(name=mandatory_queue["name"])
    last_conforms(api, "QueueEntityListing")
    assert [q.name for q in listing.entities] == [mandatory_queue["name"]]
    assert listing.entities[0].id == mandatory_queue["id"]


def test_queue_listing_pages(api: ApiClient, emulator: RunningEmulator) -> None:
    total = len(org_summary(emulator)["queues"])
    seen: list[str] = []
    for number in range(1, total + 1):
        page = RoutingApi(api).get_routing_queues(page_size=1, page_number=number)
        body = last_conforms(api, "QueueEntityListing")
        assert (body["pageSize"], body["pageNumber"], body["total"]) == (1, number, total)
        seen += [q.id for q in page.entities]
    assert len(set(seen)) == total
    empty = RoutingApi(api).get_routing_queues(name="no such queue at all")
    last_conforms(api, "QueueEntityListing")
    assert not empty.entities


def test_every_queue_conforms(api: ApiClient, emulator: RunningEmulator) -> None:
    for org_queue in org_summary(emulator)["queues"]:
        queue = RoutingApi(api).get_routing_queue(org_queue["id"])
        body = last_conforms(api, "Queue")
        assert queue.name == org_queue["name"]
        assert queue.acw_settings.wrapup_prompt == org_queue["wrapupPrompt"]
        assert body["acwSettings"].get("timeoutMs") == org_queue["timeoutMs"]


def test_every_queue_code_listing_conforms(api: ApiClient, emulator: RunningEmulator) -> None:
    for org_queue in org_summary(emulator)["queues"]:
        listing = RoutingApi(api).get_routing_queue_wrapupcodes(org_queue["id"], page_size=100)
        last_conforms(api, "WrapupCodeEntityListing")
        assert {(c.id, c.name) for c in listing.entities} == {
            (c["id"], c["name"]) for c in org_queue["codes"]
        }


def test_queue_code_listing_by_name_and_page(
    api: ApiClient, mandatory_queue: dict[str, Any]
) -> None:
    first = mandatory_queue["codes"][0]
    listing = RoutingApi(api).get_routing_queue_wrapupcodes(
        mandatory_queue["id"], name=first["name"][:3] + "*"
    )
    last_conforms(api, "WrapupCodeEntityListing")
    assert first["id"] in [c.id for c in listing.entities]
    RoutingApi(api).get_routing_queue_wrapupcodes(mandatory_queue["id"], page_size=1, page_number=2)
    body = last_conforms(api, "WrapupCodeEntityListing")
    assert body["pageNumber"] == 2 and len(body["entities"]) <= 1


def test_all_codes_listing_and_each_code_conform(api: ApiClient, emulator: RunningEmulator) -> None:
    listing = RoutingApi(api).get_routing_wrapupcodes(page_size=100)
    last_conforms(api, "WrapupCodeEntityListing")
    org_codes = {c["id"] for q in org_summary(emulator)["queues"] for c in q["codes"]}
    assert org_codes <= {c.id for c in listing.entities}
    for code in listing.entities:
        one = RoutingApi(api).get_routing_wrapupcode(code.id)
        last_conforms(api, "WrapupCode")
        assert (one.id, one.name) == (code.id, code.name)


def test_routing_not_found(api: ApiClient) -> None:
    assert_error_body(*sdk_error(RoutingApi(api).get_routing_queue, NO_SUCH_ID), 404, "not.found")
    assert_error_body(
        *sdk_error(RoutingApi(api).get_routing_queue_wrapupcodes, NO_SUCH_ID), 404, "not.found"
    )
    assert_error_body(
        *sdk_error(RoutingApi(api).get_routing_wrapupcode, NO_SUCH_ID), 404, "not.found"
    )


def test_routing_bad_paging_is_a_400(api: ApiClient) -> None:
    status, body = sdk_error(RoutingApi(api).get_routing_queues, page_size=0)
    assert_error_body(status, body, 400, "bad.request")


def test_routing_without_permission_is_a_403(emulator: RunningEmulator) -> None:
    api = client_where(emulator, lambda c: "routing:queue:view" not in c["permissions"])
    status, body = sdk_error(RoutingApi(api).get_routing_queues)
    assert_error_body(status, body, 403, FORBIDDEN_CODES)


# --- notifications (REST) --------------------------------------------------------------------


def test_channel_lifecycle_conforms(api: ApiClient, mandatory_queue: dict[str, Any]) -> None:
    notifications = NotificationsApi(api)
    channel = notifications.post_notifications_channels()
    body = last_conforms(api, "Channel")
    assert set(body) >= {"connectUri", "id", "expires"}
    assert channel.connect_uri.endswith(f"/channels/{channel.id}")
    assert channel.connect_uri.startswith("ws://127.0.0.1:")

    notifications.get_notifications_channels()
    listing = last_conforms(api, "ChannelEntityListing")
    assert channel.id in [c["id"] for c in listing["entities"]]

    notifications.head_notifications_channel(channel.id)
    assert api.last_response.status == 200
    assert_platform_headers(api.last_response.getheaders())


def test_subscriptions_conform(api: ApiClient, emulator: RunningEmulator) -> None:
    queues = org_summary(emulator)["queues"]
    first, second = queue_topic(queues[0]["id"]), queue_topic(queues[1]["id"])
    notifications = NotificationsApi(api)
    channel = notifications.post_notifications_channels()

    put = notifications.put_notifications_channel_subscriptions(channel.id, topics(first))
    last_conforms(api, "ChannelTopicEntityListing")
    assert [t.id for t in put.entities] == [first]

    posted = notifications.post_notifications_channel_subscriptions(channel.id, topics(second))
    last_conforms(api, "ChannelTopicEntityListing")
    assert [t.id for t in posted.entities] == [first, second]

    got = notifications.get_notifications_channel_subscriptions(channel.id)
    last_conforms(api, "ChannelTopicEntityListing")
    assert [t.id for t in got.entities] == [first, second]

    notifications.delete_notifications_channel_subscriptions(channel.id)
    assert api.last_response.status in (200, 204)
    assert notifications.get_notifications_channel_subscriptions(channel.id).entities == []
    last_conforms(api, "ChannelTopicEntityListing")


def test_subscriptions_with_ignore_errors_mark_each_topic(emulator: RunningEmulator) -> None:
    api, visible, hidden_queue = narrow_client(emulator)
    seen_queue = visible[0]
    notifications = NotificationsApi(api)
    channel = notifications.post_notifications_channels()
    wanted = [queue_topic(seen_queue), queue_topic(hidden_queue["id"]), "v2.users.nobody.presence"]
    result = notifications.put_notifications_channel_subscriptions(
        channel.id, topics(*wanted), ignore_errors=True
    )
    body = last_conforms(api, "ChannelTopicEntityListing")
    states = {t.id: t.state for t in result.entities}
    assert states[queue_topic(seen_queue)] == "Permitted"
    assert states[queue_topic(hidden_queue["id"])] == "Rejected"
    rejected = [e for e in body["entities"] if e["state"] == "Rejected"]
    assert all(isinstance(e.get("rejectionReason"), str) for e in rejected)

    status, error = sdk_error(
        notifications.put_notifications_channel_subscriptions, channel.id, topics(*wanted[1:2])
    )
    assert_error_body(status, error, 403, FORBIDDEN_CODES)


def test_notification_errors(api: ApiClient) -> None:
    notifications = NotificationsApi(api)
    status, body = sdk_error(notifications.get_notifications_channel_subscriptions, NO_SUCH_ID)
    assert_error_body(status, body, 404, "not.found")
    status, _ = sdk_error(notifications.head_notifications_channel, NO_SUCH_ID)
    assert status == 404
    channel = notifications.post_notifications_channels()
    bad = topics("not a topic")
    status, body = sdk_error(notifications.put_notifications_channel_subscriptions, channel.id, bad)
    assert_error_body(status, body, 400, "bad.request")
    too_many = topics(*(queue_topic(NO_SUCH_ID[:-4] + f"{n:04x}") for n in range(1001)))
    status, body = sdk_error(
        notifications.put_notifications_channel_subscriptions, channel.id, too_many
    )
    assert_error_body(status, body, 400, "bad.request")


# --- conversations ---------------------------------------------------------------------------


@pytest.mark.parametrize("media", ["call", "callback", "chat", "email", "message"])
def test_conversation_conforms_at_every_stage(
    emulator: RunningEmulator, api: ApiClient, mandatory_queue: dict[str, Any], media: str
) -> None:
    conversation = start(emulator, api, mandatory_queue, media=media, talk_s=0.6)
    connected = conversation.wait_agent(agent_connected, "the agent to be connected")
    assert connected.get("wrapupRequired") is not True

    in_acw = conversation.wait_agent(agent_in_acw, "the agent to enter ACW")
    assert in_acw["wrapupRequired"] is True
    assert in_acw["endTime"] == in_acw["startAcwTime"]
    assert communications(in_acw)[0]["disconnectedTime"] == in_acw["startAcwTime"]

    code = mandatory_queue["codes"][1]
    ConversationsApi(api).patch_conversation_participant(
        conversation.id, conversation.participant_id, wrapup_request(code["id"], "conformance")
    )
    assert api.last_response.status in (202, 204)
    assert not api.last_response.data
    assert_platform_headers(api.last_response.getheaders())

    coded = conversation.agent()
    assert coded["wrapup"]["code"] == code["id"]
    assert coded["wrapup"].get("notes") == "conformance"
    assert coded["endAcwTime"] == coded["wrapup"]["endTime"]
    assert communications(coded)[0]["afterCallWork"]["state"] == "complete"
    assert communications(coded)[0]["afterCallWork"]["endTime"] == coded["endAcwTime"]
    assert len(conversation.snapshots) >= 3


def test_conversation_deserialises_through_the_sdk(
    emulator: RunningEmulator, api: ApiClient, mandatory_queue: dict[str, Any]
) -> None:
    conversation = start(emulator, api, mandatory_queue)
    conversation.wait_agent(agent_in_acw, "the agent to enter ACW")
    parsed = ConversationsApi(api).get_conversation(conversation.id)
    agent = next(p for p in parsed.participants if p.id == conversation.participant_id)
    assert agent.purpose == "agent"
    assert agent.queue_id == mandatory_queue["id"]
    assert agent.wrapup_required is True
    assert agent.wrapup_prompt == "mandatory"
    assert agent.start_acw_time is not None and agent.start_acw_time.tzinfo is not None
    assert agent.calls[0].after_call_work.state == "pending"


def test_held_and_conference_snapshots_conform(
    emulator: RunningEmulator, api: ApiClient, mandatory_queue: dict[str, Any]
) -> None:
    conversation = start(emulator, api, mandatory_queue, hold=True, talk_s=0.6, conference=3)
    conversation.wait_agent(lambda a: any(c.get("held") for c in communications(a)), "hold")
    conversation.wait_agent(agent_in_acw, "the agents to enter ACW")
    agents = [p for p in conversation.get()["participants"] if p["purpose"] == "agent"]
    assert len(agents) == 3


def test_skip_and_agent_code_outcomes_conform(emulator: RunningEmulator, api: ApiClient) -> None:
    optional = queue_named(emulator, "OPTIONAL")
    skipped = start(emulator, api, optional, outcome="skip", agent_delay_s=0.05)
    agent = skipped.wait_agent(agent_acw_over, "the agent to skip")
    assert communications(agent)[0]["afterCallWork"]["state"] == "skipped"
    assert agent.get("wrapupSkipped") is True

    coded = start(emulator, api, optional, outcome="agent_codes", agent_delay_s=0.05)
    agent = coded.wait_agent(agent_acw_over, "the agent to code")
    assert agent["wrapup"]["code"] in {c["id"] for c in optional["codes"]}


def test_provisional_and_ended_without_code_conform(
    emulator: RunningEmulator, api: ApiClient, mandatory_queue: dict[str, Any]
) -> None:
    conversation = start(emulator, api, mandatory_queue)
    conversation.wait_agent(agent_in_acw, "the agent to enter ACW")
    provisional = wrapup_request(mandatory_queue["codes"][0]["id"])
    provisional.wrapup.provisional = True
    ConversationsApi(api).patch_conversation_participant(
        conversation.id, conversation.participant_id, provisional
    )
    agent = conversation.agent()
    assert agent_in_acw(agent), agent
    assert agent["wrapup"]["provisional"] is True

    emulator.action(conversation.id, action="end_acw")
    agent = conversation.agent()
    assert agent_acw_over(agent)
    assert communications(agent)[0]["afterCallWork"]["state"] == "complete"


def test_timeout_stamp_conforms(emulator: RunningEmulator) -> None:
    emulator.reset(org="test")
    api = main_client(emulator)
    timed = queue_named(emulator, "MANDATORY_TIMEOUT")
    conversation = start(emulator, api, timed)
    agent = conversation.wait_agent(agent_acw_over, "the ACW timeout")
    assert agent["wrapup"]["code"] == "ININ-WRAP-UP-TIMEOUT"
    assert agent["wrapupPrompt"] == "timeout"
    assert agent["wrapupTimeoutMs"] == timed["timeoutMs"]


def test_participant_wrapup_codes(
    emulator: RunningEmulator, api: ApiClient, mandatory_queue: dict[str, Any]
) -> None:
    conversation = start(emulator, api, mandatory_queue)
    codes = ConversationsApi(api).get_conversation_participant_wrapupcodes(
        conversation.id, conversation.participant_id
    )
    body = last_json(api)
    assert isinstance(body, list)
    assert_conforms(body, "list[WrapupCode]")
    assert_platform_headers(api.last_response.getheaders())
    assert {(c.id, c.name) for c in codes} == {
        (c["id"], c["name"]) for c in mandatory_queue["codes"]
    }


def test_conversation_errors(
    emulator: RunningEmulator, api: ApiClient, mandatory_queue: dict[str, Any]
) -> None:
    conversations = ConversationsApi(api)
    assert_error_body(*sdk_error(conversations.get_conversation, NO_SUCH_ID), 404, "not.found")
    conversation = start(emulator, api, mandatory_queue)
    pid = conversation.participant_id
    status, body = sdk_error(
        conversations.get_conversation_participant_wrapupcodes, conversation.id, NO_SUCH_ID
    )
    assert_error_body(status, body, 404, "not.found")
    conversation.wait_agent(agent_in_acw, "the agent to enter ACW")
    foreign = next(
        c["id"]
        for q in org_summary(emulator)["queues"]
        for c in q["codes"]
        if c["id"] not in {m["id"] for m in mandatory_queue["codes"]}
    )
    status, body = sdk_error(
        conversations.patch_conversation_participant, conversation.id, pid, wrapup_request(foreign)
    )
    assert_error_body(status, body, 400, "bad.request")
    status, body = sdk_error(
        conversations.patch_conversation_participant,
        conversation.id,
        pid,
        MediaParticipantRequest(),
    )
    assert_error_body(status, body, 400, "bad.request")


def test_conversation_forbidden(emulator: RunningEmulator, api: ApiClient) -> None:
    narrow, _, hidden_queue = narrow_client(emulator)
    conversation = start(emulator, api, hidden_queue)
    conversation.wait_agent(agent_in_acw, "the agent to enter ACW")
    code = hidden_queue["codes"][0]["id"]

    status, body = sdk_error(ConversationsApi(narrow).get_conversation, conversation.id)
    assert_error_body(status, body, 403, FORBIDDEN_CODES)

    no_wrapup = client_where(
        emulator, lambda c: "conversation:participant:wrapup" not in c["permissions"]
    )
    status, body = sdk_error(
        ConversationsApi(no_wrapup).patch_conversation_participant,
        conversation.id,
        conversation.participant_id,
        wrapup_request(code),
    )
    assert_error_body(status, body, 403, FORBIDDEN_CODES)

    action = wrapup_request(code)
    action.state = "disconnected"
    status, body = sdk_error(
        ConversationsApi(api).patch_conversation_participant,
        conversation.id,
        conversation.participant_id,
        action,
    )
    assert_error_body(status, body, 403, FORBIDDEN_CODES)


MEDIA_TWINS = {
    "call": (
        "patch_conversations_call_participant",
        "post_conversations_call_participant_communication_wrapup",
    ),
    "callback": (
        "patch_conversations_callback_participant",
        "post_conversations_callback_participant_communication_wrapup",
    ),
    "email": (
        "patch_conversations_email_participant",
        "post_conversations_email_participant_communication_wrapup",
    ),
    "message": (
        "patch_conversations_message_participant",
        "post_conversations_message_participant_communication_wrapup",
    ),
}


@pytest.mark.parametrize("media", sorted(MEDIA_TWINS))
def test_media_specific_wrapup_routes(
    emulator: RunningEmulator, api: ApiClient, mandatory_queue: dict[str, Any], media: str
) -> None:
    patch_name, post_name = MEDIA_TWINS[media]
    conversations = ConversationsApi(api)
    code = mandatory_queue["codes"][0]["id"]

    first = start(emulator, api, mandatory_queue, media=media)
    first.wait_agent(agent_in_acw, "the agent to enter ACW")
    getattr(conversations, patch_name)(first.id, first.participant_id, body=wrapup_request(code))
    assert api.last_response.status in (202, 204) and not api.last_response.data
    assert first.agent()["wrapup"]["code"] == code

    second = start(emulator, api, mandatory_queue, media=media)
    second.wait_agent(agent_in_acw, "the agent to enter ACW")
    wrapup = WrapupInput()
    wrapup.code = code
    getattr(conversations, post_name)(
        second.id, second.participant_id, second.communication_id, body=wrapup
    )
    assert api.last_response.status in (202, 204) and not api.last_response.data
    assert second.agent()["wrapup"]["code"] == code


# --- analytics -------------------------------------------------------------------------------


def analytics_query(sample: str, queue_ids: list[str]) -> dict[str, Any]:
    """A published sample request with a live interval and the emulator's queue ids."""
    query = json.loads((SAMPLES / sample).read_text())
    now = datetime.now(UTC)
    start = (now - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    query["interval"] = f"{_iso(start)}/{_iso(now + timedelta(minutes=1))}"
    ids = iter(queue_ids * 2)
    for group in query.get("segmentFilters", []):
        for predicate in group["predicates"]:
            if predicate["dimension"] == "queueId":
                predicate["value"] = next(ids)
    assert check(query, "ConversationQuery") == []
    return query


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@pytest.mark.parametrize("sample", ["analytics_request.json", "analytics_request_wrapup_open.json"])
def test_analytics_query_conforms(
    emulator: RunningEmulator, api: ApiClient, mandatory_queue: dict[str, Any], sample: str
) -> None:
    conversation = start(emulator, api, mandatory_queue)
    conversation.wait_agent(agent_in_acw, "the agent to enter ACW")
    query = to_model(analytics_query(sample, [mandatory_queue["id"]]), "ConversationQuery")
    result = AnalyticsApi(api).post_analytics_conversations_details_query(query)
    body = last_conforms(api, "AnalyticsConversationQueryResponse")
    assert conversation.id in [c.conversation_id for c in result.conversations or []]
    assert body["totalHits"] >= 1
    ours = next(c for c in body["conversations"] if c["conversationId"] == conversation.id)
    assert "conversationEnd" not in ours


def test_analytics_after_wrapup_conforms(
    emulator: RunningEmulator, api: ApiClient, mandatory_queue: dict[str, Any]
) -> None:
    conversation = start(emulator, api, mandatory_queue)
    conversation.wait_agent(agent_in_acw, "the agent to enter ACW")
    code = mandatory_queue["codes"][0]["id"]
    ConversationsApi(api).patch_conversation_participant(
        conversation.id, conversation.participant_id, wrapup_request(code)
    )
    query = analytics_query("analytics_request.json", [mandatory_queue["id"]])
    del query["conversationFilters"]
    AnalyticsApi(api).post_analytics_conversations_details_query(
        to_model(query, "ConversationQuery")
    )
    body = last_conforms(api, "AnalyticsConversationQueryResponse")
    ours = next(c for c in body["conversations"] if c["conversationId"] == conversation.id)
    segments = [
        s
        for p in ours["participants"]
        if p["participantId"] == conversation.participant_id
        for session in p["sessions"]
        for s in session["segments"]
    ]
    wrapups = [s for s in segments if s["segmentType"] == "wrapup"]
    assert wrapups and wrapups[-1]["wrapUpCode"] == code and "segmentEnd" in wrapups[-1]


def test_analytics_empty_page_conforms(api: ApiClient) -> None:
    query = analytics_query("analytics_request.json", [NO_SUCH_ID])
    query["interval"] = "2020-01-01T00:00:00.000Z/2020-01-02T00:00:00.000Z"
    result = AnalyticsApi(api).post_analytics_conversations_details_query(
        to_model(query, "ConversationQuery")
    )
    last_conforms(api, "AnalyticsConversationQueryResponse")
    assert not result.conversations


def test_analytics_errors(emulator: RunningEmulator, api: ApiClient) -> None:
    query = analytics_query("analytics_request.json", [NO_SUCH_ID])
    query["paging"] = {"pageSize": 100, "pageNumber": 1001}
    status, body = sdk_error(
        AnalyticsApi(api).post_analytics_conversations_details_query,
        to_model(query, "ConversationQuery"),
    )
    assert_error_body(status, body, 400, "bad.request")
    assert "100000" in body["message"]
    no_analytics = client_where(
        emulator, lambda c: "analytics:conversationDetail:view" not in c["permissions"]
    )
    status, body = sdk_error(
        AnalyticsApi(no_analytics).post_analytics_conversations_details_query,
        to_model(query, "ConversationQuery"),
    )
    assert_error_body(status, body, 403, FORBIDDEN_CODES)


# --- events ----------------------------------------------------------------------------------


class Stream:
    """The notification WebSocket; every frame received is checked before anyone sees it."""

    def __init__(self, ws: ClientConnection, topics: set[str]) -> None:
        self.ws = ws
        self.topics = topics
        self.frames: list[dict[str, Any]] = []

    def next(self, timeout: float = WAIT_S) -> dict[str, Any]:
        frame = json.loads(self.ws.recv(timeout=timeout))
        check_frame(frame, self.topics, len(self.frames))
        self.frames.append(frame)
        return frame

    def until(self, accept: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            frame = self.next(timeout=max(0.01, deadline - time.monotonic()))
            if accept(frame):
                return frame
        raise AssertionError(f"no frame with {what} within {WAIT_S}s")

    def snapshots(self, conversation_id: str) -> Iterator[dict[str, Any]]:
        for frame in self.frames:
            if frame["topicName"] in self.topics and frame["eventBody"]["id"] == conversation_id:
                yield frame["eventBody"]


def check_frame(frame: Any, subscribed: set[str], index: int) -> None:
    where = f"frame {index} {json.dumps(frame)[:300]}"
    assert isinstance(frame, dict), where
    topic = frame.get("topicName")
    if topic == "channel.metadata":
        assert set(frame) == {"topicName", "eventBody"}, where
        assert set(frame["eventBody"]) == {"message"}, where
        assert frame["eventBody"]["message"] in METADATA_FRAMES, where
        return
    assert set(frame) == ENVELOPE_KEYS, where
    assert frame["version"] == "2", where
    assert set(frame["metadata"]) == {"CorrelationId"}, where
    assert isinstance(frame["metadata"]["CorrelationId"], str), where
    if topic.startswith("v2.system."):
        check_system_body(topic, frame["eventBody"])
        return
    assert topic in subscribed, f"{where}: not subscribed to {topic}"
    assert_conforms(frame["eventBody"], "QueueConversationEventTopicConversation")


def check_system_body(topic: str, body: Any) -> None:
    """System bodies are `SystemMessageSystemMessage`: Genesys' own SDKs parse them as that.

    Its enums (`systemTopicType`: no_longer_subscribed | subscription_changed | token_revoked;
    `reason`: another_channel_subscribed | user_tokens_revoked) have no socket_closing value, so a
    socket_closing body may carry neither field rather than an invented value.
    """
    problems = check(body, "SystemMessageSystemMessage")
    assert problems == [], f"{topic} body does not conform: {problems}"


def is_pong(frame: dict[str, Any]) -> bool:
    return frame["topicName"] == "channel.metadata" and frame["eventBody"]["message"] == "pong"


def is_heartbeat(frame: dict[str, Any]) -> bool:
    return (
        frame["topicName"] == "channel.metadata"
        and frame["eventBody"]["message"] == "WebSocket Heartbeat"
    )


def agent_snapshot(
    conversation_id: str, participant_id: str, accept: Callable[[dict[str, Any]], bool]
) -> Callable[[dict[str, Any]], bool]:
    def matches(frame: dict[str, Any]) -> bool:
        body = frame["eventBody"]
        if not frame["topicName"].startswith("v2.routing.") or body.get("id") != conversation_id:
            return False
        return accept(participant(body, participant_id))

    return matches


@pytest.fixture
def stream_for(api: ApiClient) -> Iterator[Callable[[list[str]], Stream]]:
    """Open a channel subscribed to some topics and its WebSocket; closed after the test."""
    with ExitStack() as sockets:

        def open_stream(topic_names: list[str]) -> Stream:
            notifications = NotificationsApi(api)
            channel = notifications.post_notifications_channels()
            notifications.put_notifications_channel_subscriptions(channel.id, topics(*topic_names))
            ws = sockets.enter_context(connect(channel.connect_uri, max_size=None, open_timeout=5))
            return Stream(ws, set(topic_names))

        yield open_stream


def test_ping_pong_and_heartbeat_frames(stream_for: Callable[[list[str]], Stream]) -> None:
    stream = stream_for([])
    stream.ws.send(json.dumps({"message": "ping"}))
    stream.until(is_pong, "a pong")
    stream.until(is_heartbeat, "a heartbeat")


@pytest.mark.parametrize("media", ["call", "callback", "chat", "email", "message"])
def test_every_event_of_a_conversation_conforms(
    emulator: RunningEmulator,
    api: ApiClient,
    mandatory_queue: dict[str, Any],
    stream_for: Callable[[list[str]], Stream],
    media: str,
) -> None:
    topic = queue_topic(mandatory_queue["id"])
    stream = stream_for([topic])
    conversation = start(emulator, api, mandatory_queue, media=media, talk_s=0.2)
    cid, pid = conversation.id, conversation.participant_id

    stream.until(agent_snapshot(cid, pid, agent_in_acw), "the agent in ACW")
    code = mandatory_queue["codes"][1]["id"]
    ConversationsApi(api).patch_conversation_participant(cid, pid, wrapup_request(code, "n"))
    frame = stream.until(agent_snapshot(cid, pid, agent_acw_over), "the agent coded")

    agent = participant(frame["eventBody"], pid)
    assert frame["topicName"] == topic
    assert agent["wrapup"]["code"] == code
    assert agent["wrapup"]["endTime"] == agent["endAcwTime"]
    assert isinstance(agent["wrapup"]["durationSeconds"], int)
    work = communications(agent)[0]["afterCallWork"]
    assert work["state"] == "complete" and work["endTime"] == agent["endAcwTime"]
    assert agent["wrapupPrompt"] == "mandatory"
    states = [communications(participant(body, pid))[0]["state"] for body in stream.snapshots(cid)]
    assert states[0] in ("alerting", "connected") and "disconnected" in states


def test_snapshots_of_skip_and_agent_codes_conform(
    emulator: RunningEmulator, api: ApiClient, stream_for: Callable[[list[str]], Stream]
) -> None:
    optional = queue_named(emulator, "OPTIONAL")
    stream = stream_for([queue_topic(optional["id"])])
    skipped = start(emulator, api, optional, outcome="skip", agent_delay_s=0.05)
    coded = start(emulator, api, optional, outcome="agent_codes", agent_delay_s=0.05, hold=True)
    frame = stream.until(agent_snapshot(skipped.id, skipped.participant_id, agent_acw_over), "skip")
    agent = participant(frame["eventBody"], skipped.participant_id)
    assert communications(agent)[0]["afterCallWork"]["state"] == "skipped"
    stream.until(agent_snapshot(coded.id, coded.participant_id, agent_acw_over), "agent code")


@pytest.mark.parametrize("prompt", ["MANDATORY_TIMEOUT", "MANDATORY_FORCED_TIMEOUT"])
def test_timeout_snapshots_conform(emulator: RunningEmulator, prompt: str) -> None:
    emulator.reset(org="test")
    api = main_client(emulator)
    queue = queue_named(emulator, prompt)
    notifications = NotificationsApi(api)
    channel = notifications.post_notifications_channels()
    topic = queue_topic(queue["id"])
    notifications.put_notifications_channel_subscriptions(channel.id, topics(topic))
    with connect(channel.connect_uri, max_size=None, open_timeout=5) as ws:
        stream = Stream(ws, {topic})
        conversation = start(emulator, api, queue)
        cid, pid = conversation.id, conversation.participant_id
        frame = stream.until(agent_snapshot(cid, pid, agent_acw_over), "the ACW timeout")
    agent = participant(frame["eventBody"], pid)
    assert agent["wrapup"]["code"] == "ININ-WRAP-UP-TIMEOUT"
    assert agent["wrapupTimeoutMs"] == queue["timeoutMs"]


def test_generated_traffic_conforms_everywhere(emulator: RunningEmulator) -> None:
    """A seeded mix of media, queues and outcomes: every frame, snapshot and analytics row."""
    emulator.reset(org="test")
    api = main_client(emulator)
    queue_ids = [q["id"] for q in org_summary(emulator)["queues"]]
    notifications = NotificationsApi(api)
    channel = notifications.post_notifications_channels()
    names = [queue_topic(q) for q in queue_ids]
    notifications.put_notifications_channel_subscriptions(channel.id, topics(*names))
    with connect(channel.connect_uri, max_size=None, open_timeout=5) as ws:
        stream = Stream(ws, set(names))
        run = emulator.traffic(
            count=30,
            rate_per_s=200,
            seed=7,
            talk_s=[0.01, 0.05],
            agent_delay_s=[0.01, 0.1],
            mix={"agent_codes": 1, "skip": 1, "nothing": 1},
        )
        progress = wait_for(
            lambda: (p := emulator.traffic_progress(run["trafficId"]))["started"] == 30 and p,
            "the traffic to start",
        )
        ids = set(progress["conversationIds"])
        in_acw: set[str] = set()
        while not ids <= in_acw:
            frame = stream.until(lambda f: f["topicName"] in stream.topics, "a snapshot")
            agents = [p for p in frame["eventBody"]["participants"] if p["purpose"] == "agent"]
            if all("startAcwTime" in p for p in agents):
                in_acw.add(frame["eventBody"]["id"])
    for conversation_id in ids:
        ConversationsApi(api).get_conversation(conversation_id)
        last_conforms(api, "Conversation")
    query = analytics_query("analytics_request.json", queue_ids)
    del query["conversationFilters"], query["segmentFilters"]
    AnalyticsApi(api).post_analytics_conversations_details_query(
        to_model(query, "ConversationQuery")
    )
    body = last_conforms(api, "AnalyticsConversationQueryResponse")
    assert ids <= {c["conversationId"] for c in body["conversations"]}


def test_system_socket_closing_frame(
    emulator: RunningEmulator, stream_for: Callable[[list[str]], Stream]
) -> None:
    stream = stream_for([])
    stream.ws.send(json.dumps({"message": "ping"}))
    stream.until(is_pong, "a pong")  # the socket is attached
    emulator.fault(kind="socket_closing", close_after_s=0.2)
    frame = stream.until(lambda f: f["topicName"].startswith("v2.system."), "a system frame")
    assert frame["topicName"] == "v2.system.socket_closing"
    assert "systemTopicType" not in frame["eventBody"] or (
        frame["eventBody"]["systemTopicType"] != "socket_closing"
    )
    with pytest.raises(ConnectionClosed):
        while True:
            stream.next()


def test_system_token_revoked_frame(
    emulator: RunningEmulator, stream_for: Callable[[list[str]], Stream]
) -> None:
    stream = stream_for([])
    stream.ws.send(json.dumps({"message": "ping"}))
    stream.until(is_pong, "a pong")
    emulator.fault(kind="revoke_tokens")
    frame = stream.until(lambda f: f["topicName"].startswith("v2.system."), "a system frame")
    assert re.fullmatch(r"v2\.system\.token_revoked\..+", frame["topicName"]), frame
    assert frame["eventBody"]["systemTopicType"] == "token_revoked"
    assert frame["topicName"].endswith(frame["eventBody"]["channelId"])


# --- limits and deployment errors ------------------------------------------------------------


def test_rate_limited_answer_conforms(emulator: RunningEmulator) -> None:
    """Through urllib, not the SDK: the SDK's urllib3 client silently retries 429s."""
    emulator.reset(rate_limit_per_window=2)
    token = sdk_client(emulator, emulator.client_id, emulator.client_secret).access_token
    replies = [raw_request(emulator, "GET", "/api/v2/routing/queues", token) for _ in range(3)]
    assert [status for status, _, _ in replies] == [200, 200, 429]
    _, headers, body = replies[-1]
    assert_conforms(body, "ErrorBody")
    assert body["code"] == "too.many.requests.retry.after" and body["status"] == 429
    assert int({k.lower(): v for k, v in headers.items()}["retry-after"]) >= 1
    assert_platform_headers(headers)


def test_expired_token_is_a_401_error_body(emulator: RunningEmulator, api: ApiClient) -> None:
    emulator.fault(kind="expire_tokens")
    status, body = sdk_error(RoutingApi(api).get_routing_queues)
    assert status == 401
    assert_conforms(body, "ErrorBody")
    assert body["status"] == 401


@pytest.mark.parametrize(("status", "code"), [(400, "bad.request"), (403, "not.authorized")])
def test_user_context_refusal_conforms(
    emulator: RunningEmulator, mandatory_queue: dict[str, Any], status: int, code: str
) -> None:
    emulator.reset(require_user_context=True, user_context_status=status)
    api = main_client(emulator)
    conversation = start(emulator, api, mandatory_queue)
    conversation.wait_agent(agent_in_acw, "the agent to enter ACW")
    got, body = sdk_error(
        ConversationsApi(api).patch_conversation_participant,
        conversation.id,
        conversation.participant_id,
        wrapup_request(mandatory_queue["codes"][0]["id"]),
    )
    assert_error_body(got, body, status, code)
    assert "requires a user context" in body["message"]


def test_injected_http_fault_bodies_conform(emulator: RunningEmulator, api: ApiClient) -> None:
    emulator.fault(kind="http", status=503, path="/api/v2/routing/queues", count=1)
    status, body = sdk_error(RoutingApi(api).get_routing_queues)
    assert status == 503
    assert_conforms(body, "ErrorBody")
    assert body["status"] == 503


# --- coverage of the emulator's routes -------------------------------------------------------

# The model each test above checks raw bodies against, and the SDK method whose declared
# `response_type` it must be.
CHECKED_MODELS = [
    (RoutingApi.get_routing_queues, "QueueEntityListing"),
    (RoutingApi.get_routing_queue, "Queue"),
    (RoutingApi.get_routing_queue_wrapupcodes, "WrapupCodeEntityListing"),
    (RoutingApi.get_routing_wrapupcodes, "WrapupCodeEntityListing"),
    (RoutingApi.get_routing_wrapupcode, "WrapupCode"),
    (NotificationsApi.post_notifications_channels, "Channel"),
    (NotificationsApi.get_notifications_channels, "ChannelEntityListing"),
    (NotificationsApi.put_notifications_channel_subscriptions, "ChannelTopicEntityListing"),
    (NotificationsApi.post_notifications_channel_subscriptions, "ChannelTopicEntityListing"),
    (NotificationsApi.get_notifications_channel_subscriptions, "ChannelTopicEntityListing"),
    (ConversationsApi.get_conversation, "Conversation"),
    (ConversationsApi.get_conversation_participant_wrapupcodes, "list[WrapupCode]"),
    (ConversationsApi.patch_conversation_participant, None),
    (ConversationsApi.get_conversations_call, "CallConversation"),
    (ConversationsApi.get_conversations_callback, "CallbackConversation"),
    (ConversationsApi.get_conversations_email, "EmailConversation"),
    (ConversationsApi.get_conversations_message, "MessageConversation"),
    (UsersApi.get_users_me, "UserMe"),
    (AnalyticsApi.post_analytics_conversations_details_query, "AnalyticsConversationQueryResponse"),
]


@pytest.mark.parametrize(
    ("method", "model"), CHECKED_MODELS, ids=lambda v: getattr(v, "__name__", v)
)
def test_checked_models_are_the_sdk_declared_response_types(
    method: Callable[..., Any], model: str | None
) -> None:
    declared = re.search(r"response_type=(?:'([^']+)'|None)", inspect.getsource(method))
    assert declared is not None
    assert declared[1] == model


SDK_APIS = Path(PureCloudPlatformClientV2.__file__).parent / "apis"
_SDK_CALL = re.compile(
    r"resource_path = '(?P<path>[^']+)'.*?call_api\(resource_path, '(?P<method>\w+)'", re.DOTALL
)


def _template(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def sdk_routes() -> set[tuple[str, str]]:
    """(method, path template) of every call the SDK can make."""
    routes = set()
    for source in SDK_APIS.glob("*_api.py"):
        for match in _SDK_CALL.finditer(source.read_text()):
            routes.add((match["method"], _template(match["path"])))
    return routes


def emulator_routes() -> set[tuple[str, str]]:
    from aiohttp import web

    from genesys_emulator.routes import setup_api

    app = web.Application()
    setup_api(app)
    return {
        (route.method, _template(route.resource.canonical))
        for route in app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/api/v2/")
    }


def test_every_emulator_api_route_is_an_sdk_call() -> None:
    unknown = sorted(emulator_routes() - sdk_routes())
    assert unknown == [], f"routes the SDK 269 does not declare: {unknown}"
