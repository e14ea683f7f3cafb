"""The daemon's OAuth grant, built from its plain options: client credentials, or the refresh token
of the integration user that ``wrapupd login`` signed in (read from its file at every renewal, so a
new login takes effect without a restart). Another grant (SAML2 bearer) is one more branch here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from wrapupd.genesys.auth import Grant
from wrapupd.genesys.grants import AuthorizationCodeGrant, ClientCredentialsGrant
from wrapupd.genesys.refresh_token import RefreshTokenFile
from wrapupd.options import REFRESH_TOKEN_FILE_NAME, DaemonOptions


def refresh_token_path(options: DaemonOptions) -> Path:
    """Where the refresh token lives: the configured file, else the state directory's."""
    return options.grant.refresh_token_file or options.state_dir / REFRESH_TOKEN_FILE_NAME


def build_grant(options: DaemonOptions, *, on_secret: Callable[[str], None] | None = None) -> Grant:
    """The grant the options describe; ``on_secret`` learns every refresh token (log redaction)."""
    if options.grant.kind == "client_credentials":
        return ClientCredentialsGrant(options.client_id, options.client_secret)
    store = RefreshTokenFile(refresh_token_path(options), seed=options.grant.refresh_token_seed)
    return AuthorizationCodeGrant(
        client_id=options.client_id,
        client_secret=options.client_secret,
        store=store,
        on_refresh_token=on_secret,
    )
