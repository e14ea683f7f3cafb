"""The applier's dry_run switched while running (a reload): every item whose write has not been
sent obeys the new value, even one already waiting for its turn to write."""

from __future__ import annotations

from pathlib import Path

from test_applier_promises import GRACE, Rig, make_rig, running

from wrapupd.events import Outcome


async def until_waiting_to_write(rig: Rig) -> None:
    """The item's state was checked (the budget's one token) and is marked writing; its write
    waits for the next token."""
    rig.sighting()
    await rig.advance(GRACE)
    await rig.until(lambda: rig.platform.gets == 1 and rig.limiter.waiting() > 0)


async def test_dry_run_switched_on_while_a_write_waits_sends_no_write(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path, rate_per_minute=1, burst=1)
    async with running(rig):
        await until_waiting_to_write(rig)
        rig.applier.dry_run = True
        await rig.advance(61)
        await rig.until(lambda: rig.outcome() is not None)
        assert rig.platform.writes == []
        assert rig.outcome() is Outcome.DRY_RUN


async def test_dry_run_switched_off_while_an_item_waits_writes_it_once(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path, rate_per_minute=1, burst=1)
    rig.applier.dry_run = True
    async with running(rig):
        rig.sighting()
        rig.applier.dry_run = False
        await rig.advance(GRACE)
        await rig.advance(61)
        await rig.until(lambda: rig.outcome() is not None)
        assert rig.platform.writes == ["code-default"]
        assert rig.outcome() is Outcome.APPLIED
