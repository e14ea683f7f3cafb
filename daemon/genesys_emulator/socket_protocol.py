"""The notification socket's own protocol: what a client may send and the control frames answered.

Client messages (text frames, JSON objects):
    {"message": "ping"}
    {"message": "subscribe" | "unsubscribe", "topics": ["v2...."], "correlationId": "…"}

Control frames carry no ``topicName``: ``result`` is the HTTP-like status as a string. The shapes
below are the only place they are spelled, so a detail public material does not pin down (see
docs/EMULATOR.md) is changed here and nowhere else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

PING = "ping"
SUBSCRIBE = "subscribe"
UNSUBSCRIBE = "unsubscribe"
STATUS_DONE = {SUBSCRIBE: "subscribed", UNSUBSCRIBE: "unsubscribed"}
# "failure": the service refused a well-formed request; "error": the request itself was wrong.
REFUSED, MALFORMED = "failure", "error"


@dataclass(frozen=True)
class ClientMessage:
    """A well-formed client message."""

    kind: str
    topics: tuple[str, ...] = ()
    correlation_id: str | None = None


@dataclass(frozen=True)
class MalformedMessage(Exception):
    """A text frame the service cannot understand; answered with a ``status: error`` frame."""

    reason: str
    correlation_id: str | None = None


def parse(text: str) -> ClientMessage:
    """One client text frame -> a message; raises MalformedMessage."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise MalformedMessage("The message is not valid JSON.") from None
    if not isinstance(data, dict):
        raise MalformedMessage("The message must be a JSON object.")
    correlation_id = data.get("correlationId")
    if correlation_id is not None and not isinstance(correlation_id, str):
        raise MalformedMessage("correlationId must be a string.")
    kind = data.get("message")
    if kind == PING:
        return ClientMessage(PING, correlation_id=correlation_id)
    if kind not in (SUBSCRIBE, UNSUBSCRIBE):
        raise MalformedMessage(
            "message must be one of ping, subscribe, unsubscribe.", correlation_id
        )
    topics = data.get("topics")
    if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
        raise MalformedMessage("topics must be a list of topic names.", correlation_id)
    return ClientMessage(kind, tuple(topics), correlation_id)


def _frame(result: str, correlation_id: str | None, **fields: Any) -> str:
    body: dict[str, Any] = {"result": result, **fields}
    if correlation_id is not None:
        body["correlationId"] = correlation_id
    return json.dumps(body)


def done(message: ClientMessage) -> str:
    """The acknowledgement of a subscribe or unsubscribe."""
    return _frame("200", message.correlation_id, status=STATUS_DONE[message.kind])


def refused(message: str, correlation_id: str | None) -> str:
    """A well-formed subscribe the rules refuse (bad topic, not allowed, too many topics)."""
    return _frame("400", correlation_id, status=REFUSED, message=message)


def malformed(problem: MalformedMessage) -> str:
    return _frame("400", problem.correlation_id, status=MALFORMED, message=problem.reason)


def channel_gone(reason: str) -> str:
    """Sent just before the server closes the socket of a channel that no longer exists."""
    return _frame("404", None, message=f"The channel no longer exists: {reason}.")
