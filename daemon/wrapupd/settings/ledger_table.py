"""The ``[ledger]`` table: where work items live (the embedded SQLite file, or a PostgreSQL database
shared by replicas) and the replicas' lease and heartbeat periods."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic import model_validator as _model_validator

from wrapupd.settings.sections import _Section, _strip, located


class LedgerSettings(_Section):
    """``[ledger]``: where work items live; a PostgreSQL URL lets replicas share them."""

    url: str | None = Field(
        default=None,
        description="postgresql://user@host:port/db of a ledger shared by replicas;"
        " unset: the embedded SQLite file in daemon.state_dir (one process)",
    )
    password: SecretStr | None = Field(
        default=None,
        description="Database password (prefer password_file or systemd"
        " LoadCredential=ledger_password)",
    )
    password_file: Path | None = Field(
        default=None, description="File holding the database password; overrides password"
    )
    lease_seconds: Annotated[float, Field(ge=1, le=600, allow_inf_nan=False)] = Field(
        default=9.0,
        description="A replica's hold on an item it writes; another replica takes the item"
        " over this long after the holder dies",
    )
    heartbeat_seconds: Annotated[float, Field(gt=0, le=60, allow_inf_nan=False)] = Field(
        default=3.0,
        description="How often a replica says it is alive (the rate budget is shared among"
        " the live ones)",
    )

    _normalise = field_validator("url", mode="before")(_strip)

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
            raise ValueError("must be a postgresql://user@host:port/database URL")
        if parts.password is not None or "password=" in parts.query:
            raise ValueError(
                "must not hold the password; give it as ledger.password_file,"
                " WRAPUPD_LEDGER__PASSWORD or the systemd credential ledger_password"
            )
        return value

    @_model_validator(mode="after")
    def _heartbeat_within_lease(self) -> LedgerSettings:
        if self.heartbeat_seconds * 2 > self.lease_seconds:
            raise located(
                "ledger.heartbeat_seconds",
                f"got {self.heartbeat_seconds}; must be at most half of lease_seconds"
                f" ({self.lease_seconds})",
            )
        return self


# --- [daemon], [http], [log] -------------------------------------------------------------------
