"""An emulator child process (``python -m genesys_emulator``) and its control plane over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Emulator:
    """A running emulator: its base URL, its main OAuth client, and its control plane."""

    process: subprocess.Popen[str]
    base_url: str
    client_id: str
    client_secret: str

    def control(self, method: str, path: str, body: object | None = None) -> Any:
        """One control-plane call (``/_emulator/...``); returns the decoded JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b"{}")

    async def acontrol(self, method: str, path: str, body: object | None = None) -> Any:
        """:meth:`control` from a coroutine, without blocking the event loop."""
        return await asyncio.to_thread(self.control, method, path, body)

    def queue_ids(self) -> dict[str, str]:
        """Queue name -> id, from the control plane's view of the org."""
        return {q["name"]: q["id"] for q in self.control("GET", "/_emulator/org")["queues"]}

    async def truth_and_calls(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The ground truth of every participant, and the call log."""
        truth = (await self.acontrol("GET", "/_emulator/ground-truth"))["participants"]
        calls = (await self.acontrol("GET", "/_emulator/calls"))["calls"]
        return truth, calls


@contextlib.contextmanager
def emulator_process(org: str | Path = "demo", extra: Sequence[str] = ()) -> Iterator[Emulator]:
    """Start ``python -m genesys_emulator`` on a free loopback port and read its ready line."""
    command = [sys.executable, "-m", "genesys_emulator", "--port", "0", "--org", str(org)]
    command += [*extra, "--log-level", "WARNING"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        line = process.stdout.readline() if process.stdout is not None else ""
        if not line:
            raise RuntimeError(
                f"the emulator exited before it was ready (exit code {process.wait(5)})"
            )
        ready = json.loads(line)
        yield Emulator(process, ready["base_url"], ready["client_id"], ready["client_secret"])
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
