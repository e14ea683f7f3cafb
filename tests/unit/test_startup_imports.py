"""What ``wrapupd run`` loads before it is ready: start-up time is mostly imports (issue 14), so what
the path to ready does not use is loaded where it is used: a driver only one kind of deployment
uses, the status page's renderer (on the first page view), the status report's JSON adapter (on the
first ``/status.json`` or ``wrapupd status``)."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
import wrapupd.cli, wrapupd.commands.run, wrapupd.service
from wrapupd import status_report
print(json.dumps({
    "modules": sorted(m for m in %r if m in sys.modules),
    "status_adapter_built": status_report._adapter.cache_info().currsize > 0,
}))
"""


def _loaded_at_start(*modules: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE % (modules,)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dict(json.loads(done.stdout))


def test_a_sqlite_deployment_never_loads_the_postgresql_driver() -> None:
    assert _loaded_at_start("psycopg", "psycopg_pool")["modules"] == []


def test_the_status_page_renderer_is_loaded_on_the_first_page_view_not_at_start() -> None:
    assert _loaded_at_start("wrapupd.status_page")["modules"] == []


def test_the_status_reports_json_adapter_is_built_on_first_use_not_at_start() -> None:
    assert _loaded_at_start()["status_adapter_built"] is False
