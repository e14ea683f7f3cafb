"""Running like ops teams run services: systemd notifications, readiness, metrics, signals."""

from __future__ import annotations

import asyncio
import gc
import json
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_harness import SUPPORT, UNIT, DaemonFactory, eventually, final_wrapup, options_for, rule
from structlog.testing import capture_logs

from genesys_emulator.testing import RunningEmulator
from groundtruth.score import score, unresolved
from wrapupd.errors import BackgroundJobFailed
from wrapupd.sdnotify import Notifier, WatchdogPinger
from wrapupd.service import SWITCH_INTERVAL_S, Daemon


class NotifySocket:
    """A fake systemd notify socket: records every datagram the daemon sends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.messages: list[str] = []

    def drain(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return self.messages

    def first_index(self, field: str) -> int:
        return next(i for i, m in enumerate(self.drain()) if field in m.splitlines())


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    fake = NotifySocket(tmp_path / "notify.sock")
    yield fake
    fake.sock.close()


async def test_systemd_hears_ready_status_and_stopping_in_order(
    emulator: RunningEmulator, start_daemon: DaemonFactory, notify_socket: NotifySocket
) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(notify_socket.path)})
    daemon = await start_daemon(notifier=notifier)
    await start_daemon.stop(daemon)
    messages = notify_socket.drain()
    ready = notify_socket.first_index("READY=1")
    stopping = notify_socket.first_index("STOPPING=1")
    statuses = [i for i, m in enumerate(messages) if m.startswith("STATUS=")]
    assert ready < stopping
    assert any(i < ready for i in statuses), "STATUS=connected comes before READY"
    assert any("STATUS=watching 5 queues" in m for m in messages)
    assert any(i > stopping and "draining" in messages[i] for i in statuses)


async def test_once_ready_the_startup_heap_is_frozen_and_threads_share_the_gil_sooner(
    emulator: RunningEmulator, start_daemon: DaemonFactory
) -> None:
    """What keeps the write path's tail short once traffic comes (docs/PERFORMANCE.md)."""
    sys.setswitchinterval(0.005)  # CPython's default, whatever an earlier test left
    daemon = await start_daemon()
    try:
        assert gc.get_freeze_count() > 0, "the start-up objects are still in every collection"
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_S)
    finally:
        await start_daemon.stop(daemon)


async def test_the_watchdog_pings_through_platform_silence_and_stops_when_a_part_dies(
    emulator: RunningEmulator, start_daemon: DaemonFactory, notify_socket: NotifySocket
) -> None:
    """Issue 11 finding 7: silence from the platform is no reason for systemd to kill the daemon (a
    restart cannot bring the platform back); a part that stopped is."""
    environ = {"NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": str(int(4 * UNIT * 1e6))}
    daemon = await start_daemon(notifier=Notifier(environ))
    await eventually(
        lambda: "WATCHDOG=1" in notify_socket.drain() or None, what="watchdog pings while healthy"
    )
    daemon.parts.subscriber.last_frame_at = (
        daemon.clock.monotonic() - 10 * daemon.options.subscriber.heartbeat_timeout
    )
    pinger = WatchdogPinger(daemon.notifier, clock=daemon.clock, is_healthy=daemon.healthy)
    assert pinger.tick() is True, "no frame for long: the platform's problem, not a wedged daemon"
    daemon.parts.subscriber.stop()
    await eventually(lambda: not daemon.healthy() or None, what="the stopped part noticed")
    assert pinger.tick() is False
    with pytest.raises(BackgroundJobFailed, match="subscriber stopped"):
        await start_daemon.stop(daemon)


def readyz(port: int) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def test_readyz_flips_to_503_while_the_socket_is_down_and_back(
    emulator: RunningEmulator, start_daemon: DaemonFactory
) -> None:
    daemon = await start_daemon(listen=("127.0.0.1", 0))
    assert daemon.status_address is not None
    port = daemon.status_address[1]
    status, body = await asyncio.to_thread(readyz, port)
    assert status == 200 and body["ready"] is True
    # The channel disappears and creating a new one fails for a while: the socket stays down.
    emulator.fault(
        kind="http", method="POST", path="/api/v2/notifications/channels", status=503, count=25
    )
    emulator.fault(kind="expire_channels")
    status, body = await eventually(lambda: (s := readyz(port))[0] == 503 and s, what="/readyz 503")
    assert body["checks"]["socket"]["ok"] is False  # type: ignore[index]
    await eventually(lambda: readyz(port)[0] == 200, timeout=10, what="/readyz back to 200")
    livez = await asyncio.to_thread(
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=2).status
    )
    assert livez == 200


