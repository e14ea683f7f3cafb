"""The daemon's options: every setting as a plain value, the only thing the service is given.

The settings produce them for ``wrapupd run`` (:meth:`wrapupd.settings.Settings.daemon_options`);
:func:`local_options` builds them for a daemon against a local emulator (``wrapupd demo``, the tests,
the benchmarks), so there is one way to make them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from wrapupd.applier import ApplierConfig
from wrapupd.events import QueuePolicy
from wrapupd.ledger import ledger_path
from wrapupd.reconciler import ReconcilerConfig
from wrapupd.replicas import ReplicaConfig
from wrapupd.subscriber import SubscriberConfig

DEFAULT_REDIRECT_URI = "http://127.0.0.1:8765/callback"
REFRESH_TOKEN_FILE_NAME = "refresh_token"  # in the state directory unless configured
GrantKind = Literal["client_credentials", "authorization_code"]


@dataclass(frozen=True, slots=True)
class GrantOptions:
    """How the daemon gets access tokens: the OAuth client's own credentials, or the refresh token
    of an integration user signed in once with ``wrapupd login`` (kept in ``refresh_token_file``;
    ``refresh_token_seed`` is a read-only first token, such as a systemd credential)."""

    kind: GrantKind = "client_credentials"
    redirect_uri: str = DEFAULT_REDIRECT_URI
    refresh_token_file: Path | None = None
    refresh_token_seed: Path | None = None


@dataclass(frozen=True, slots=True)
class DaemonOptions:
    """Everything the daemon needs, as plain values."""

    api_host: str
    client_id: str
    client_secret: str = field(repr=False)
    policies: tuple[QueuePolicy, ...]
    state_dir: Path
    listen: tuple[str, int] | None = ("127.0.0.1", 9464)
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    budget_per_minute: float = 270.0
    rate_limit_per_minute: float = 300.0
    token_renew_margin: float = 300.0
    token_retry_seconds: float = 5.0  # after a failed renewal (a new login is noticed this fast)
    code_refresh_seconds: float = 300.0
    verify_codes_at_start_max: int = 50
    drain_seconds: float = 20.0
    retention_days: float = 14.0
    redrive_poll_seconds: float = 5.0
    subscriber: SubscriberConfig = field(default_factory=SubscriberConfig)
    applier: ApplierConfig = field(default_factory=ApplierConfig)
    reconciler: ReconcilerConfig = field(default_factory=ReconcilerConfig)
    grant: GrantOptions = field(default_factory=GrantOptions)
    ledger_url: str | None = None
    ledger_password: str | None = field(default=None, repr=False)
    replicas: ReplicaConfig = field(default_factory=ReplicaConfig)

    @property
    def dry_run(self) -> bool:
        """Detect and log, never write (the applier's setting: there is only one)."""
        return self.applier.dry_run

    @property
    def ledger_location(self) -> Path | str:
        """Where the daemon and ``wrapupd ledger`` find the ledger: its file in the state directory."""
        return ledger_path(self.state_dir)


def local_options(
    *,
    api_host: str,
    client_id: str,
    client_secret: str,
    policies: Iterable[QueuePolicy],
    state_dir: Path,
    unit: float | None = None,
    **changes: Any,
) -> DaemonOptions:
    """Options for a daemon against a local emulator: no status page, the given credentials.

    Without ``unit`` the daemon's own defaults hold (the benchmarks measure wrapupd as shipped);
    with it every interval is a small multiple of ``unit`` seconds, so reconnects, retries and
    drains play out in milliseconds. ``changes`` override any field.
    """
    options = DaemonOptions(
        api_host=api_host,
        client_id=client_id,
        client_secret=client_secret,
        policies=tuple(policies),
        state_dir=state_dir,
        listen=None,
    )
    if unit is not None:
        options = replace(options, **_scaled(unit))
    return replace(options, **changes)


def _scaled(unit: float) -> dict[str, Any]:
    """Every interval as a small multiple of ``unit``; calls to a loopback emulator time out in 2 s."""
    return {
        "connect_timeout": 2.0,
        "read_timeout": 2.0,
        "drain_seconds": 20 * unit,
        "redrive_poll_seconds": 2 * unit,
        "token_retry_seconds": 2 * unit,
        "subscriber": SubscriberConfig(
            heartbeat_timeout=20 * unit,
            ping_timeout=10 * unit,
            min_session=unit,
            backoff_initial=unit / 5,
            backoff_max=2 * unit,
            open_timeout=2.0,
        ),
        "applier": ApplierConfig(retry_initial_seconds=unit / 5, retry_max_seconds=2 * unit),
        "reconciler": ReconcilerConfig(interval=60 * unit, end_lag=10 * unit, retry_delay=unit),
        "replicas": ReplicaConfig(lease_seconds=10 * unit, heartbeat_seconds=2 * unit),
    }
