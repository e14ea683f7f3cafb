"""An in-process emulator for tests: its own thread and event loop, port 0, a urllib client."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .options import Options
from .server import ServerHandle, start_server
from .state import Emulator


class RunningEmulator:
    """Runs the server in a daemon thread; control-plane calls go over HTTP like any tool's."""

    base_url: str
    client_id: str
    client_secret: str

    def __init__(self, org: str = "demo", **options: Any) -> None:
        self._options = Options().with_changes({"org": org, **options})
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="genesys-emulator", daemon=True)
        self.emulator: Emulator | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> RunningEmulator:
        self._thread.start()
        self._ready.wait(timeout=10)
        if self._error is not None or self.emulator is None:
            raise RuntimeError("emulator failed to start") from self._error
        client = self.emulator.org.main_client
        self.client_id, self.client_secret = client.id, client.secret
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # surfaced to start()
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        self.emulator = Emulator(self._options)
        handle: ServerHandle = await start_server(self.emulator, 0)
        self.base_url = handle.base_url
        self._ready.set()
        await self._stop.wait()
        await handle.stop()

    def stop(self) -> None:
        if self._stop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)

    # --- control plane -----------------------------------------------------------------------

    def control(self, method: str, path: str, json: object | None = None) -> dict[str, Any]:
        """Call ``/_emulator/<path>``; raises ``ControlPlaneError`` on a non-2xx answer."""
        url = self.base_url + (
            path if path.startswith("/_emulator") else "/_emulator/" + path.lstrip("/")
        )
        data = None if json is None else _dumps(json).encode()
        request = urllib.request.Request(url, data=data, method=method.upper())
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return _loads(response.read())
        except urllib.error.HTTPError as exc:
            raise ControlPlaneError(exc.code, _loads(exc.read())) from None

    def reset(self, **options: Any) -> None:
        self.control("POST", "/_emulator/reset", options)

    def ground_truth(self) -> list[dict[str, Any]]:
        return list(self.control("GET", "/_emulator/ground-truth")["participants"])

    def calls(self) -> list[dict[str, Any]]:
        return list(self.control("GET", "/_emulator/calls")["calls"])

    def start_conversation(self, **kw: Any) -> dict[str, Any]:
        return self.control("POST", "/_emulator/conversations", kw)

    def action(self, conversation_id: str, **kw: Any) -> dict[str, Any]:
        return self.control("POST", f"/_emulator/conversations/{conversation_id}/actions", kw)

    def fault(self, **kw: Any) -> dict[str, Any]:
        return self.control("POST", "/_emulator/faults", kw)

    def traffic(self, **kw: Any) -> dict[str, Any]:
        return self.control("POST", "/_emulator/traffic", kw)

    def traffic_progress(self, traffic_id: str) -> dict[str, Any]:
        return self.control("GET", f"/_emulator/traffic/{traffic_id}")


class ControlPlaneError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body}")
        self.status, self.body = status, body


def _dumps(value: object) -> str:
    return json.dumps(value)


def _loads(raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    value = json.loads(raw)
    return value if isinstance(value, dict) else {"value": value}


@contextmanager
def running_emulator(org: str = "demo", **options: Any) -> Iterator[RunningEmulator]:
    handle = RunningEmulator(org, **options).start()
    try:
        yield handle
    finally:
        handle.stop()