async def test_metrics_match_the_ground_truth_after_a_run(
    emulator: RunningEmulator, start_daemon: DaemonFactory
) -> None:
    daemon = await start_daemon()
    traffic = emulator.traffic(
        count=24,
        duration_s=12 * UNIT,
        queues=[SUPPORT, "Sales", "Unwatched Queue"],
        mix={"agent_codes": 0.3, "nothing": 0.7},
        talk_s=[UNIT, 2 * UNIT],
        agent_delay_s=[0.0, UNIT],
        seed=3,
    )
    await eventually(
        lambda: emulator.traffic_progress(traffic["trafficId"])["done"],
        timeout=15,
        what="traffic done",
    )
    watched = set(daemon.parts.codes.queue_ids)
    await eventually(
        lambda: unresolved(emulator.ground_truth(), watched) == 0,
        timeout=10,
        what="every watched participant coded",
    )
    result = score(emulator.ground_truth(), emulator.calls(), watched)
    assert not result.broken(), result.offenders
    registry = daemon.parts.metrics.registry
    applied_truth = result.applied
    patch_route = {
        "endpoint": "/api/v2/conversations/{conversationId}/participants/{participantId}",
        "method": "PATCH",
        "status_class": "2xx",
    }

    def recorded() -> bool:
        """The last write's answer reaches the metrics (and its outcome the ledger) after the
        emulator has already counted it: wait for both to catch up."""
        patches = sum(
            c["count"]
            for c in emulator.calls()
            if c["method"] == "PATCH" and 200 <= int(c["status"]) < 300
        )
        applied = registry.get_sample_value("wrapupd_outcomes_total", {"outcome": "applied"})
        requests = registry.get_sample_value("wrapupd_api_requests_total", patch_route)
        return applied == applied_truth and requests == patches

    await eventually(recorded, what="metrics match the emulator's call log")
    assert applied_truth > 0
    detected = registry.get_sample_value("wrapupd_acw_without_code_total")
    assert detected is not None and applied_truth <= detected <= applied_truth + result.agent
    assert registry.get_sample_value("wrapupd_websocket_connected") == 1


# --- signals, on a real process --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config_text(emulator: RunningEmulator, state: Path, port: int, code: str) -> str:
    return f"""
[genesys]
api_host = "{emulator.base_url}"
client_id = "{emulator.client_id}"
client_secret = "{emulator.client_secret}"
[defaults]
grace_seconds = 0
[[queues]]
queue = "Support"
default_code = "{code}"
[daemon]
state_dir = "{state}"
drain_seconds = 5
[http]
listen = "127.0.0.1:{port}"
[log]
format = "json"
"""


