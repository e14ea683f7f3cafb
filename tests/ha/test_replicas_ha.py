"""Active-active replicas on one PostgreSQL ledger keep every promise through the faults a
deployment meets: a replica killed mid-write, a rolling restart, the database restarted, one
replica's socket dropped again and again. Each scenario is scored from the emulator's ground
truth: 0 missed, 0 doubled, 0 overwritten, 0 stray (``overwrite_allowed`` makes a second write
land, so a broken lease would show)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ha_harness import (
    UNIT,
    Fleet,
    ProcessReplica,
    assert_promises,
    eventually,
    settle,
    traffic,
)

from genesys_emulator.testing import RunningEmulator
from postgres import PostgresDatabase
from wrapupd.service import Daemon


async def applied_by(daemon: Daemon) -> float:
    await daemon.parts.ledger.flush()  # an outcome is counted once the ledger keeps it
    registry = daemon.parts.metrics.registry
    return registry.get_sample_value("wrapupd_outcomes_total", {"outcome": "applied"}) or 0.0


def writes_so_far(emu: RunningEmulator) -> int:
    return sum(e.get("apiWrapupCalls", 0) for e in emu.ground_truth())


# Longer than the whole scenario: a live replica never loses a lease here, whatever the machine's
# stalls, so the applied counts of the two replicas add up to the codes written by each. Takeover
# is what the kill, restart and outage scenarios below and tests/unit/test_replicas*.py are about
# (a takeover of a write answered late is counted once: test_replicas_write_lease.py).
LIVE_LEASE_S = 120.0


async def test_two_replicas_share_the_work_and_write_each_participant_once(fleet: Fleet) -> None:
    a = await fleet.start("a", lease_seconds=LIVE_LEASE_S)
    b = await fleet.start("b", lease_seconds=LIVE_LEASE_S)
    ids = [traffic(fleet.emu, count=60, rate=30.0, seed=1)]
    result = await settle(fleet.emu, ids)
    assert_promises(result, "two replicas sharing the work")
    assert await applied_by(a) + await applied_by(b) == result.applied
    assert fleet.channels["a"] and fleet.channels["b"]  # each replica holds its own channel


async def test_rolling_restart_keeps_every_promise(fleet: Fleet) -> None:
    await fleet.start("a")
    await fleet.start("b")
    ids = [traffic(fleet.emu, count=90, rate=20.0, seed=2)]
    for name in ("a", "b"):
        await eventually(lambda: writes_so_far(fleet.emu) > 0, timeout=10, what="writes")
        await fleet.stop(name)
        await fleet.start(f"{name}-next")
    assert_promises(await settle(fleet.emu, ids), "rolling restart of both replicas")


async def test_postgresql_restarted_mid_traffic_keeps_every_promise(fleet: Fleet) -> None:
    a = await fleet.start("a")
    await fleet.start("b")
    ids = [traffic(fleet.emu, count=80, rate=20.0, seed=3)]
    await eventually(lambda: writes_so_far(fleet.emu) > 0, timeout=10, what="writes")
    await asyncio.to_thread(fleet.db.server.stop)
    await eventually(lambda: not a.readiness()["ledger"][0], timeout=10, what="not ready")
    await asyncio.sleep(10 * UNIT)  # the outage lasts a while: traffic goes on meanwhile
    await asyncio.to_thread(fleet.db.server.start)
    await eventually(lambda: a.readiness()["ledger"][0], timeout=20, what="ledger back")
    assert_promises(await settle(fleet.emu, ids, timeout=40), "PostgreSQL restarted mid-traffic")


async def test_one_replicas_socket_dropped_repeatedly_keeps_every_promise(fleet: Fleet) -> None:
    await fleet.start("a")
    await fleet.start("b")
    ids = [traffic(fleet.emu, count=80, rate=20.0, seed=4)]
    for _ in range(8):
        fleet.emu.fault(kind="drop_sockets", channels=sorted(fleet.channels["a"]))
        await asyncio.sleep(5 * UNIT)
    assert_promises(await settle(fleet.emu, ids), "one replica's socket dropped 8 times")


async def test_a_replica_killed_mid_write_has_its_items_written_by_another(
    ha_emulator: RunningEmulator, postgres: PostgresDatabase, tmp_path: Path
) -> None:
    # Writes are slowed to 0.5 s so that some are in flight at the kill; a grace longer than
    # that keeps agents' own codes ahead of every write (an agent coding while a PATCH is on
    # the wire is a race no client can win, and not what this scenario is about), and a timeout
    # margin longer than that keeps a write sent in time from landing after a time-boxed queue's
    # timeout stamp (the margin an operator sets on a platform this slow to take a write).
    replicas = [
        ProcessReplica.write(ha_emulator, postgres, tmp_path / n, grace=20 * UNIT, margin=0.8)
        for n in "ab"
    ]
    try:
        for replica in replicas:
            replica.start()
        for replica in replicas:
            await replica.ready()
        ids = [traffic(ha_emulator, count=80, rate=20.0, seed=5)]
        ha_emulator.fault(
            kind="latency",
            method="PATCH",
            path="/api/v2/conversations/*/participants/*",
            seconds=0.5,
            count=30,
        )
        await eventually(lambda: writes_so_far(ha_emulator) >= 3, timeout=20, what="writes")
        replicas[0].kill()  # SIGKILL with writes in flight: no drain, no retire
        assert_promises(
            await settle(ha_emulator, ids, timeout=40), "one replica SIGKILLed mid-write"
        )
    finally:
        for replica in replicas:
            replica.stop()
