"""The status page of a real daemon running against the emulator, read in headless Chromium the way
a person reads it: the counts it shows are the emulator's ground truth, and a problem the operator
must fix (a topic the platform refuses) is named on the page."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_harness import SALES, SUPPORT, UNIT, DaemonFactory, eventually, rule
from selenium import webdriver
from selenium.webdriver.common.by import By

from chromium import headless_chromium
from genesys_emulator.testing import RunningEmulator
from wrapupd.events import Outcome
from wrapupd.reconciler import ReconcilerConfig
from wrapupd.service import Daemon

FAULTS_ORG = str(Path(__file__).parents[1] / "faults" / "faults_org.toml")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    yield from headless_chromium(tmp_path_factory.mktemp("chromium-profile"))


def page_url(daemon: Daemon) -> str:
    assert daemon.status_address is not None
    host, port = daemon.status_address
    return f"http://{host}:{port}/"


def read_page(driver: webdriver.Chrome, url: str) -> dict[str, Any]:
    """What a person sees: the verdict, the queue table, the recent outcomes, the problems."""
    driver.get(url)
    rows = driver.find_elements(By.CSS_SELECTOR, "#queues tbody tr")
    problems = driver.find_elements(By.ID, "problems")
    return {
        "title": driver.title,
        "readiness": driver.find_element(By.ID, "readiness").text,
        "queues": {
            cells[0]: cells
            for cells in ([td.text for td in r.find_elements(By.TAG_NAME, "td")] for r in rows)
        },
        "recent": driver.find_element(By.ID, "recent").text,
        "channels": driver.find_element(By.ID, "channels").text,
        "problems": problems[0].text if problems else "",
    }


def applied_by_queue(emulator: RunningEmulator) -> dict[str, int]:
    names = {qid: name for name, qid in emulator_queue_ids(emulator).items()}
    counts: dict[str, int] = {}
    for entry in emulator.ground_truth():
        if (entry.get("wrapup") or {}).get("by") == "api":
            name = names[entry["queueId"]]
            counts[name] = counts.get(name, 0) + 1
    return counts


def emulator_queue_ids(emulator: RunningEmulator) -> dict[str, str]:
    return {q["name"]: q["id"] for q in emulator.control("GET", "/_emulator/org")["queues"]}


async def test_the_page_shows_what_the_ground_truth_says_was_applied(
    emulator: RunningEmulator, start_daemon: DaemonFactory, browser: webdriver.Chrome
) -> None:
    daemon = await start_daemon((rule(SUPPORT), rule(SALES)), listen=("127.0.0.1", 0))
    started = [
        emulator.start_conversation(queue=queue, talk_s=UNIT, outcome="nothing")
        for queue in (SUPPORT, SUPPORT, SUPPORT, SALES, SALES)
    ]
    emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="agent_codes", agent_delay_s=0)
    await eventually(lambda: sum(applied_by_queue(emulator).values()) == 5 or None, what="codes")
    await eventually(
        lambda: daemon.parts.ledger.outcome_counts()[Outcome.APPLIED] == 5 or None,
        what="outcomes on disk",
        blocking=False,
    )
    truth = applied_by_queue(emulator)

    page = await asyncio.to_thread(read_page, browser, page_url(daemon))

    assert page["readiness"] == "READY" and page["problems"] == ""
    support, sales = page["queues"][SUPPORT], page["queues"][SALES]
    # queue, default code, grace, pending, applied today, last applied
    assert support[1] == "No code selected"
    assert (support[3], support[4]) == ("0", str(truth[SUPPORT]))
    assert (sales[3], sales[4]) == ("0", str(truth[SALES]))
    assert "ago" in support[5]
    for conversation in started:
        assert conversation["conversationId"] in page["recent"]
    assert "already_coded" in page["recent"] and "applied" in page["recent"]
    assert "channel#" in page["channels"] and "connected" in page["channels"]


async def test_a_topic_the_platform_refuses_is_shown_as_a_problem_to_fix(
    emulator: RunningEmulator, start_daemon: DaemonFactory, browser: webdriver.Chrome
) -> None:
    emulator.reset(org=FAULTS_ORG)
    daemon = await start_daemon(
        (rule(SUPPORT), rule(SALES)),
        listen=("127.0.0.1", 0),
        client_id="sales-topic-denied",
        client_secret="sales-topic-denied-secret",
    )

    page = await asyncio.to_thread(read_page, browser, page_url(daemon))

    assert page["title"] == "wrapupd — NOT READY" and page["readiness"] == "NOT READY"
    assert "Needs attention (1)" in page["problems"]
    assert "missing permissions: Sales" in page["problems"]
    assert "grant the OAuth client's role" in page["problems"]
    assert "sales-topic-denied-secret" not in page["problems"] + page["channels"]


async def test_a_default_code_not_assigned_to_its_queue_is_shown_as_a_problem_to_fix(
    emulator: RunningEmulator, start_daemon: DaemonFactory, browser: webdriver.Chrome
) -> None:
    """A large table is verified after start-up (``verify_codes_at_start_max``): a code found but
    not assigned to its queue drops that queue, and the page says which and what to do."""
    daemon = await start_daemon(
        (rule(SALES), rule(SUPPORT, code="Sale closed")),
        listen=("127.0.0.1", 0),
        verify_codes_at_start_max=0,
    )
    await eventually(lambda: daemon.parts.codes.problems or None, what="verified", blocking=False)

    page = await asyncio.to_thread(read_page, browser, page_url(daemon))

    assert "code not assigned: Support" in page["problems"]
    assert "is not assigned to queue 'Support'" in page["problems"]
    assert "assign the wrap-up code to the queue" in page["problems"]
    assert list(page["queues"]) == [SALES]  # the dropped queue is not watched


async def test_an_org_that_refuses_client_credentials_writes_is_shown_as_a_problem_to_fix(
    emulator: RunningEmulator, start_daemon: DaemonFactory, browser: webdriver.Chrome
) -> None:
    """The work is held, not ended: the page names the problem and the remedy (a user grant)."""
    emulator.reset(require_user_context=True)
    daemon = await start_daemon((rule(SUPPORT),), listen=("127.0.0.1", 0))
    emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="nothing")
    await eventually(
        lambda: daemon.parts.problems.check()[0] is False or None,
        what="the user-context refusal held as a deployment problem",
        blocking=False,
    )

    page = await asyncio.to_thread(read_page, browser, page_url(daemon))

    assert page["readiness"] == "NOT READY"
    assert "user context required: wrap-up writes" in page["problems"]
    assert "wrapupd login" in page["problems"]
    assert daemon.parts.applier.pending_count == 1  # held, not ended


async def test_a_stalled_reconciliation_is_shown_as_a_problem_to_fix(
    emulator: RunningEmulator, start_daemon: DaemonFactory, browser: webdriver.Chrome
) -> None:
    """The analytics query fails every time: no sweep completes, and the page says so."""
    emulator.fault(
        kind="http",
        method="POST",
        path="/api/v2/analytics/conversations/details/query",
        status=503,
        count=100_000,
    )
    daemon = await start_daemon(
        (rule(SUPPORT),),
        listen=("127.0.0.1", 0),
        reconciler=ReconcilerConfig(interval=2 * UNIT, end_lag=0.0, retry_delay=UNIT),
    )
    await eventually(
        lambda: not daemon.parts.reconciler.status(time.monotonic())[0] or None,
        what="the sweeps stalled",
        blocking=False,
    )

    page = await asyncio.to_thread(read_page, browser, page_url(daemon))

    assert "reconciliation" in page["problems"]
    assert "no sweep completed" in page["problems"]