async def test_sighup_reloads_codes_and_rejects_a_bad_config_keeping_the_old(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    port = free_port()
    config = tmp_path / "wrapupd.toml"
    config.write_text(config_text(emulator, tmp_path / "state", port, "No code selected"))
    process = subprocess.Popen(
        [sys.executable, "-m", "wrapupd", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        await eventually(lambda: _ready(port), timeout=30, what="ready")
        config.write_text(config_text(emulator, tmp_path / "state", port, "Resolved"))
        process.send_signal(signal.SIGHUP)
        first = await _applied_name(emulator, expected="Resolved")
        assert first == "Resolved"
        config.write_text(config_text(emulator, tmp_path / "state", port, "Not A Code"))
        process.send_signal(signal.SIGHUP)
        await asyncio.sleep(10 * UNIT)
        assert process.poll() is None, "a bad reload must not stop the daemon"
        assert await _applied_name(emulator, expected="Resolved") == "Resolved"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    rejected = [e for e in events if e["event"] == "reload_rejected"]
    assert rejected and "'Not A Code' is not assigned to queue 'Support'" in rejected[0]["error"]
    assert any(e["event"] == "reloaded" for e in events)


def _ready(port: int) -> bool | None:
    try:
        return readyz(port)[0] == 200 or None
    except OSError:
        return None


async def _applied_name(emulator: RunningEmulator, *, expected: str) -> str:
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        conversation_id = emulator.start_conversation(
            queue=SUPPORT, talk_s=UNIT, outcome="nothing"
        )["conversationId"]
        entry = await eventually(
            lambda c=conversation_id: final_wrapup(emulator, c), what="a wrap-up"
        )
        name = str(entry["wrapup"]["name"])
        if name == expected or asyncio.get_running_loop().time() > deadline:
            return name


async def test_sigterm_during_in_flight_writes_loses_nothing_and_exits_0(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    port = free_port()
    config = tmp_path / "wrapupd.toml"
    config.write_text(config_text(emulator, tmp_path / "state", port, "No code selected"))
    command = [sys.executable, "-m", "wrapupd", "run", "--config", str(config)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    convs = []
    try:
        await eventually(lambda: _ready(port), timeout=30, what="ready")
        emulator.fault(
            kind="latency",
            method="PATCH",
            path="/api/v2/conversations/*/participants/*",
            seconds=0.5,
            count=3,
        )
        convs = [
            emulator.start_conversation(queue=SUPPORT, talk_s=UNIT, outcome="nothing")
            for _ in range(6)
        ]
        await eventually(
            lambda: sum(e["apiWrapupCalls"] for e in emulator.ground_truth()) >= 1,
            what="writes in flight",
        )
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
        restarted = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
        )
        try:
            for conv in convs:
                entry = await eventually(
                    lambda c=conv: final_wrapup(emulator, c["conversationId"]),
                    timeout=20,
                    what="coded",
                )
                assert entry["wrapup"]["by"] == "api"
                assert entry["apiWrapupWrites"] == 1, entry
        finally:
            restarted.terminate()
            restarted.wait(30)
    finally:
        if process.poll() is None:
            process.kill()


# --- the service's own lifecycle: startup -> serve -> shutdown -------------------------------


def lifecycle_events(captured: list[dict[str, object]]) -> list[object]:
    phases = {"starting", "authenticated", "ledger_opened", "ready", "stopping", "stopped"}
    return [e["event"] for e in captured if e["event"] in phases]


async def test_startup_serve_shutdown_say_one_line_per_phase_in_order(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    daemon = Daemon(options_for(emulator, tmp_path / "state", (rule(SUPPORT),)))
    trigger = asyncio.Event()
    with capture_logs() as captured:
        serving = asyncio.create_task(daemon.serve(trigger.wait))
        await asyncio.wait_for(daemon.ready.wait(), 10)
        trigger.set()  # the injected shutdown trigger: no signal involved
        await asyncio.wait_for(serving, 10)
    assert lifecycle_events(captured) == [
        "starting",
        "authenticated",
        "ledger_opened",
        "ready",
        "stopping",
        "stopped",
    ]


async def test_a_part_that_crashes_ends_serve_with_its_name(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    daemon = Daemon(options_for(emulator, tmp_path / "state", (rule(SUPPORT),)))
    serving = asyncio.create_task(daemon.serve(asyncio.Event().wait))
    await asyncio.wait_for(daemon.ready.wait(), 10)

    def broken() -> list[str]:
        raise RuntimeError("a bug in the reconciler")

    daemon.parts.reconciler._queue_ids = broken  # type: ignore[assignment]
    daemon.parts.reconciler.request("test")
    with pytest.raises(BackgroundJobFailed, match="reconciler crashed: RuntimeError"):
        await asyncio.wait_for(serving, 10)


async def test_a_shutdown_before_the_socket_comes_up_closes_cleanly(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    emulator.fault(
        kind="http", method="POST", path="/api/v2/notifications/channels", status=503, count=1000
    )
    daemon = Daemon(options_for(emulator, tmp_path / "state", (rule(SUPPORT),)))
    trigger = asyncio.Event()
    with capture_logs() as captured:
        serving = asyncio.create_task(daemon.serve(trigger.wait))
        await eventually(
            lambda: any(e["event"] == "channel_connect_failed" for e in captured) or None,
            what="the socket failing to come up",
            blocking=False,
        )
        trigger.set()
        await asyncio.wait_for(serving, 10)
    assert lifecycle_events(captured) == [
        "starting",
        "authenticated",
        "ledger_opened",
        "stopping",
        "stopped",
    ]
    assert not daemon.ready.is_set()
