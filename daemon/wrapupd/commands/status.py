"""``wrapupd status [--config FILE | --url URL]``: the status page's facts as text tables.

It asks the running daemon's health listener for ``/status.json`` (the address from ``[http]
listen`` in the settings, or ``--url``), so an ssh session sees what the page shows. Exit codes:
0 ready with nothing to act on, 1 not ready or problems listed, 69 the daemon cannot be reached,
78 the settings do not say where it listens.
"""

from __future__ import annotations

import argparse
import sys

from wrapupd.commands import EX_CONFIG
from wrapupd.settings import load_settings
from wrapupd.status_terminal import run_status, status_url


async def command(args: argparse.Namespace) -> int:
    """Fetch the report and print it; the exit code says whether anything needs attention."""
    url = args.url
    if url is None:
        http = load_settings(args.config).http
        if http.port == 0:
            print(
                f"wrapupd status: [http] listen = {http.listen!r} picks a free port at start:"
                " give the daemon's address with --url http://HOST:PORT",
                file=sys.stderr,
            )
            return EX_CONFIG
        url = status_url(http.host, http.port)
    return run_status(url, out=sys.stdout, err=sys.stderr)
