"""``python -m bench.emulator_scale [--queues N] [--channels C]``: the emulator at org scale.

Starts the emulator in-process with N generated queues (default 10,000), then times, over real
HTTP on loopback: listing every queue by pages of 500, and a REST ``PUT`` of 1,000 topics on each
of C channels (default 10, i.e. 10,000 topics).
Prints one JSON object. A measurement, never an assertion (STYLE.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import urllib.request
from base64 import b64encode
from typing import Any

from genesys_emulator.testing import running_emulator


class Api:
    """A tiny urllib client: client-credentials token, JSON calls."""

    def __init__(self, base_url: str, client_id: str, secret: str) -> None:
        self.base_url = base_url
        basic = b64encode(f"{client_id}:{secret}".encode()).decode()
        headers = {
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        token = self._send("POST", "/oauth/token", b"grant_type=client_credentials", headers)
        self.bearer = {"Authorization": f"Bearer {token['access_token']}"}

    def _send(self, method: str, path: str, data: bytes | None, headers: dict[str, str]) -> Any:
        request = urllib.request.Request(self.base_url + path, data, headers, method=method)
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b"null")

    def call(self, method: str, path: str, body: object = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {**self.bearer, "Content-Type": "application/json"}
        return self._send(method, path, data, headers)


def timed(action: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return (time.perf_counter() - start) * 1000, result


def list_all(api: Api) -> tuple[list[float], list[dict[str, Any]]]:
    """Every queue, page by page; the time of each page."""
    pages, queues, path = [], [], "/api/v2/routing/queues?pageSize=500&pageNumber=1"
    while path:
        ms, page = timed(lambda p=path: api.call("GET", p))
        pages.append(ms)
        queues += page["entities"]
        path = page.get("nextUri")
    return pages, queues


def measure(queue_count: int, channel_count: int) -> dict[str, Any]:
    options = {"extra_queues": queue_count, "rate_limit_per_window": 10**9}
    with running_emulator("demo", **options) as emu:
        api = Api(emu.base_url, emu.client_id, emu.client_secret)
        page_ms, queues = list_all(api)
        topics = [f"v2.routing.queues.{q['id']}.conversations" for q in queues]
        put_ms = []
        for n in range(channel_count):
            channel = api.call("POST", "/api/v2/notifications/channels")
            body = [{"id": t} for t in topics[n * 1000 : (n + 1) * 1000]]
            path = f"/api/v2/notifications/channels/{channel['id']}/subscriptions"
            ms, _ = timed(lambda p=path, b=body: api.call("PUT", p, b))
            put_ms.append(ms)
        return {
            "queues": len(queues),
            "list_pages": len(page_ms),
            "list_page_ms_median": round(statistics.median(page_ms), 1),
            "list_page_ms_max": round(max(page_ms), 1),
            "list_all_ms": round(sum(page_ms), 1),
            "channels": channel_count,
            "topics_per_channel": 1000,
            "put_1000_topics_ms_median": round(statistics.median(put_ms), 1),
            "put_1000_topics_ms_max": round(max(put_ms), 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queues", type=int, default=10_000)
    parser.add_argument("--channels", type=int, default=10)
    args = parser.parse_args()
    print(json.dumps(measure(args.queues, args.channels)))


if __name__ == "__main__":
    main()
