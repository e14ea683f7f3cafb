"""A virtualenv installed the way the container image installs wrapupd, for the start-up figure.

The Dockerfile installs exactly ``requirements.lock`` (``--require-hashes --no-deps``) and then
the daemon with ``pip install --no-deps .``; nothing from the ``dev`` extra (so, for example, no
``rich``, which ``structlog`` would import at start when it is there). This module builds the same
in ``.bench-venv/`` at the top of the repository once and keeps it: the dependencies are installed
again only when ``requirements.lock`` or the interpreter changes, the daemon only when its sources
change. pip compiles the bytecode at install (as in the image's build stage), so a start from this
venv reads ``.pyc`` files like a start in the container does.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".bench-venv"
_DEPS_STAMP = VENV / ".deps-installed"
_DAEMON_STAMP = VENV / ".daemon-installed"
# As the image runs it (Dockerfile, runtime stage).
IMAGE_ENV = {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256(sys.version.encode())
    for path in sorted(paths):
        h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _daemon_sources() -> list[Path]:
    return [ROOT / "pyproject.toml", *(p for p in (ROOT / "daemon").rglob("*") if _source(p))]


def _source(path: Path) -> bool:
    return path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"


def _pip(*args: str) -> None:
    command = [str(VENV / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", *args]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True, timeout=900)


def _fresh(stamp: Path, digest: str) -> bool:
    return stamp.exists() and stamp.read_text() == digest


def production_venv() -> Path:
    """The ``wrapupd`` console script of ``.bench-venv/``, (re)installed as the image does if needed."""
    deps = _digest([ROOT / "requirements.lock"])
    if not _fresh(_DEPS_STAMP, deps):
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        _pip("install", "--quiet", "--require-hashes", "--no-deps", "-r", "requirements.lock")
        _DEPS_STAMP.write_text(deps)
        _DAEMON_STAMP.unlink(missing_ok=True)
    daemon = _digest(_daemon_sources())
    if not _fresh(_DAEMON_STAMP, daemon):
        _pip("install", "--quiet", "--no-deps", "--force-reinstall", ".")
        _pip("check")
        _DAEMON_STAMP.write_text(daemon)
    return VENV / "bin" / "wrapupd"
