"""A headless Chromium for the status page tests: Debian's ``chromium`` and its own
``chromium-driver`` (version-matched by the distribution), driven by Selenium."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = os.environ.get("WRAPUPD_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("WRAPUPD_CHROMEDRIVER", "/usr/bin/chromedriver")
PAGE_LOAD_S = 10


def chromium_or_skip() -> None:
    """Skip when Chromium is not installed; fail on CI, which installs it (``.ci/run``)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            missing = f"{path} not found: apt-get install chromium chromium-driver (.ci/run does)"
            if os.environ.get("CI"):
                pytest.fail(missing)
            pytest.skip(missing)


def headless_chromium(profile: Path) -> Iterator[webdriver.Chrome]:
    """One browser for a module of tests, quit at the end."""
    chromium_or_skip()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",  # tests run as root here
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        "--window-size=1280,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(PAGE_LOAD_S)
    try:
        yield driver
    finally:
        driver.quit()
