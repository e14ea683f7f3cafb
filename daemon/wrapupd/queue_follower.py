"""Following the watched queues: queues created, renamed or removed reach the code table at its
refresh (selectors); their topics are subscribed and unsubscribed without a restart, and a sweep
finds what happened on a new queue before its topic was on a channel."""

from __future__ import annotations

import structlog

from wrapupd.clock import Clock
from wrapupd.code_cache import CodeCache
from wrapupd.reconciler import Reconciler
from wrapupd.subscriber import Subscriber

log = structlog.get_logger("wrapupd.service")

CHANNELS_FULL = "every channel carries 1,000 topics: restart wrapupd to open another channel"


async def follow_queue_changes(
    codes: CodeCache, subscriber: Subscriber, reconciler: Reconciler, clock: Clock, every: float
) -> None:
    """Every ``every`` seconds, until cancelled: compare the watched queues with the last ones."""
    watched = codes.queue_ids
    while True:
        await clock.sleep(every)
        if codes.queue_ids == watched:
            continue
        added, removed = codes.queue_ids - watched, watched - codes.queue_ids
        watched = codes.queue_ids
        unplaced = subscriber.follow_queues()
        log.info("watched_queues_changed", added=len(added), removed=len(removed))
        if unplaced:
            log.warning("channels_full", topics_waiting=len(unplaced), hint=CHANNELS_FULL)
        reconciler.request("queues_changed")
