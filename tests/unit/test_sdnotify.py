"""wrapupd.sdnotify: messages land on a fake notify socket, in order; the watchdog is gated."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from wrapupd.clock import ManualClock
from wrapupd.sdnotify import Notifier, WatchdogPinger, socket_address, watchdog_interval_from


class FakeSystemd:
    """An AF_UNIX datagram socket standing where systemd's notify socket would be."""

    def __init__(self, address: str | bytes) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.setblocking(False)

    def messages(self) -> list[str]:
        """Every datagram received so far (one datagram = one notify call)."""
        received = []
        while True:
            try:
                received.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return received


@pytest.fixture
def notify_path(tmp_path: Path) -> Iterator[Path]:
    # AF_UNIX paths are limited to 108 bytes; pytest's tmp_path can be longer on some machines,
    # so fall back to a short directory of our own then.
    if len(str(tmp_path / "notify")) < 100:
        yield tmp_path / "notify"
        return
    with tempfile.TemporaryDirectory(prefix="sdn") as directory:
        yield Path(directory) / "notify"


@pytest.fixture
def systemd(notify_path: Path) -> Iterator[FakeSystemd]:
    fake = FakeSystemd(str(notify_path))
    yield fake
    fake.sock.close()


@pytest.fixture
def notifier(notify_path: Path, systemd: FakeSystemd) -> Iterator[Notifier]:
    env = {"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "60000000"}
    notifier = Notifier(env, pid=os.getpid())
    yield notifier
    notifier.close()


def test_lifecycle_messages_arrive_in_order(notifier: Notifier, systemd: FakeSystemd) -> None:
    notifier.ready()
    notifier.status("watching 3 queues\nall fine")
    notifier.watchdog()
    notifier.stopping("draining 2 items")
    assert systemd.messages() == [
        "READY=1",
        "STATUS=watching 3 queues all fine",
        "WATCHDOG=1",
        "STOPPING=1\nSTATUS=draining 2 items",
    ]


def test_reloading_carries_a_monotonic_timestamp(notifier: Notifier, systemd: FakeSystemd) -> None:
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notifier.reloading()
    (message,) = systemd.messages()
    first, second = message.split("\n")
    assert first == "RELOADING=1"
    assert second.startswith("MONOTONIC_USEC=")
    assert int(second.removeprefix("MONOTONIC_USEC=")) >= before


def test_abstract_socket_address() -> None:
    name = f"wrapupd-test-{uuid.uuid4().hex}"
    fake = FakeSystemd(b"\0" + name.encode())
    try:
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        notifier.ready()
        assert fake.messages() == ["READY=1"]
        notifier.close()
    finally:
        fake.sock.close()


def test_everything_is_a_noop_without_notify_socket() -> None:
    notifier = Notifier({})
    assert notifier.notify("READY=1") is False
    notifier.ready()
    assert notifier.watchdog() is False  # nothing to send to, nothing raised
    assert notifier.watchdog_interval() is None


def test_a_vanished_socket_is_logged_not_raised(notify_path: Path) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(notify_path)})  # nobody bound there
    try:
        notifier.ready()
        assert notifier.notify("READY=1") is False
    finally:
        notifier.close()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/run/systemd/notify", "/run/systemd/notify"),
        ("@abc", b"\0abc"),
        *[("", None), ("@", None), ("vsock:2:1234", None), ("relative/path", None)],
    ],
)
def test_socket_address(value: str, expected: str | bytes | None) -> None:
    assert socket_address(value) == expected


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "60000000"}, 30.0),
        ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "4242"}, 30.0),
        ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}, None),  # watching someone else
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec(
    env: dict[str, str], expected: float | None
) -> None:
    assert watchdog_interval_from(env, pid=4242) == expected


def test_notifier_reads_watchdog_for_its_own_pid() -> None:
    env = {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier(env).watchdog_interval() == 1.0


class Health:
    def __init__(self) -> None:
        self.ok = True

    def __call__(self) -> bool:
        return self.ok


async def test_watchdog_pings_only_while_healthy(notifier: Notifier, systemd: FakeSystemd) -> None:
    clock, health = ManualClock(), Health()
    pinger = WatchdogPinger(notifier, health, clock)  # every 30 s: half of WATCHDOG_USEC
    task = asyncio.create_task(pinger.run())
    await clock.advance(0)
    assert systemd.messages() == ["WATCHDOG=1"]

    await clock.advance(30)
    assert systemd.messages() == ["WATCHDOG=1"]

    health.ok = False  # wedged: systemd must see the pings stop
    await clock.advance(30)
    await clock.advance(30)
    assert systemd.messages() == []

    health.ok = True
    await clock.advance(30)
    assert systemd.messages() == ["WATCHDOG=1"]

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_raising_health_check_withholds_the_ping(
    notifier: Notifier, systemd: FakeSystemd
) -> None:
    def broken() -> bool:
        raise RuntimeError("ledger gone")

    pinger = WatchdogPinger(notifier, broken, ManualClock())
    assert pinger.tick() is False
    assert systemd.messages() == []


async def test_pinger_returns_at_once_when_systemd_is_not_watching() -> None:
    pinger = WatchdogPinger(Notifier({}), lambda: True, ManualClock())
    await asyncio.wait_for(pinger.run(), timeout=1)


async def test_ready_status_watchdog_stopping_in_order_with_pinger(
    notifier: Notifier, systemd: FakeSystemd
) -> None:
    """The order a service produces: READY, STATUS, watchdog pings, then STOPPING."""
    clock = ManualClock()
    notifier.ready()
    notifier.status("running")
    task = asyncio.create_task(WatchdogPinger(notifier, lambda: True, clock, interval=1).run())
    await clock.advance(0)
    await clock.advance(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    notifier.stopping()
    assert systemd.messages() == [
        "READY=1",
        "STATUS=running",
        "WATCHDOG=1",
        "WATCHDOG=1",
        "STOPPING=1",
    ]
