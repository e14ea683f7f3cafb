"""Stray keys real payloads carry and the SDK models do not declare (GENESYS.md §9 and §10).

With option ``capture_stray_keys`` the emulator adds them, so clients prove they ignore unknown
fields: ``additionalProperties: {}`` on participants and communications, every media array present
(empty where unused), and on media-specific REST participants ``queueName`` and ``userUri``.
Payloads with these keys no longer conform strictly to the SDK models; without the option nothing
changes.
"""

from __future__ import annotations

from typing import Any

from .org import OrgDefinition

MEDIA_ARRAYS = ("calls", "callbacks", "chats", "emails", "messages")


def add_to_conversation(doc: dict[str, Any]) -> dict[str, Any]:
    """An event snapshot or a REST ``Conversation``, with the stray keys added (in place)."""
    for p in doc.get("participants", []):
        p["additionalProperties"] = {}
        for array in MEDIA_ARRAYS:
            for communication in p.setdefault(array, []):
                communication["additionalProperties"] = {}
    return doc


def add_to_media_conversation(doc: dict[str, Any], org: OrgDefinition) -> dict[str, Any]:
    """A media-specific REST conversation with ``queueName``/``userUri`` (in place)."""
    for p in doc.get("participants", []):
        p["additionalProperties"] = {}
        queue = org.queues.get((p.get("queue") or {}).get("id", ""))
        if queue is not None:
            p["queueName"] = queue.name
        if "user" in p:
            p["userUri"] = f"/api/v2/users/{p['user']['id']}"
    return doc
