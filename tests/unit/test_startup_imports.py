"""What ``wrapupd run`` loads before it is ready: start-up time is mostly imports (issue 14), so a
driver only one kind of deployment uses is loaded only there."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
import wrapupd.cli, wrapupd.commands.run, wrapupd.service
print(json.dumps(sorted(m for m in ("psycopg", "psycopg_pool") if m in sys.modules)))
"""


def test_a_sqlite_deployment_never_loads_the_postgresql_driver() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(done.stdout) == []
