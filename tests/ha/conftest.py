"""Fixtures of the HA tests: the emulator with ``overwrite_allowed`` on, replicas on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ha_harness import EMULATOR_OPTIONS, Fleet

from genesys_emulator.testing import RunningEmulator
from postgres import PostgresDatabase
from secret_guard import issued_secrets, pytest_runtest_makereport

__all__ = ["issued_secrets", "pytest_runtest_makereport"]


@pytest.fixture
def ha_emulator(emulator_server: RunningEmulator) -> RunningEmulator:
    emulator_server.reset(**EMULATOR_OPTIONS)
    return emulator_server


@pytest.fixture
async def fleet(
    ha_emulator: RunningEmulator, postgres: PostgresDatabase, tmp_path: Path
) -> AsyncIterator[Fleet]:
    """In-process replicas on one PostgreSQL ledger; whatever still runs is stopped after."""
    replicas = Fleet(ha_emulator, postgres, tmp_path)
    yield replicas
    await replicas.stop_all()
