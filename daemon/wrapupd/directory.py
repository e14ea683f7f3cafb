"""The platform's routing listings as queue resolution reads them: paced by the shared rate
limiter, a 429 waited out (start-up pauses, it does not fail)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from wrapupd.errors import Forbidden, PlatformError
from wrapupd.events import Queue, WrapupCode
from wrapupd.ratelimit import Priority, RateLimiter
from wrapupd.retry import Retry, classify

_MAX_RATE_LIMITED = 20
T = TypeVar("T")


class QueueDirectory(Protocol):
    """The platform's routing listings resolution reads (``GenesysClient`` in production)."""

    async def list_queues(self, name: str | None = None) -> list[Queue]: ...
    async def list_queue_wrapup_codes(self, queue_id: str) -> list[WrapupCode]: ...
    async def list_wrapup_codes(self) -> list[WrapupCode]: ...


def _platform_wait(error: PlatformError) -> float | None:
    """The wait the platform asked for (a 429's Retry-After), or None for any other error."""
    verdict = classify(error)
    return verdict.after if isinstance(verdict, Retry) else None


class Directory:
    """The directory calls of resolution, paced by the shared rate limiter; a 429 pauses and retries
    instead of failing start-up."""

    def __init__(
        self,
        directory: QueueDirectory,
        limiter: RateLimiter | None,
        priority: Priority = Priority.LIVE,
    ) -> None:
        self._directory = directory
        self._limiter = limiter
        self._priority = priority

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        for _ in range(_MAX_RATE_LIMITED):
            if self._limiter is not None:
                await self._limiter.acquire(self._priority)
            try:
                return await fn()
            except PlatformError as exc:
                wait = _platform_wait(exc)
                if self._limiter is None or wait is None:
                    raise
                self._limiter.pause_for(wait)
        return await fn()

    async def queues(self) -> list[Queue]:
        """Every queue the OAuth client can see, in one listing."""
        return await self._call(lambda: self._directory.list_queues())

    async def queue_codes(self, queue_id: str) -> list[WrapupCode]:
        """The wrap-up codes assigned to one queue."""
        return await self._call(lambda: self._directory.list_queue_wrapup_codes(queue_id))

    async def all_codes(self) -> list[WrapupCode] | None:
        """Every code of the org, or None when the role may not list them (per-queue lookups then)."""
        try:
            return await self._call(lambda: self._directory.list_wrapup_codes())
        except Forbidden:
            return None
