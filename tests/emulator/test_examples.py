"""The integrator examples in examples/emulator/ run against the emulator as documented."""

from __future__ import annotations

import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from genesys_emulator.testing import RunningEmulator

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "emulator"
LINE_TIMEOUT_S = 20.0


class Example:
    """An example running as a child process; its stdout lines read with a timeout."""

    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next_line(self) -> str:
        line = self.lines.get(timeout=LINE_TIMEOUT_S)
        if line is None:
            stderr = self.process.stderr.read() if self.process.stderr else ""
            raise AssertionError(f"the example ended early: {stderr}")
        return line

    def finish(self) -> int:
        return self.process.wait(timeout=LINE_TIMEOUT_S)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def node_command() -> list[str]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    probe = subprocess.run(
        [node, "-e", "process.exit(typeof WebSocket === 'undefined' ? 1 : 0)"], check=False
    )
    return [node] if probe.returncode == 0 else [node, "--experimental-websocket"]


@pytest.fixture(params=["python", "javascript"])
def example(request: pytest.FixtureRequest, emulator: RunningEmulator) -> Iterator[Example]:
    args = [emulator.base_url, emulator.client_id, emulator.client_secret, "Support"]
    if request.param == "python":
        command = [sys.executable, str(EXAMPLES / "watch_queue.py"), *args, "--events", "2"]
    else:
        command = [*node_command(), str(EXAMPLES / "watch_queue.mjs"), *args, "2"]
    running = Example(command)
    yield running
    running.stop()


def test_the_example_subscribes_over_the_socket_and_prints_events(
    emulator: RunningEmulator, example: Example
) -> None:
    assert example.next_line().startswith("subscribed v2.routing.queues.")
    started = emulator.start_conversation(queue="Support", outcome="nothing", talk_s=0.05)
    lines = [example.next_line(), example.next_line()]
    assert all(line.startswith(f"event {started['conversationId']} ") for line in lines)
    assert example.finish() == 0
    rest_calls = {c["path"] for c in emulator.calls()}
    assert "/api/v2/notifications/channels/{id}/subscriptions" not in rest_calls
