"""Topics after the watched queues change at a code refresh: kept ones stay on their channel, removed
ones go, new ones fill the first channel with room; what fits nowhere waits for a restart."""

from __future__ import annotations

from wrapupd.channels import reassign_topics
from wrapupd.genesys.notifications import queue_topic


def topics(*queue_ids: str) -> list[str]:
    return [queue_topic(q) for q in queue_ids]


def test_kept_topics_stay_on_their_shard_and_new_ones_fill_the_first_with_room() -> None:
    shards = [topics("a", "b"), topics("c")]
    result, left = reassign_topics(shards, ["a", "c", "d", "e"], per_channel=2)
    assert result == [topics("a", "d"), topics("c", "e")]
    assert left == []


def test_what_fits_nowhere_is_returned() -> None:
    result, left = reassign_topics([topics("a", "b")], ["a", "b", "c"], per_channel=2)
    assert result == [topics("a", "b")]
    assert left == topics("c")
