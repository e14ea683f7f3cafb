"""The notification channel over its whole life: renewals, rollovers, closings, expiry."""

from __future__ import annotations

from dataclasses import replace

from e2e_harness import SUPPORT, UNIT, DaemonFactory, eventually, final_wrapup, sweeps

from genesys_emulator.testing import RunningEmulator
from wrapupd.service import Daemon
from wrapupd.subscriber import SubscriberConfig

FAST_SUBSCRIBER = SubscriberConfig(
    heartbeat_timeout=20 * UNIT,
    ping_timeout=10 * UNIT,
    min_session=UNIT,
    backoff_initial=UNIT / 5,
    backoff_max=2 * UNIT,
)


async def coded_by_api(emulator: RunningEmulator) -> None:
    conv = emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="nothing")
    entry = await eventually(
        lambda: final_wrapup(emulator, conv["conversationId"]), what="a wrap-up"
    )
    assert entry["wrapup"]["by"] == "api" and entry["apiWrapupWrites"] == 1


def metric(daemon: Daemon, name: str, **labels: str) -> float:
    return daemon.parts.metrics.registry.get_sample_value(name, labels or None) or 0.0


async def test_token_renewal_rolls_over_to_a_new_channel_without_a_gap(
    emulator: RunningEmulator, start_daemon: DaemonFactory
) -> None:
    emulator.reset(token_lifetime_s=40 * UNIT)
    daemon = await start_daemon(token_renew_margin=30 * UNIT)
    epoch = daemon.parts.subscriber.epoch
    await eventually(
        lambda: metric(daemon, "wrapupd_channel_rollovers_total") >= 2,
        timeout=10,
        what="two rollovers",
        blocking=False,
    )
    assert daemon.parts.subscriber.epoch == epoch, "a rollover is make-before-break: no gap"
    await coded_by_api(emulator)
    assert daemon.parts.client.token_generation >= 3


async def test_socket_closing_opens_the_new_socket_before_the_old_one_closes(
    emulator: RunningEmulator, start_daemon: DaemonFactory
) -> None:
    daemon = await start_daemon()
    epoch = daemon.parts.subscriber.epoch
    emulator.fault(kind="socket_closing", close_after_s=10 * UNIT)
    await eventually(
        lambda: metric(daemon, "wrapupd_reconnects_total", reason="socket_closing") >= 1,
        what="socket replaced",
        blocking=False,
    )
    await eventually(
        lambda: daemon.parts.subscriber.connected or None, what="connected", blocking=False
    )  # type: ignore[union-attr]
    assert daemon.parts.subscriber.epoch == epoch
    await coded_by_api(emulator)


async def test_subscriptions_are_renewed_before_the_channel_expires(
    emulator: RunningEmulator, start_daemon: DaemonFactory
) -> None:
    emulator.reset(channel_lifetime_s=30 * UNIT)
    daemon = await start_daemon(subscriber=replace(FAST_SUBSCRIBER, renew_interval=8 * UNIT))
    epoch = daemon.parts.subscriber.epoch

    def puts() -> int:
        return sum(
            c["count"]
            for c in emulator.calls()
            if c["method"] == "PUT" and c["path"].endswith("/subscriptions")
        )

    await eventually(lambda: puts() >= 6, timeout=10, what="several renewals")
    assert daemon.parts.subscriber.epoch == epoch, "the channel never expired"
    await coded_by_api(emulator)


async def test_expired_channel_is_replaced_and_the_gap_reconciled(
    emulator: RunningEmulator, start_daemon: DaemonFactory
) -> None:
    daemon = await start_daemon()
    await eventually(lambda: sweeps(daemon) >= 1 or None, what="start-up sweep", blocking=False)  # type: ignore[union-attr]
    runs = sweeps(daemon)
    emulator.fault(kind="expire_channels")

    def channels_created() -> int:
        return sum(
            c["count"]
            for c in emulator.calls()
            if c["method"] == "POST" and c["path"] == "/api/v2/notifications/channels"
        )

    await eventually(lambda: channels_created() >= 2, what="a new channel")
    await eventually(
        lambda: sweeps(daemon) > runs or None, what="the gap reconciled", blocking=False
    )  # type: ignore[union-attr]
    assert daemon.parts.subscriber.epoch >= 1
    await coded_by_api(emulator)


async def test_revoked_token_ends_the_channel_and_the_daemon_recovers(
    emulator: RunningEmulator, start_daemon: DaemonFactory
) -> None:
    daemon = await start_daemon()
    generation = daemon.parts.client.token_generation
    emulator.fault(kind="revoke_tokens")
    await coded_by_api(emulator)
    assert daemon.parts.client.token_generation > generation
    assert metric(daemon, "wrapupd_events_total", kind="channel_ended") >= 1
