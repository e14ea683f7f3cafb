"""The rows ``wrapupd check`` adds for a deployment's ledger and its channel budget.

The ledger row proves the database answers and its schema is one this wrapupd understands (the
migrations the daemon would run at start are run here). The channel row counts notification
channels: at most 1,000 topics each, at most 20 per OAuth client (the platform evicts the
oldest beyond that), and a channel rollover briefly holds two per shard.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

from wrapupd.channels import MAX_TOPICS_PER_CHANNEL
from wrapupd.errors import LedgerError, LedgerUnavailable
from wrapupd.ledger import SCHEMA_VERSION, ledger_path, open_queries, redact_url
from wrapupd.options import DaemonOptions

CHANNELS_PER_CLIENT = 20
ASSUMED_SHARED_REPLICAS = 2  # a shared ledger means replicas; two is the smallest such deployment


def ledger_status(options: DaemonOptions) -> tuple[str, str]:
    """Where the ledger the daemon would open is, and its status (``ok: …`` or ``problem: …``)."""
    if options.ledger_url is not None:
        return redact_url(options.ledger_url), _open_and_close(options.ledger_url, options)
    path = ledger_path(options.state_dir)
    if not Path(path).is_file():
        return str(path), "ok: created at the first start"
    return str(path), _open_and_close(path, options)


def _open_and_close(location: Path | str, options: DaemonOptions) -> str:
    try:
        open_queries(location, password=options.ledger_password).close()
    except (LedgerError, LedgerUnavailable) as exc:
        return f"problem: {exc}"
    return f"ok: schema version {SCHEMA_VERSION}"


async def ledger_row(options: DaemonOptions) -> tuple[str, str, bool]:
    """:func:`ledger_status` off the event loop (a database may take seconds to answer)."""
    where, status = await asyncio.to_thread(ledger_status, options)
    return where, status, status.startswith("ok")


def channel_budget(queues: int, *, shared: bool) -> tuple[str, bool]:
    """How many channels the deployment needs of the client's 20; a warning from half of them.

    Not ok past the limit: the platform would evict channels, and with them events."""
    per_replica = max(1, math.ceil(queues / MAX_TOPICS_PER_CHANNEL))
    replicas = ASSUMED_SHARED_REPLICAS if shared else 1
    steady = per_replica * replicas
    peak = 2 * steady  # a rollover opens the new channel before the old one closes
    text = (
        f"{per_replica} per replica x {replicas} replica(s) = {steady}, {peak} during a rollover,"
        f" of {CHANNELS_PER_CLIENT} per OAuth client"
    )
    if steady > CHANNELS_PER_CLIENT:
        return f"problem: {text}; use another OAuth client or fewer queues per deployment", False
    if peak > CHANNELS_PER_CLIENT:
        return f"warning: {text}; near the limit (another tool on this client evicts ours)", True
    return f"ok: {text}", True
