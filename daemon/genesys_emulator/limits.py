"""Per-token rate limit: a fixed window, ``inin-ratelimit-*`` headers on every response."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Window:
    started_at: float
    count: int = 0


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    count: int
    limit: int
    reset_s: int

    def headers(self) -> dict[str, str]:
        return {
            "inin-ratelimit-count": str(self.count),
            "inin-ratelimit-allowed": str(self.limit),
            "inin-ratelimit-reset": str(self.reset_s),
        }


class RateLimiter:
    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self.windows: dict[str, Window] = {}

    def hit(self, token: str, now: float) -> Verdict:
        window = self.windows.get(token)
        if window is None or now - window.started_at >= self.window_s:
            window = self.windows[token] = Window(started_at=now)
        window.count += 1
        reset = max(1, math.ceil(window.started_at + self.window_s - now))
        allowed = window.count <= self.limit
        return Verdict(allowed, min(window.count, self.limit + 1), self.limit, reset)

    def clear(self) -> None:
        self.windows.clear()
