"""Queues and wrap-up codes, through the official SDK where it can be used."""

from __future__ import annotations

from typing import Any

import PureCloudPlatformClientV2 as sdk_module
import pytest
from PureCloudPlatformClientV2.rest import ApiException

from emulator_client import RawClient
from genesys_emulator.testing import RunningEmulator


def routing(sdk: Any) -> Any:
    return sdk_module.RoutingApi(sdk)


def test_queue_name_filter_and_acw_settings(sdk: Any) -> None:
    listing = routing(sdk).get_routing_queues(name="Billing")
    assert listing.total == 1
    queue = listing.entities[0]
    assert queue.acw_settings.wrapup_prompt == "MANDATORY_TIMEOUT"
    assert queue.acw_settings.timeout_ms == 30000


def test_every_acw_kind_is_in_the_demo_org(sdk: Any) -> None:
    queues = routing(sdk).get_routing_queues(page_size=100).entities
    prompts = {q.acw_settings.wrapup_prompt for q in queues}
    assert prompts == {
        "MANDATORY",
        "OPTIONAL",
        "MANDATORY_TIMEOUT",
        "MANDATORY_FORCED_TIMEOUT",
        "AGENT_REQUESTED",
    }


def test_queue_paging(sdk: Any) -> None:
    page = routing(sdk).get_routing_queues(page_size=4, page_number=2)
    assert (page.total, page.page_count, len(page.entities)) == (6, 2, 2)
    assert page.previous_uri and not page.next_uri
    first = routing(sdk).get_routing_queues(page_size=4, page_number=1)
    assert "pageNumber=2" in first.next_uri


def test_get_queue_by_id_and_404(sdk: Any) -> None:
    queue = routing(sdk).get_routing_queues(name="Support").entities[0]
    assert routing(sdk).get_routing_queue(queue.id).name == "Support"
    with pytest.raises(ApiException) as caught:
        routing(sdk).get_routing_queue("00000000-0000-0000-0000-000000000000")
    assert caught.value.status == 404
    assert '"not.found"' in caught.value.body


def test_queue_wrapup_codes_paging_and_trailing_star(sdk: Any) -> None:
    queue = routing(sdk).get_routing_queues(name="Billing").entities[0]
    every = routing(sdk).get_routing_queue_wrapupcodes(queue.id, page_size=100)
    assert every.total == 6
    page = routing(sdk).get_routing_queue_wrapupcodes(queue.id, page_size=4, page_number=2)
    assert len(page.entities) == 2
    named = routing(sdk).get_routing_queue_wrapupcodes(queue.id, name="No code*")
    assert [c.name for c in named.entities] == ["No code selected"]


def test_all_wrapup_codes(sdk: Any) -> None:
    listing = routing(sdk).get_routing_wrapupcodes(page_size=100)
    names = {c.name for c in listing.entities}
    assert "No code selected" in names and listing.total == len(listing.entities)


def test_queue_view_permission_is_required(emulator: RunningEmulator, raw: RawClient) -> None:
    token = raw.bearer("no-queue-view", "no-queue-view-secret")
    reply = raw.call("GET", "/api/v2/routing/queues", token)
    assert (reply.status, reply.body["code"]) == (403, "not.authorized")
    assert "routing:queue:view" in reply.body["message"]


def test_wrapup_code_view_permission_is_required(raw: RawClient) -> None:
    token = raw.bearer("no-analytics", "no-analytics-secret")
    reply = raw.call("GET", "/api/v2/routing/wrapupcodes", token)
    assert reply.status == 403 and "routing:wrapupCode:view" in reply.body["message"]


def test_restricted_visibility_hides_queues(raw: RawClient) -> None:
    token = raw.bearer("support-only", "support-only-secret")
    names = [q["name"] for q in raw.call("GET", "/api/v2/routing/queues", token).body["entities"]]
    assert names == ["Support"]


def test_bad_paging_is_400(raw: RawClient, main_token: str) -> None:
    reply = raw.call("GET", "/api/v2/routing/queues?pageSize=0", main_token)
    assert (reply.status, reply.body["code"]) == (400, "bad.request")
