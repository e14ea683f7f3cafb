"""The fault matrix, platform side: the daemon in-process against the emulator, sustained generated
traffic of every outcome kind, faults injected while it flows, the score from ground truth."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from faults_harness import (
    UNIT,
    InProcess,
    Scenario,
    Score,
    assert_promises,
    eventually,
    now,
)

from genesys_emulator.testing import RunningEmulator
from wrapupd.applier import ApplierConfig
from wrapupd.events import Outcome
from wrapupd.service import Daemon

InProcessFactory = Callable[[Scenario], InProcess]
ScenarioFactory = Callable[[str], Scenario]
Faults = Callable[[Scenario, Daemon], Awaitable[Any]]


async def run_matrix_row(
    scenario: ScenarioFactory,
    in_process: InProcessFactory,
    name: str,
    faults: Faults | None = None,
    *,
    before_start: Callable[[Scenario], Awaitable[Any]] | None = None,
    daemon: dict[str, Any] | None = None,
    traffic: dict[str, Any] | None = None,
) -> tuple[Score, Daemon, Scenario]:
    s = scenario(name)
    runner = in_process(s)
    if before_start is not None:
        await before_start(s)
    d = await runner.start(**(daemon or {}))
    await s.traffic(**(traffic or {}))
    if faults is not None:
        await faults(s, d)
    applier = d.parts.applier
    await s.settle(pending=lambda: applier.pending_count)
    await runner.stop_all()
    result = s.finish()
    return result, d, s


async def test_websocket_dropped_abruptly_and_repeatedly(
    scenario: ScenarioFactory, in_process: InProcessFactory
) -> None:
    async def drops(s: Scenario, d: Daemon) -> None:
        times = await s.while_traffic(6 * UNIT, lambda: s.fault(kind="drop_sockets"))
        assert times >= 2

    result, d, _ = await run_matrix_row(
        scenario, in_process, "WebSocket dropped (1006), repeatedly", drops
    )
    assert_promises(result)
    assert d.parts.subscriber.epoch >= 2


async def test_socket_closing_then_close(
    scenario: ScenarioFactory, in_process: InProcessFactory
) -> None:
    async def closing(s: Scenario, d: Daemon) -> None:
        await s.while_traffic(
            8 * UNIT, lambda: s.fault(kind="socket_closing", close_after_s=4 * UNIT)
        )

    result, _, _ = await run_matrix_row(scenario, in_process, "socket_closing, then close", closing)
    assert_promises(result)


def _rogue_channel(emu: RunningEmulator) -> None:
    """Another process with the same OAuth client creates a channel: the oldest one is evicted."""
    from emulator_client import RawClient

    raw = RawClient(emu.base_url)
    token = raw.bearer(emu.client_id, emu.client_secret)
    request = urllib.request.Request(
        emu.base_url + "/api/v2/notifications/channels",
        method="POST",
        headers={"Authorization": f"Bearer {token}"},
        data=b"",
    )
    with urllib.request.urlopen(request, timeout=5):
        pass


async def test_channel_expired_or_evicted_mid_traffic(
    scenario: ScenarioFactory, in_process: InProcessFactory, faults_emulator: RunningEmulator
) -> None:
    faults_emulator.reset(**{**_options(), "max_channels_per_client": 1})
    turn = 0

    async def expire_or_evict() -> None:
        nonlocal turn
        turn += 1
        if turn % 2:
            await asyncio.to_thread(faults_emulator.fault, kind="expire_channels")
        else:
            await asyncio.to_thread(_rogue_channel, faults_emulator)

    async def faults(s: Scenario, d: Daemon) -> None:
        await s.while_traffic(6 * UNIT, expire_or_evict)

    result, _, _ = await run_matrix_row(
        scenario, in_process, "channel expired / evicted (404) mid-traffic", faults
    )
    assert_promises(result)


async def test_token_expired_and_revoked_mid_traffic(
    scenario: ScenarioFactory, in_process: InProcessFactory
) -> None:
    turn = 0

    async def faults(s: Scenario, d: Daemon) -> None:
        async def one() -> None:
            nonlocal turn
            turn += 1
            await s.fault(kind="expire_tokens" if turn % 2 else "revoke_tokens")

        await s.while_traffic(8 * UNIT, one)

    result, _, s = await run_matrix_row(
        scenario, in_process, "token expired and revoked mid-traffic", faults
    )
    assert_promises(result)
    assert len(s.secrets) >= 3, "several tokens were issued and checked against the output"


async def _storm(s: Scenario, specs: list[dict[str, Any]], silence_s: float) -> None:
    """Queue request faults, wait until all are consumed; Retry-After pauses count as blocked."""
    started = now()
    await s.fault(**specs[0]) if len(specs) == 1 else await asyncio.to_thread(
        s.emu.control, "POST", "/_emulator/faults", specs
    )
    await eventually(
        lambda: not s.emu.control("GET", "/_emulator/faults")["pending"],
        timeout=60,
        what="every injected fault consumed",
    )
    if silence_s:
        from datetime import timedelta

        s.down.append((started, now() + timedelta(seconds=silence_s)))


async def test_429_storm_on_patch_and_get_with_retry_after(
    scenario: ScenarioFactory, in_process: InProcessFactory
) -> None:
    conv = "/api/v2/conversations/**"
    n = 30

    async def storm(s: Scenario, d: Daemon) -> None:
        await asyncio.sleep(4 * UNIT)
        specs = [
            {
                "kind": "http",
                "method": "PATCH",
                "path": conv,
                "status": 429,
                "retry_after": 1,
                "count": 2,
            },
            {
                "kind": "http",
                "method": "GET",
                "path": conv,
                "status": 429,
                "retry_after": 1,
                "count": 2,
            },
            {
                "kind": "http",
                "method": "PATCH",
                "path": conv,
                "status": 429,
                "retry_after": 0,
                "count": n,
            },
            {
                "kind": "http",
                "method": "GET",
                "path": conv,
                "status": 429,
                "retry_after": 0,
                "count": n,
            },
            {
                "kind": "http",
                "method": "POST",
                "path": "/api/v2/analytics/**",
                "status": 429,
                "retry_after": 0,
                "count": 3,
            },
        ]
        await _storm(s, specs, silence_s=1.0)
        pauses = d.parts.metrics.registry.get_sample_value("wrapupd_ratelimit_pauses_total")
        assert pauses is not None and pauses >= 1

    result, _, _ = await run_matrix_row(
        scenario, in_process, "429 storm on PATCH and GET (Retry-After 1 and 0)", storm
    )
    assert_promises(result)


async def test_bursts_of_500_502_503_504(
    scenario: ScenarioFactory, in_process: InProcessFactory
) -> None:
    async def bursts(s: Scenario, d: Daemon) -> None:
        statuses = [500, 502, 503, 504]
        specs = [
            {"kind": "http", "method": m, "path": p, "status": statuses[i % 4], "count": 6}
            for i, (m, p) in enumerate(
                [
                    ("PATCH", "/api/v2/conversations/**"),
                    ("GET", "/api/v2/conversations/**"),
                    ("POST", "/api/v2/analytics/**"),
                    ("PUT", "/api/v2/notifications/**"),
                    ("POST", "/api/v2/notifications/channels"),
                    ("HEAD", "/api/v2/notifications/**"),
                ]
            )
        ]
        turn = 0

        async def one() -> None:
            nonlocal turn
            await asyncio.to_thread(
                s.emu.control, "POST", "/_emulator/faults", specs[turn % 6 :][:3]
            )
            if turn % 3 == 0:
                await s.fault(kind="drop_sockets")  # so channel calls get their share
            turn += 1

        await s.while_traffic(6 * UNIT, one)

    result, _, _ = await run_matrix_row(scenario, in_process, "bursts of 500/502/503/504", bursts)
    assert_promises(result)


def _hold_first_write_and_read(cids: Iterable[str], seconds: float) -> list[dict[str, Any]]:
    """Per conversation: its first wrap-up write and its first read held ``seconds``."""
    return [
        {"kind": "latency", "method": method, "path": path, "seconds": seconds, "count": 1}
        for cid in sorted(cids)
        for method, path in (
            ("PATCH", f"/api/v2/conversations/{cid}/participants/*"),
            ("GET", f"/api/v2/conversations/{cid}"),
        )
    ]


def _held_writes(emu: RunningEmulator, armed: int) -> int:
    """How many of the ``armed`` write holds a request has taken (the rest are still pending)."""
    pending = emu.control("GET", "/_emulator/faults")["pending"]
    return armed - sum(1 for f in pending if f["kind"] == "latency" and f["method"] == "PATCH")


async def test_api_latency_above_the_client_timeout(
    scenario: ScenarioFactory, in_process: InProcessFactory
) -> None:
    # Every conversation's first write and first read are held past the client's timeout, armed
    # as the conversation starts (its first write is at least talk + grace away). Holds per
    # participant are bounded, so a loaded machine cannot pile them on one participant (armed
    # on a timer instead, a slow daemon met them on every try and ran out the 2 s time box).
    timeout = 6 * UNIT
    applier = ApplierConfig(workers=8, retry_initial_seconds=UNIT / 5, retry_max_seconds=4 * UNIT)
    armed: set[str] = set()

    async def arm_new_conversations(s: Scenario) -> None:
        progress = [await asyncio.to_thread(s.emu.traffic_progress, t) for t in s.traffic_ids]
        new = {c for p in progress for c in p["conversationIds"]} - armed
        if new:
            specs = _hold_first_write_and_read(new, 1.6 * timeout)
            await asyncio.to_thread(s.emu.control, "POST", "/_emulator/faults", specs)
            armed.update(new)

    async def slow(s: Scenario, d: Daemon) -> None:
        await s.while_traffic(UNIT / 5, lambda: arm_new_conversations(s))
        await arm_new_conversations(s)  # the last ones to start

    result, _, s = await run_matrix_row(
        scenario,
        in_process,
        "API latency above the client timeout",
        slow,
        daemon={"read_timeout": timeout, "applier": applier},
    )
    assert_promises(result)
    assert len(armed) == s.conversations()  # every conversation had its holds armed
    # The holds met the daemon's writes (each applied code's first try, bar a late arming).
    assert _held_writes(s.emu, len(armed)) >= result.applied // 2 > 0


async def test_subscription_calls_failing_at_start(
    scenario: ScenarioFactory, in_process: InProcessFactory
) -> None:
    async def failing(s: Scenario) -> None:
        await asyncio.to_thread(
            s.emu.control,
            "POST",
            "/_emulator/faults",
            [
                {
                    "kind": "http",
                    "method": "POST",
                    "path": "/api/v2/notifications/channels",
                    "status": 503,
                    "count": 2,
                },
                {
                    "kind": "http",
                    "method": "PUT",
                    "path": "/api/v2/notifications/channels/*/subscriptions",
                    "status": 500,
                    "count": 2,
                },
                {
                    "kind": "http",
                    "method": "PUT",
                    "path": "/api/v2/notifications/channels/*/subscriptions",
                    "status": 429,
                    "retry_after": 0,
                    "count": 1,
                },
            ],
        )

    result, _, _ = await run_matrix_row(
        scenario, in_process, "subscription calls failing at start", before_start=failing
    )
    assert_promises(result)


async def test_events_duplicated_and_out_of_order(
    scenario: ScenarioFactory, in_process: InProcessFactory
) -> None:
    async def chaos(s: Scenario) -> None:
        await s.fault(kind="event_chaos", seconds=600, duplicate=0.5, max_delay_s=6 * UNIT, seed=7)

    result, _, _ = await run_matrix_row(
        scenario, in_process, "events duplicated and out of order", before_start=chaos
    )
    assert_promises(result)


CALLS_PER_ITEM = 2  # the state check by GET after the item fell due, then the write


def _feasible(
    deadlines: list[float], first_due: float, burst: int, rate_per_s: float, slack: int
) -> int:
    """How many of these deadlines a token bucket can meet, earliest deadline first, at two calls
    per participant."""
    met = 0
    for d in sorted(deadlines):
        if CALLS_PER_ITEM * (met + 1) <= burst + rate_per_s * (d - first_due) - slack:
            met += 1
    return met


async def test_acw_burst_far_above_the_rate_budget(
    scenario: ScenarioFactory, in_process: InProcessFactory, faults_emulator: RunningEmulator
) -> None:
    from datetime import datetime

    from faults_harness import GRACE, MARGIN

    from wrapupd.ratelimit import default_burst

    budget = 240.0  # per minute: 4/s, a bucket of 12
    faults_emulator.reset(**{**_options(), "rate_limit_per_window": 300})
    s = scenario("burst of ACW starts far above the rate budget")
    runner = in_process(s)
    d = await runner.start(budget_per_minute=budget)
    # Start-up's own calls (queue and code look-ups) come out of the same bucket.
    spent_at_start = d.parts.metrics.registry.get_sample_value("wrapupd_ratelimit_acquired_total")
    assert spent_at_start is not None
    count = s.conversations(60)
    await s.traffic(
        count=count,
        rate=2000,
        queues=["Billing", "Retention", "Support", "Unwatched Queue"],
        mix={"nothing": 1.0},
        talk_s=[UNIT, UNIT],
    )
    applier = d.parts.applier
    await s.settle(timeout=count / (budget / 60) + 10, pending=lambda: applier.pending_count)

    org = faults_emulator.control("GET", "/_emulator/org")
    timeouts = {q["id"]: q["timeoutMs"] / 1000 for q in org["queues"] if q["timeoutMs"]}
    truth = faults_emulator.ground_truth()
    timed = [e for e in truth if e["queueId"] in timeouts]
    starts = [datetime.fromisoformat(e["acwStartedAt"]).timestamp() for e in truth]
    deadlines = [
        datetime.fromisoformat(e["acwStartedAt"]).timestamp() + timeouts[e["queueId"]] - MARGIN
        for e in timed
    ]
    workers = d.options.applier.workers
    feasible = _feasible(
        deadlines,
        min(starts) + GRACE,
        max(0, default_burst(budget) - spent_at_start),
        budget / 60,
        workers,
    )
    too_late = d.parts.ledger.outcome_counts()[Outcome.TOO_LATE]
    await runner.stop_all()
    result = s.finish(budget_excused=len(timed) - feasible, over_budget=len(timed) - feasible)
    assert_promises(result)
    assert not [c for c in faults_emulator.calls() if c["status"] == 429], "exceeded the budget"
    stamped = sum(1 for e in timed if e["wrapup"]["by"] == "timeout")
    assert too_late >= stamped, "every participant the budget could not reach is reported"


def _options() -> dict[str, Any]:
    from faults_harness import EMULATOR_OPTIONS

    return dict(EMULATOR_OPTIONS)
