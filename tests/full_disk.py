"""A disk that fills up, for real: a small tmpfs (needs root to mount; the test is skipped, saying
why, where it cannot be mounted), and a file written until no byte is left."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_disk(size: str = "2m", at: Path | None = None) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``at`` (made if missing) or on a new temporary directory,
    unmounted afterwards."""
    mountpoint = at or Path(tempfile.mkdtemp(prefix="wrapupd-full-"))
    mountpoint.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        if at is None:
            mountpoint.rmdir()
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)
        if at is None:
            mountpoint.rmdir()


def fill(directory: Path) -> Path:
    """Write a file until the filesystem is full; remove it to free the space."""
    filler = directory / "filler"
    with open(filler, "wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    assert os.statvfs(directory).f_bavail == 0
    return filler
