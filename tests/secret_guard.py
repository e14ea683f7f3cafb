"""A guard for every test that runs the daemon against the emulator (end-to-end and HA): no token
the emulator issued and no notification channel id it created appears in anything the test
captured (the daemon's log lines, stdout, stderr) nor in any log file its daemons wrote under its
``tmp_path`` (replicas run as processes log to files), whether the test passed or not. A conftest
takes it in by importing ``issued_secrets`` and ``pytest_runtest_makereport``."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from typing import Any

import pytest

from genesys_emulator.testing import RunningEmulator

__all__ = ["issued_secrets", "pytest_runtest_makereport"]
# The fixtures through which a test reaches the emulator.
_EMULATOR_FIXTURES = ("emulator", "ha_emulator")

# Lines the emulator itself logs (its access log names the channel it serves): not the daemon's.
_EMULATOR_LOGGERS = ("aiohttp.", "genesys_emulator")


def platform_secrets(emulator: RunningEmulator) -> set[str]:
    """Every access and refresh token issued since the reset, and every channel id created."""
    tokens = emulator.control("GET", "/_emulator/tokens")
    channels = emulator.control("GET", "/_emulator/channels")["channels"]
    values = [t["value"] for t in tokens["tokens"] + tokens["refreshTokens"]]
    return {v for v in [*values, *(c["id"] for c in channels), emulator.client_secret] if v}


def daemon_lines(sections: list[tuple[str, str]]) -> Iterator[str]:
    """The captured lines of a test, without the emulator's own log lines."""
    for _, text in sections:
        for line in text.splitlines():
            if not any(name in line for name in _EMULATOR_LOGGERS):
                yield line


def log_file_lines(directory: Path | None) -> Iterator[str]:
    """The lines of every log file under ``directory`` (process replicas write there)."""
    for path in directory.rglob("*.log") if directory is not None else ():
        yield from path.read_text(errors="replace").splitlines()


_SECRETS = pytest.StashKey[set[str]]()
_LOG_FILES = pytest.StashKey[list[str]]()


@pytest.fixture(autouse=True)
def issued_secrets(request: pytest.FixtureRequest) -> Iterator[None]:
    """Once the test's daemons have stopped, note what the emulator issued during the test."""
    name = next((n for n in _EMULATOR_FIXTURES if n in request.fixturenames), None)
    if name is None:
        yield
        return
    emulator: RunningEmulator = request.getfixturevalue(name)
    # Asked for now, so that it is torn down after this fixture has read its log files.
    logs = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
    yield
    request.node.stash[_SECRETS] = platform_secrets(emulator)
    request.node.stash[_LOG_FILES] = list(log_file_lines(logs))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    """After the teardown, fail the test if a secret reached anything it captured."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    secrets = item.stash.get(_SECRETS, set())
    if report.when != "teardown" or not secrets:
        return
    lines = chain(daemon_lines(report.sections), item.stash.get(_LOG_FILES, []))
    leaked = sorted({s[:6] + "…" for line in lines for s in secrets if s in line})
    if leaked:
        report.outcome = "failed"
        report.longrepr = f"secrets or channel ids in the captured output or log files: {leaked}"
