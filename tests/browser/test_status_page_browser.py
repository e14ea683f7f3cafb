"""The status page in a real headless Chromium: what a person at the browser sees.

The page comes from a real HealthServer on 127.0.0.1 fed by a real report value. Chromium is
Debian's ``chromium`` with its own ``chromium-driver`` (version-matched by the distribution),
driven by Selenium; ``.ci/run`` installs both when missing. Selenium's calls block, so they run in
a thread while the server answers on the test's event loop.

``WRAPUPD_UPDATE_SCREENSHOTS=1`` also writes docs/img/status-page.png (the picture the docs show);
otherwise the screenshot goes to the test's temporary directory, so a test run never dirties the tree.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from chromium import headless_chromium
from status_samples import HOSTILE_QUEUE, FixedStatus, docs_report, sample_report, troubled_report
from wrapupd.health import HealthServer
from wrapupd.metrics import Metrics
from wrapupd.status_report import StatusReport

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "status-page.png"
REFRESH_S = 1  # the page under watch for a refresh
STILL_S = 600  # pages that must not reload while the test reads them
WAIT_S = 10  # an upper bound for observable facts, never a sleep

GREEN = "rgba(31, 136, 61, 1)"  # .ready in the page's stylesheet
RED = "rgba(207, 34, 46, 1)"  # .not-ready


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    yield from headless_chromium(tmp_path_factory.mktemp("chromium-profile"))


Serve = Callable[[StatusReport, int], Awaitable[tuple[FixedStatus, str]]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Starts a HealthServer on 127.0.0.1 for a report; returns its source and the page's URL."""
    servers: list[HealthServer] = []

    async def start(report: StatusReport, refresh_seconds: int) -> tuple[FixedStatus, str]:
        source = FixedStatus(report)
        health = HealthServer(
            "127.0.0.1",
            0,
            readiness=dict,
            metrics=Metrics(CollectorRegistry()),
            status=source,
            refresh_seconds=refresh_seconds,
        )
        servers.append(health)
        host, port = await health.start()
        return source, f"http://{host}:{port}/"

    yield start
    for health in servers:
        await health.stop()


def _text(driver: webdriver.Chrome, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def _background(driver: webdriver.Chrome, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).value_of_css_property("background-color"))


def _queue_rows(driver: webdriver.Chrome) -> list[list[str]]:
    rows = driver.find_elements(By.CSS_SELECTOR, "#queues tbody tr")
    return [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in rows]


def _look_at_healthy_page(driver: webdriver.Chrome, url: str) -> None:
    driver.get(url)
    assert driver.title == "wrapupd — ready"
    assert _text(driver, "readiness") == "READY"
    assert _background(driver, "readiness") == GREEN  # the stylesheet passed the page's own CSP
    assert driver.find_elements(By.ID, "problems") == []
    rows = _queue_rows(driver)
    assert rows[0] == ["Support", "No code selected", "30 s", "3", "128", "12 s ago"]
    assert rows[1][0] == HOSTILE_QUEUE  # shown as the text it is, not run
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.accept()
    assert "42 of 270 requests in the last minute" in _text(driver, "budget")
    assert "channel#" in _text(driver, "channels")
    loaded = driver.execute_script("return performance.getEntriesByType('resource').length")
    assert loaded == 0  # nothing fetched beyond the page itself


def _wait_for_refresh_to_show_trouble(driver: webdriver.Chrome) -> None:
    """No navigation from the test: only the page's own refresh can bring the new report."""
    WebDriverWait(driver, WAIT_S).until(lambda d: _text(d, "readiness") == "NOT READY")
    assert _background(driver, "readiness") == RED
    problems = _text(driver, "problems")
    assert "Needs attention (2)" in problems
    assert "code not assigned: Retention" in problems
    assert "missing permissions" in problems
    assert "reconnecting" in _text(driver, "channels")


async def test_a_person_sees_readiness_counts_and_the_channel(
    browser: webdriver.Chrome, serve: Serve
) -> None:
    _, url = await serve(sample_report(), STILL_S)
    await asyncio.to_thread(_look_at_healthy_page, browser, url)


async def test_the_page_refreshes_itself_and_then_shows_the_problems(
    browser: webdriver.Chrome, serve: Serve
) -> None:
    source, url = await serve(sample_report(), REFRESH_S)
    await asyncio.to_thread(browser.get, url)
    asked = source.asked
    source.report = troubled_report()
    await asyncio.to_thread(_wait_for_refresh_to_show_trouble, browser)
    assert source.asked > asked


def _screenshot(driver: webdriver.Chrome, url: str, target: Path) -> None:
    """The whole page, top to bottom, at a desktop width."""
    driver.get(url)
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    metrics = {"width": 1280, "height": height, "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        driver.save_screenshot(str(target))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


async def test_screenshot_for_the_docs(
    browser: webdriver.Chrome, serve: Serve, tmp_path: Path
) -> None:
    _, url = await serve(docs_report(), STILL_S)
    shot = tmp_path / "status-page.png"
    await asyncio.to_thread(_screenshot, browser, url, shot)
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(header[16:20], "big")
    assert width >= 1000
    if os.environ.get("WRAPUPD_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)
