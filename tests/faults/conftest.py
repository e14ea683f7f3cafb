"""Fixtures of the fault matrix: ``--scale``, the faults org, a scenario per test, the results file.

Run bigger: ``pytest tests/faults --scale 10`` (or ``RELIABILITY_SCALE=10``). Write the measured
rows as JSON: ``RELIABILITY_JSON=path pytest tests/faults``; ``tests/faults/report.py``
turns them into the table of docs/RELIABILITY.md.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from faults_harness import EMULATOR_OPTIONS, InProcess, Scenario, capture_logs_into, restore_logging

from genesys_emulator.testing import RunningEmulator

RESULTS: list[dict[str, Any]] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    with contextlib.suppress(ValueError):  # registered already (by another conftest)
        parser.addoption(
            "--scale",
            type=float,
            default=None,
            help="fault matrix: multiply the generated traffic of every scenario (default 1)",
        )


@pytest.fixture
def scale(request: pytest.FixtureRequest) -> float:
    value = request.config.getoption("--scale", default=None)
    return float(value or os.environ.get("RELIABILITY_SCALE") or 1.0)


@pytest.fixture
def faults_emulator(emulator: RunningEmulator) -> RunningEmulator:
    emulator.reset(**EMULATOR_OPTIONS)  # same main client and secret as the demo org
    return emulator


ScenarioFactory = Callable[[str], Scenario]


@pytest.fixture
async def scenario(
    faults_emulator: RunningEmulator, scale: float, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[ScenarioFactory]:
    made: list[Scenario] = []
    command = f"pytest 'tests/faults/{Path(request.node.fspath).name}::{request.node.name}'"

    def make(name: str) -> Scenario:
        s = Scenario(name, faults_emulator, scale, tmp_path, RESULTS, command)
        capture_logs_into(s.transcript, faults_emulator.client_secret)
        made.append(s)
        return s

    try:
        yield make
    finally:
        restore_logging()


@pytest.fixture
async def in_process(
    scenario: ScenarioFactory, faults_emulator: RunningEmulator, tmp_path: Path
) -> AsyncIterator[Callable[[Scenario], InProcess]]:
    runners: list[InProcess] = []

    def make(s: Scenario) -> InProcess:
        runner = InProcess(faults_emulator, s.state_dir, s.transcript)
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        await runner.stop_all()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = os.environ.get("RELIABILITY_JSON")
    if target and RESULTS:
        Path(target).write_text(json.dumps(RESULTS, indent=1) + "\n")
