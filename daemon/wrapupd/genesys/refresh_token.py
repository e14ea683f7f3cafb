"""Where the authorization-code grant keeps its refresh token: one file, replaced atomically.

The platform may rotate the refresh token on every use, invalidating the old one: the new one must
then reach the disk whole or not at all, and never replace the file half written. :meth:`save`
writes a temporary file of mode 0600 beside the target, fsyncs it, renames it over the target (an
atomic replace on POSIX) and fsyncs the directory, so a crash leaves either the old token or the
new one. ``wrapupd login`` writes the file the same way while the daemon may be reading it.

A read-only seed (a systemd credential, ``$CREDENTIALS_DIRECTORY/refresh_token``) can stand in
until the first rotation is saved to the writable file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Protocol

__all__ = ["RefreshTokenFile", "RefreshTokenStore"]


class RefreshTokenStore(Protocol):
    """Keeps the one refresh token; ``save`` replaces it atomically."""

    def load(self) -> str | None:
        """The stored token, or ``None`` when there is none yet."""
        ...

    def save(self, token: str) -> None:
        """Replace the stored token; raises ``OSError`` and then keeps the previous one."""
        ...


class RefreshTokenFile:
    """The refresh token in ``path`` (mode 0600), else in the read-only ``seed`` if given."""

    def __init__(self, path: Path, *, seed: Path | None = None) -> None:
        self.path = path
        self.seed = seed

    def __repr__(self) -> str:
        return f"RefreshTokenFile(path={str(self.path)!r})"

    def load(self) -> str | None:
        """The token in the file, else in the seed; ``None`` when neither holds one."""
        for candidate in (self.path, self.seed):
            if candidate is None:
                continue
            try:
                token = candidate.read_text(encoding="utf-8").strip()
            except FileNotFoundError:
                continue
            if token:
                return token
        return None

    def save(self, token: str) -> None:
        """Write a temporary file (0600), fsync, rename over the file, fsync the directory."""
        if not token or token != token.strip():
            raise ValueError("a refresh token is a non-empty string without surrounding space")
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.path.with_name(f".{self.path.name}.{secrets.token_hex(6)}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(token + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        _fsync_directory(self.path.parent)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
