"""What both baselines share: the official SDK pointed at the emulator, run in a worker thread.

The baselines use ``PureCloudPlatformClientV2`` directly, as the public tutorials do, and run in
their own thread with blocking calls (the tutorial style), so they never touch the bench's loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import urllib3
from PureCloudPlatformClientV2 import ApiClient, RoutingApi

from bench.harness import Emulator


def sdk_client(emu: Emulator, *, silent_retries: bool) -> Any:
    """An authenticated ``ApiClient``; ``silent_retries=False`` turns off the SDK's urllib3 retries.

    The SDK's default HTTP client retries a 429 (and 413/503) carrying ``Retry-After`` up to ten
    times, every method including PATCH, without telling the caller (its urllib3 ``Retry()``).
    """
    api = ApiClient(host=emu.base_url)
    if not silent_retries:
        rest = api.get_http_client().rest_client
        rest.pool_manager = urllib3.PoolManager(num_pools=4, maxsize=4, retries=False)
    api.get_client_credentials_token(emu.client_id, emu.client_secret)
    return api


def queue_ids_by_name(api: Any, names: list[str]) -> dict[str, str]:
    """The tutorial way: one ``GET /api/v2/routing/queues?name=`` per configured queue."""
    routing = RoutingApi(api)
    found: dict[str, str] = {}
    for name in names:
        listing = routing.get_routing_queues(name=name, page_size=25)
        for queue in listing.entities or []:
            if queue.name == name:
                found[name] = queue.id
    return found


def needs_code(p: dict[str, Any], watched: set[str]) -> bool:
    """The platform's rule, on the raw event dict: an agent on a watched queue in ACW without a code."""
    if p.get("purpose") != "agent" or p.get("queueId") not in watched:
        return False
    if not p.get("startAcwTime") or p.get("endAcwTime") or (p.get("wrapup") or {}).get("code"):
        return False
    return any(
        (c.get("afterCallWork") or {}).get("state") == "pending"
        for media in ("calls", "callbacks", "chats", "emails", "messages")
        for c in p.get(media) or []
    )


class ThreadedContender:
    """Runs ``self.body(stop_event)`` in a daemon thread; ``start`` returns once it says ready."""

    name = "baseline"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.stats: dict[str, int] = {}

    def body(self, emu: Emulator, watched: list[tuple[str, str]]) -> None:
        raise NotImplementedError

    def _run(self, emu: Emulator, watched: list[tuple[str, str]]) -> None:
        try:
            self.body(emu, watched)
        except BaseException as exc:  # report, never hang the harness
            self.error = exc
            self._ready.set()

    async def start(self, emu: Emulator, setup: Any) -> None:
        self._thread = threading.Thread(
            target=self._run, args=(emu, list(setup.watched)), name=self.name, daemon=True
        )
        self._thread.start()
        await asyncio.to_thread(self._ready.wait, 60)
        if self.error is not None:
            raise RuntimeError(f"{self.name} failed to start: {self.error!r}")

    async def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 15)

    def count(self, what: str, n: int = 1) -> None:
        self.stats[what] = self.stats.get(what, 0) + n

    def sleep_or_stop(self, seconds: float) -> bool:
        """Sleep; True when asked to stop meanwhile."""
        return self._stop.wait(seconds)


Call = Callable[[], Any]
