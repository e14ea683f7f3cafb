"""``wrapupd demo --replicas 2 --ledger postgresql://…``: two replicas share the work on one
PostgreSQL ledger, and the usual summary (scored from ground truth) says every promise held."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from postgres import PostgresDatabase


def demo(*args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    if password is not None:
        env["WRAPUPD_LEDGER__PASSWORD"] = password
    return subprocess.run(
        [sys.executable, "-m", "wrapupd", "demo", *args],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
        env=env,
    )


def test_the_demo_with_two_replicas_shares_the_work_and_keeps_every_promise(
    postgres: PostgresDatabase,
) -> None:
    args = ("--replicas", "2", "--ledger", postgres.url, "--duration", "4", "--rate", "4")
    result = demo(*args, "--json", password=postgres.password)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    shares = summary["applied_by_replica"]
    assert sorted(shares) == ["demo-1", "demo-2"]
    assert sum(shares.values()) == summary["applied"] > 0
    assert summary["missed"] == summary["doubled"] == summary["overwritten"] == 0
    assert postgres.password not in result.stdout + result.stderr


def test_replicas_without_a_postgresql_ledger_are_refused_with_78() -> None:
    result = demo("--replicas", "2", "--duration", "1")
    assert result.returncode == 78
    assert "--ledger postgresql://" in result.stderr
