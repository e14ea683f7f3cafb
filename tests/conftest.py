"""Shared fixtures: one in-process Genesys emulator per session, reset before each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from emulator_client import RawClient, wait_until
from genesys_emulator.testing import RunningEmulator, running_emulator
from ledger_places import ledgers, place, postgres_place, sqlite_place  # noqa: F401  (ledger fixtures)
from postgres import postgres, postgres_server  # noqa: F401  (fixtures: a throwaway PostgreSQL)

# Short intervals so that every test runs in milliseconds.
TEST_OPTIONS: dict[str, Any] = {
    "org": "demo",
    "heartbeat_interval_s": 0.2,
    "token_lifetime_s": 3600,
    "channel_lifetime_s": 3600,
    "socket_closing_lead_s": 0.2,
    "rate_limit_per_window": 300,
    "rate_window_s": 60,
    "require_user_context": False,
}


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[RunningEmulator]:
    with running_emulator(**TEST_OPTIONS) as emu:
        yield emu


@pytest.fixture
def emulator(emulator_server: RunningEmulator) -> RunningEmulator:
    emulator_server.reset(**TEST_OPTIONS)
    return emulator_server


@pytest.fixture
def raw(emulator: RunningEmulator) -> RawClient:
    return RawClient(emulator.base_url)


@pytest.fixture
def main_token(emulator: RunningEmulator, raw: RawClient) -> str:
    return raw.bearer(emulator.client_id, emulator.client_secret)


@pytest.fixture
def sdk(emulator: RunningEmulator) -> Any:
    """An authenticated official-SDK ApiClient for the org's main client."""
    import PureCloudPlatformClientV2 as sdk_module

    client = sdk_module.api_client.ApiClient(host=emulator.base_url)
    client.get_client_credentials_token(emulator.client_id, emulator.client_secret)
    return client


@pytest.fixture
def wait() -> Callable[..., Any]:
    return wait_until
