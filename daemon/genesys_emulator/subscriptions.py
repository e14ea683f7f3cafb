"""Topic subscription rules: one list per channel, the same rules for REST and the socket.

REST ``PUT``/``POST …/subscriptions`` and the socket's ``{"message":"subscribe"}`` both go
through :func:`subscribe`; refusals are :class:`SubscriptionRefused`, which each door renders in
its own shape (an ``ErrorBody`` or a ``result`` 400 frame).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .auth import Caller
from .channels import Channel
from .org import OrgDefinition

QUEUE_TOPIC = re.compile(r"^v2\.routing\.queues\.([0-9a-fA-F-]{36})\.conversations$")
# Permission the emulator requires to subscribe to a queue's conversations topic.
QUEUE_TOPIC_PERMISSION = "routing:queue:view"


@dataclass(frozen=True)
class TopicVerdict:
    """One requested topic, permitted or rejected (kind ``invalid`` or ``permission``)."""

    topic: str
    permitted: bool
    reason: str = ""
    kind: str = ""
    missing: tuple[str, ...] = ()

    def listing_entry(self) -> dict[str, Any]:
        """The ``ChannelTopic`` entry of an ``?ignoreErrors=true`` answer."""
        if self.permitted:
            return {"id": self.topic, "state": "Permitted"}
        return {
            "id": self.topic,
            "state": "Rejected",
            "rejectionReason": self.reason,
            "missingPermissions": list(self.missing),
        }


@dataclass
class SubscriptionRefused(Exception):
    """The whole request is refused: 400 (bad topic, too many) or 403 (not allowed)."""

    status: int
    message: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def code(self) -> str:
        return "not.authorized" if self.status == 403 else "bad.request"


def evaluate(topic: str, caller: Caller, org: OrgDefinition) -> TopicVerdict:
    """May ``caller`` subscribe to ``topic`` in ``org``?"""
    match = QUEUE_TOPIC.match(topic)
    if match is None:
        return TopicVerdict(topic, False, "Topic is not valid or is not supported.", "invalid")
    if QUEUE_TOPIC_PERMISSION not in caller.permissions:
        return TopicVerdict(
            topic, False, "Missing permissions.", "permission", (QUEUE_TOPIC_PERMISSION,)
        )
    queue_id = match.group(1)
    if queue_id not in org.queues:
        return TopicVerdict(topic, False, f"Queue {queue_id} was not found.", "invalid")
    if not caller.may_subscribe(queue_id):
        return TopicVerdict(topic, False, f"Access to queue {queue_id} is denied.", "permission")
    return TopicVerdict(topic, True)


def subscribe(
    channel: Channel,
    requested: list[str],
    caller: Caller,
    org: OrgDefinition,
    *,
    limit: int,
    replace: bool = False,
    strict: bool = True,
) -> list[TopicVerdict]:
    """Add (or with ``replace`` set) the permitted topics; strict: any rejection refuses all."""
    check_topic_count(len(dict.fromkeys(requested)), limit)
    verdicts = [evaluate(t, caller, org) for t in requested]
    if strict:
        refusal = first_refusal(verdicts)
        if refusal is not None:
            raise refusal
    permitted = [v.topic for v in verdicts if v.permitted]
    topics = permitted if replace else channel.topics + permitted
    topics = list(dict.fromkeys(topics))
    check_topic_count(len(topics), limit)
    channel.set_topics(topics)
    return verdicts


def unsubscribe(channel: Channel, topics: list[str]) -> None:
    """Drop these topics from the channel's list; unknown ones are ignored."""
    gone = set(topics)
    channel.set_topics([t for t in channel.topics if t not in gone])


def check_topic_count(count: int, limit: int) -> None:
    if count > limit:
        raise SubscriptionRefused(
            400, f"A channel may subscribe to at most {limit} topics; got {count}."
        )


def first_refusal(verdicts: list[TopicVerdict]) -> SubscriptionRefused | None:
    """The refusal for the first rejected topic: 403 for permission, 400 otherwise."""
    for v in verdicts:
        if not v.permitted:
            message = f"Unable to subscribe to topic {v.topic}: {v.reason}"
            status = 403 if v.kind == "permission" else 400
            return SubscriptionRefused(status, message, {"topic": v.topic})
    return None
