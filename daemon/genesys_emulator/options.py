"""Run-time options: every interval is a float in seconds so tests can use milliseconds."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from .errors import ControlError


@dataclass(frozen=True)
class Options:
    org: str = "demo"
    token_lifetime_s: float = 86400.0
    heartbeat_interval_s: float = 30.0
    channel_lifetime_s: float = 86400.0
    socket_closing_lead_s: float = 60.0
    rate_limit_per_window: int = 300
    rate_window_s: float = 60.0
    max_channels_per_client: int = 20
    max_topics_per_channel: int = 1000
    require_user_context: bool = False
    user_context_status: int = 400
    wrapup_own_participant_only: bool = False
    channel_gone_frames: bool = True
    overwrite_allowed: bool = False
    analytics_capture_shapes: bool = False
    capture_stray_keys: bool = False
    idle_close_s: float = 0.0
    sweep_interval_s: float = 0.02
    refresh_token_lifetime_s: float = 0.0
    keep_refresh_tokens: bool = False
    login_user: str = ""  # who GET /oauth/authorize signs in: a user id or name ("" = the org's)
    extra_queues: int = 0

    def with_changes(self, changes: dict[str, Any]) -> Options:
        return replace(self, **validated(changes))


_NAMES = {f.name: f for f in fields(Options)}
ZERO_MEANS_OFF = frozenset({"idle_close_s", "refresh_token_lifetime_s", "extra_queues"})


def validated(changes: dict[str, Any]) -> dict[str, Any]:
    """Type-check control-plane option changes; raises ControlError with a clear message."""
    if not isinstance(changes, dict):
        raise ControlError("options must be a JSON object")
    out: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in _NAMES:
            raise ControlError(f"unknown option {name!r}; known: {sorted(_NAMES)}")
        out[name] = _coerce(name, _NAMES[name].type, value)
    if out.get("user_context_status", 400) not in (400, 403):
        raise ControlError("option user_context_status must be 400 or 403")
    return out


def _coerce(name: str, kind: object, value: Any) -> Any:
    if kind in ("str", str):
        if not isinstance(value, str) or not value:
            raise ControlError(f"option {name} must be a non-empty string")
        return value
    if kind in ("bool", bool):
        if not isinstance(value, bool):
            raise ControlError(f"option {name} must be true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ControlError(f"option {name} must be a number")
    if value < 0 or (value == 0 and name not in ZERO_MEANS_OFF):
        raise ControlError(f"option {name} must be a positive number")
    return int(value) if kind in ("int", int) else float(value)
