"""The fault matrix, issue 11 rows: the headline promises under adversarial timing. Like every row
of the matrix, the emulator accepts any write (``overwrite_allowed``), so an overwrite shows in the
ground truth instead of being refused by the platform (see ``RACE_WINDOW_S`` in the harness).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from faults_harness import UNIT, InProcess, Scenario, assert_promises, eventually, now
from test_fault_platform import run_matrix_row

from full_disk import fill, small_disk
from wrapupd.service import Daemon

# Untimed queues: on the time-boxed ones (2-2.5 s of ACW here) a scaled outage or a one-second
# Retry-After outlasts the whole ACW, which measures the platform's timeout, not these promises.
UNTIMED = ["Support", "Sales", "Unwatched Queue"]


InProcessFactory = Callable[[Scenario], InProcess]
ScenarioFactory = Callable[[str], Scenario]
CONVERSATIONS = "/api/v2/conversations/**"
# Production's 300 s sweep is 60 UNIT here, so one UNIT stands for 5 s: ten minutes are 120 UNIT.
TEN_MINUTES = 120 * UNIT
ONE_MINUTE = 12 * UNIT


async def test_agent_codes_during_a_retry_after_pause(
    scenario: ScenarioFactory, in_process: InProcessFactory
) -> None:
    """Every write is answered 429 with a Retry-After while agents keep coding: the retries that
    follow must never land on a participant the agent coded during the pause."""

    async def pauses(s: Scenario, d: Daemon) -> None:
        await asyncio.sleep(4 * UNIT)
        for _ in range(6):
            s.emu.fault(
                kind="http", method="PATCH", path=CONVERSATIONS, status=429, retry_after=1, count=3
            )
            await asyncio.sleep(20 * UNIT)

    traffic = {
        "queues": UNTIMED,
        "mix": {"agent_codes": 0.7, "nothing": 0.3},
        "agent_delay_s": [4 * UNIT, 30 * UNIT],
    }
    result, _, _ = await run_matrix_row(
        scenario, in_process, "agent codes during a Retry-After pause", pauses, traffic=traffic
    )
    assert_promises(result)


async def test_platform_down_ten_minutes_then_back(
    scenario: ScenarioFactory, in_process: InProcessFactory
) -> None:
    """Every API call answers 503 for ten (scaled) minutes: nothing ends for good, nothing is lost;
    once the platform is back every participant still in ACW gets its code."""

    async def outage(s: Scenario, d: Daemon) -> None:
        await asyncio.sleep(4 * UNIT)
        started = now()
        s.emu.fault(kind="http", path="/api/v2/**", status=503, count=1_000_000)
        await asyncio.sleep(TEN_MINUTES)
        s.emu.control("DELETE", "/_emulator/faults")
        s.down.append((started, now()))  # the platform's timeouts meanwhile are not ours to beat
        assert d.parts.subscriber is not None

    result, _, _ = await run_matrix_row(
        scenario,
        in_process,
        "platform down 10 minutes (every API call 503), then back",
        outage,
        traffic={"queues": UNTIMED},
    )
    assert_promises(result)


async def test_frames_lost_with_the_socket_up(
    scenario: ScenarioFactory, in_process: InProcessFactory
) -> None:
    """Conversation events vanish while the socket and its heartbeats stay up: the periodic sweep,
    which skips nothing, finds the participants."""

    async def losses(s: Scenario, d: Daemon) -> None:
        await asyncio.sleep(2 * UNIT)
        s.emu.fault(kind="lose_events", count=40)

    result, _, _ = await run_matrix_row(
        scenario,
        in_process,
        "frames lost with the socket up (lose_events)",
        losses,
        traffic={"queues": UNTIMED},
    )
    assert_promises(result)


async def test_subscription_renewal_refused(
    scenario: ScenarioFactory, in_process: InProcessFactory
) -> None:
    """Every subscription call fails for a while mid-traffic: the socket already open keeps
    delivering and nothing is lost."""

    async def refusals(s: Scenario, d: Daemon) -> None:
        await asyncio.sleep(2 * UNIT)
        s.emu.fault(
            kind="http", path="/api/v2/notifications/channels/*/subscriptions", status=500, count=50
        )

    result, _, _ = await run_matrix_row(
        scenario, in_process, "subscription renewal refused", refusals, traffic={"queues": UNTIMED}
    )
    assert_promises(result)


async def test_agent_codes_while_a_reconciler_read_spans_a_socket_gap(
    scenario: ScenarioFactory, in_process: InProcessFactory
) -> None:
    """Every conversation read is slowed, events are lost and the socket drops while agents code:
    a sweep's answer that started before a gap never proves the state after it (finding 2)."""

    async def gaps(s: Scenario, d: Daemon) -> None:
        await s.fault(
            kind="latency", method="GET", path="/api/v2/conversations/*", seconds=4 * UNIT
        )
        await s.fault(kind="lose_events", count=30)
        await s.while_traffic(3 * UNIT, lambda: s.fault(kind="drop_sockets"))

    traffic = {
        "queues": UNTIMED,
        "mix": {"agent_codes": 0.6, "nothing": 0.4},
        "agent_delay_s": [2 * UNIT, 12 * UNIT],
    }
    result, _, _ = await run_matrix_row(
        scenario,
        in_process,
        "agent codes while a reconciler read spans a socket gap",
        gaps,
        traffic=traffic,
    )
    assert_promises(result)


