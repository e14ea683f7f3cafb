"""What ``pip install .`` ships: the daemon alone; the emulator and the ground-truth scorer are the
separate wrapupd-emulator distribution (emulator/), which ``wrapupd demo`` asks for by name."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def build_wheel(project: Path, into: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            str(project),
            "-w",
            str(into),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = into.glob("*.whl")
    return wheel


@pytest.fixture(scope="module")
def daemon_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(ROOT, tmp_path_factory.mktemp("daemon-wheel"))


def top_level(wheel: Path) -> set[str]:
    return {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}


def test_the_daemon_wheel_ships_wrapupd_and_nothing_of_the_emulator(daemon_wheel: Path) -> None:
    names = zipfile.ZipFile(daemon_wheel).namelist()
    assert top_level(daemon_wheel) == {"wrapupd", "wrapupd-0.1.0.dist-info"}
    assert "wrapupd/commands/ledger.py" in names and "wrapupd/status_page.py" in names
    entry_points = zipfile.ZipFile(daemon_wheel).read("wrapupd-0.1.0.dist-info/entry_points.txt")
    assert b"wrapupd = wrapupd.cli:main" in entry_points
    assert b"genesys" not in entry_points


def test_the_emulator_distribution_ships_the_emulator_its_orgs_and_the_scorer(
    tmp_path: Path,
) -> None:
    wheel = build_wheel(ROOT / "emulator", tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    assert top_level(wheel) == {
        "genesys_emulator",
        "groundtruth",
        "wrapupd_emulator-0.1.0.dist-info",
    }
    assert {"genesys_emulator/config/orgs/demo.toml", "groundtruth/score.py"} <= names
    assert "genesys_emulator/handlers/oauth.py" in names


def test_an_installed_daemon_runs_and_says_what_the_demo_needs(
    daemon_wheel: Path, tmp_path: Path
) -> None:
    """The wheel's files and the dependencies alone (no site hooks, so no development install of
    the emulator): ``wrapupd`` works, and ``wrapupd demo`` explains how to get the emulator."""
    installed = tmp_path / "installed"
    zipfile.ZipFile(daemon_wheel).extractall(installed)
    path = f"{installed}:{sysconfig.get_paths()['purelib']}"

    def wrapupd(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-S", "-m", "wrapupd", *args],
            env={"PYTHONPATH": path, "PATH": "/usr/bin:/bin"},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert wrapupd("--help").returncode == 0
    demo = wrapupd("demo", "--duration", "1")
    assert demo.returncode == 69, demo.stderr
    assert "pip install ./emulator" in demo.stderr and "Traceback" not in demo.stderr
