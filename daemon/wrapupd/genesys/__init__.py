"""The Genesys Cloud adapter: the only code in wrapupd that imports ``PureCloudPlatformClientV2``.

Every SDK import goes through :mod:`wrapupd.genesys.sdk`, which loads only the SDK modules wrapupd
uses (the whole package costs ~2 s and ~190 MB). :class:`GenesysClient` and :class:`Timeouts` are
still loaded on first use; the frame parser (:mod:`wrapupd.genesys.notifications`) never needs the SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wrapupd.genesys.notifications import parse_frame, queue_id_from_topic, queue_topic

if TYPE_CHECKING:
    from wrapupd.genesys.client import GenesysClient, Timeouts

__all__ = ["GenesysClient", "Timeouts", "parse_frame", "queue_id_from_topic", "queue_topic"]


def __getattr__(name: str) -> Any:
    if name in ("GenesysClient", "Timeouts"):
        from wrapupd.genesys import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