async def test_one_poison_conversation_among_many_in_a_sweep(
    scenario: ScenarioFactory, in_process: InProcessFactory
) -> None:
    """One open conversation's read always fails (500) while the events of many others are lost:
    the sweeps step over it and still find every participant (finding 5)."""

    async def poison(s: Scenario, d: Daemon) -> None:
        stuck = await asyncio.to_thread(
            s.emu.start_conversation, queue="Support", talk_s=90 * UNIT, outcome="agent_codes"
        )
        path = f"/api/v2/conversations/{stuck['conversationId']}"
        await s.fault(kind="http", method="GET", path=path, status=500, count=1_000_000)
        await s.fault(kind="lose_events", count=40)

    result, d, _ = await run_matrix_row(
        scenario,
        in_process,
        "one poison conversation among many in a sweep",
        poison,
        traffic={"queues": UNTIMED},
    )
    assert_promises(result)
    failures = d.parts.metrics.registry.get_sample_value("wrapupd_reconcile_fetch_failures_total")
    assert failures and failures >= 1, "the poison conversation was read and stepped over"


async def test_disk_full_for_a_minute(
    scenario: ScenarioFactory, in_process: InProcessFactory
) -> None:
    """The ledger's disk fills for a (scaled) minute mid-traffic: no write leaves without its
    durable mark, the daemon stays up, and once space is back every participant gets its code."""
    s = scenario("disk full for a minute")
    with small_disk("4m", at=s.state_dir):
        runner = in_process(s)
        d = await runner.start()
        await s.traffic(queues=UNTIMED)
        await asyncio.sleep(2 * UNIT)
        filler = fill(s.state_dir)
        await eventually(
            lambda: not d.parts.ledger.health().available or None,
            timeout=ONE_MINUTE,
            what="the ledger sees its disk full",
            blocking=False,
        )
        await asyncio.sleep(ONE_MINUTE)
        filler.unlink()
        await s.settle(pending=lambda: d.parts.applier.pending_count)
        await runner.stop_all()
    result = s.finish()
    assert_promises(result)


async def test_a_long_lived_conversation_older_than_two_days(
    scenario: ScenarioFactory, in_process: InProcessFactory
) -> None:
    """An email that began two and a half days ago reaches ACW with no event delivered: only a
    sweep whose lookback reaches its first day finds it (finding 6: the old query window began at
    00:00 UTC of the previous day)."""
    old: dict[str, str] = {}

    async def long_lived(s: Scenario, d: Daemon) -> None:
        started = await asyncio.to_thread(
            s.emu.start_conversation,
            queue="Support",
            media="email",
            talk_s=2 * UNIT,
            outcome="nothing",
            silent=True,
            started_ago_s=2.5 * 86_400,
        )
        old.update(started)

    result, _, s = await run_matrix_row(
        scenario,
        in_process,
        "a long-lived conversation older than two days",
        long_lived,
        traffic={"queues": UNTIMED},
    )
    assert_promises(result)
    entry = next(e for e in s.emu.ground_truth() if e["conversationId"] == old["conversationId"])
    assert (entry.get("wrapup") or {}).get("by") == "api", entry


async def test_unknown_after_call_work_states(
    scenario: ScenarioFactory, in_process: InProcessFactory
) -> None:
    """Events show a pending ACW as ``unknown``, as a state no SDK knows, or not at all: each is
    uncertain, checked by GET, never taken for ACW's end (finding 4)."""

    async def noise(s: Scenario, d: Daemon) -> None:
        for state in ("unknown", "somethingNew", None):
            await s.fault(kind="acw_state_noise", count=40, state=state)
            await asyncio.sleep(6 * UNIT)

    result, _, _ = await run_matrix_row(
        scenario,
        in_process,
        "unknown afterCallWork states (acw_state_noise)",
        noise,
        traffic={"queues": UNTIMED},
    )
    assert_promises(result)
