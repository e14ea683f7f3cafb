"""Upkeep the service runs beside the parts: renew the token before it expires (the notification
channel dies with it), and forget finished work items after the retention period."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from wrapupd.clock import Clock
from wrapupd.errors import PlatformError

log = structlog.get_logger("wrapupd.service")

PURGE_INTERVAL_SECONDS = 3600.0


class TokenOwner(Protocol):
    """The platform client, as far as token renewal goes."""

    @property
    def token_expires_at(self) -> datetime | None: ...

    async def renew_token(self) -> None: ...


class Purgeable(Protocol):
    """The ledger, as far as retention goes."""

    async def purge(self, older_than: datetime) -> int: ...


async def keep_token_fresh(
    client: TokenOwner,
    clock: Clock,
    margin: float,
    *,
    retry_seconds: float,
    on_failure: Callable[[PlatformError], None],
    on_renewed: Callable[[], None],
) -> None:
    """Renew ``margin`` seconds before expiry (at most half the lifetime early), even when no
    API call is due, until cancelled; a failed renewal is reported and retried soon."""
    while True:
        expires = client.token_expires_at
        if expires is None:
            await clock.sleep(retry_seconds)
            continue
        lifetime_left = (expires - clock.now()).total_seconds()
        await clock.sleep(max(0.0, lifetime_left - min(margin, lifetime_left / 2)))
        try:
            await client.renew_token()
        except PlatformError as exc:
            on_failure(exc)
            await clock.sleep(retry_seconds)
            continue
        on_renewed()
        renewed = client.token_expires_at
        log.info("token_renewed", expires_at=renewed.isoformat() if renewed else None)


async def purge_once(ledger: Purgeable, clock: Clock, retention_days: float) -> int:
    """Forget items finished more than ``retention_days`` ago; ``retention_days = 0`` keeps all."""
    if retention_days <= 0:
        return 0
    return await ledger.purge(clock.now() - timedelta(days=retention_days))


async def purge_forever(ledger: Purgeable, clock: Clock, retention_days: float) -> None:
    """Every hour, apply the retention period (see :func:`purge_once`), until cancelled."""
    while True:
        await clock.sleep(PURGE_INTERVAL_SECONDS)
        await purge_once(ledger, clock, retention_days)
