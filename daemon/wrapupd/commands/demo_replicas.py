"""``wrapupd demo --replicas N --ledger postgresql://…``: N daemons sharing one PostgreSQL ledger,
each with its own channel and status page, dividing the work by leases (docs/OPERATIONS.md)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

from wrapupd.errors import ConfigError
from wrapupd.ledger import is_postgres_url
from wrapupd.options import DaemonOptions
from wrapupd.parts import Parts
from wrapupd.service import Daemon

PASSWORD_VARIABLE = "WRAPUPD_LEDGER__PASSWORD"


def replica_options(base: DaemonOptions, replicas: int, ledger: str | None) -> list[DaemonOptions]:
    """One set of options per replica: the shared ledger, and a name of its own."""
    if replicas <= 1 and ledger is None:
        return [base]
    if ledger is None or not is_postgres_url(ledger):
        raise ConfigError(
            "replicas share a PostgreSQL ledger: give --ledger postgresql://user@host:port/db"
            f" (the password in {PASSWORD_VARIABLE})"
        )
    shared = replace(base, ledger_url=ledger, ledger_password=os.environ.get(PASSWORD_VARIABLE))
    return [
        replace(shared, replicas=replace(shared.replicas, name=f"demo-{n}"))
        for n in range(1, max(1, replicas) + 1)
    ]


@contextlib.asynccontextmanager
async def running_replicas(
    options: list[DaemonOptions], on_new_token: Callable[[str], None]
) -> AsyncIterator[list[tuple[Daemon, Parts]]]:
    """Every replica serving (ready) while the block runs, all shut down after it."""
    async with contextlib.AsyncExitStack() as stack:
        started = []
        for one in options:
            daemon = Daemon(one, on_new_token=on_new_token)
            started.append((daemon, await stack.enter_async_context(daemon.running())))
        yield started


async def applied_by_replica(replicas: list[tuple[Daemon, Parts]]) -> dict[str, int]:
    """How many codes each replica wrote (its own counter, not the shared ledger's), once its
    outcomes are in the ledger (an outcome is counted when the ledger keeps it)."""
    shares = {}
    for daemon, parts in replicas:
        await parts.ledger.flush()
        name = daemon.options.replicas.name or parts.ledger.owner
        value = parts.metrics.registry.get_sample_value(
            "wrapupd_outcomes_total", {"outcome": "applied"}
        )
        shares[name] = int(value or 0)
    return shares
