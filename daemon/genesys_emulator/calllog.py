"""The call log: every API request counted by method, route template and status."""

from __future__ import annotations

from collections import Counter
from typing import Any


class CallLog:
    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, int]] = Counter()

    def record(self, method: str, template: str, status: int) -> None:
        self.counts[(method, template, status)] += 1

    def snapshot(self) -> dict[str, Any]:
        calls = [
            {"method": m, "path": p, "status": s, "count": n}
            for (m, p, s), n in sorted(self.counts.items())
        ]
        return {"calls": calls, "total": sum(self.counts.values())}
