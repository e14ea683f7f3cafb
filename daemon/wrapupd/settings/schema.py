"""The whole settings file as one validated, frozen object, and what it produces for the daemon:
each queue's policy and the daemon's plain options."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, PrivateAttr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from wrapupd.applier import ApplierConfig
from wrapupd.events import QueuePolicy
from wrapupd.options import REFRESH_TOKEN_FILE_NAME, DaemonOptions, GrantOptions
from wrapupd.reconciler import ReconcilerConfig
from wrapupd.replicas import ReplicaConfig
from wrapupd.settings.ledger_table import LedgerSettings
from wrapupd.settings.sections import (
    ENV_PREFIX,
    DaemonSettings,
    DefaultsSettings,
    GenesysSettings,
    HttpSettings,
    LogSettings,
    QueueSettings,
    located,
)
from wrapupd.settings.sources import CURRENT_LAYERS, DictSource, Layers, MappingEnvSource
from wrapupd.subscriber import SubscriberConfig


class Settings(BaseSettings):
    """Everything the daemon is told. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        case_sensitive=False,
        extra="forbid",
        frozen=True,
    )

    genesys: GenesysSettings
    defaults: DefaultsSettings = Field(default_factory=DefaultsSettings)
    queues: list[QueueSettings] = Field(min_length=1)
    daemon: DaemonSettings = Field(default_factory=DaemonSettings)
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    # A read-only first refresh token ($CREDENTIALS_DIRECTORY/refresh_token), set by the loader.
    _refresh_token_seed: Path | None = PrivateAttr(default=None)

    @field_validator("queues")
    @classmethod
    def _each_queue_once(cls, queues: list[QueueSettings]) -> list[QueueSettings]:
        first_seen: dict[str, int] = {}
        for index, entry in enumerate(queues):
            if entry.queue is None:
                continue  # selectors may overlap: the first in file order wins
            seen = first_seen.setdefault(entry.queue.casefold(), index)
            if seen != index:
                raise located(
                    f"queues[{index}].queue",
                    f"got {entry.queue!r}, already listed as queues[{seen}]; list each queue once",
                )
        return queues

    @property
    def api_host(self) -> str:
        """The REST base URL: ``https://api.<region>``, or ``genesys.api_host`` when given."""
        return self.genesys.base_url

    def daemon_options(self) -> DaemonOptions:
        """The daemon's plain options: every part gets its values from here, never the settings."""
        g, d = self.genesys, self.daemon
        return DaemonOptions(
            api_host=self.api_host,
            client_id=g.client_id,
            client_secret=g.client_secret.get_secret_value(),
            policies=tuple(self.queue_policies()),
            state_dir=d.state_dir,
            listen=(self.http.host, self.http.port),
            connect_timeout=g.connect_timeout_seconds,
            read_timeout=g.read_timeout_seconds,
            budget_per_minute=g.rate_budget_per_minute,
            rate_limit_per_minute=g.rate_limit_per_minute,
            token_renew_margin=g.token_renew_margin_seconds,
            code_refresh_seconds=d.code_refresh_seconds,
            drain_seconds=d.drain_seconds,
            retention_days=d.retention_days,
            subscriber=SubscriberConfig(
                heartbeat_timeout=d.heartbeat_timeout_seconds,
                renew_interval=d.channel_renew_seconds,
            ),
            applier=ApplierConfig(dry_run=d.dry_run, workers=d.workers),
            reconciler=ReconcilerConfig(
                interval=d.reconcile_interval_seconds, lookback_days=d.reconcile_lookback_days
            ),
            grant=self.grant_options(),
            ledger_url=self.ledger.url,
            ledger_password=self.ledger_password,
            replicas=ReplicaConfig(
                lease_seconds=self.ledger.lease_seconds,
                heartbeat_seconds=self.ledger.heartbeat_seconds,
            ),
        )

    def grant_options(self) -> GrantOptions:
        """How tokens are obtained, as plain values (the refresh token's file resolved)."""
        g = self.genesys
        return GrantOptions(
            kind=g.grant,
            redirect_uri=g.redirect_uri,
            refresh_token_file=g.refresh_token_file
            or self.daemon.state_dir / REFRESH_TOKEN_FILE_NAME,
            refresh_token_seed=self._refresh_token_seed,
        )

    @property
    def ledger_password(self) -> str | None:
        """The shared ledger's database password (from wherever it was given), or None."""
        password = self.ledger.password
        return None if password is None else password.get_secret_value()

    def queue_policies(self) -> list[QueuePolicy]:
        """Each queue's effective policy, ``[defaults]`` merged in, in file order."""
        return [self._policy(entry) for entry in self.queues]

    def _policy(self, entry: QueueSettings) -> QueuePolicy:
        defaults = self.defaults
        return QueuePolicy(
            queue=entry.queue or "",
            match=entry.match,
            division=entry.division,
            all_queues=entry.all,
            default_code=entry.default_code,
            grace_seconds=_first(entry.grace_seconds, defaults.grace_seconds),
            timeout_margin_seconds=_first(
                entry.timeout_margin_seconds, defaults.timeout_margin_seconds
            ),
            notes=entry.notes if entry.notes is not None else defaults.notes,
        )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Highest priority first: init kwargs, secret file, environment, TOML file."""
        layers = CURRENT_LAYERS.get() or Layers.gather(None, os.environ, set(cls.model_fields))
        return (
            init_settings,
            DictSource(settings_cls, layers.secret),
            MappingEnvSource(settings_cls, layers.env),
            DictSource(settings_cls, layers.file),
        )


def _first(override: float | None, default: float) -> float:
    return default if override is None else override
