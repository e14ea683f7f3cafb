"""``wrapupd ledger list | show | redrive | export``: the ledger as an operator and a reporting team
read it, safely beside a running daemon.

Every subcommand opens the configured ledger with :func:`wrapupd.ledger.open_queries` (its own
connection: reads never wait on the daemon's writer and see only what is committed). ``redrive``
is the one write: it puts finished-but-failed items back to pending and flags them; the running
daemon takes flagged items (``Ledger.take_redriven``) and checks each participant by GET before
any write, so a redrive is never a blind write.

Exit codes: 0 done; 1 ``show`` found nothing; 2 bad arguments (argparse); 69 the ledger's storage
(a database) cannot be reached; 78 no ledger where the settings say (``daemon.state_dir``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from wrapupd.commands import EX_FAILURE, EX_OK
from wrapupd.ledger import LedgerQueries, open_queries
from wrapupd.ledger.render import render_history, render_items, write_csv, write_jsonl
from wrapupd.options import DaemonOptions

WRITERS = {"csv": write_csv, "jsonl": write_jsonl}


def moment(text: str) -> datetime:
    """An ISO-8601 date or time from the command line; a time without a zone is UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 date or time (e.g. 2026-11-30 or 2026-11-30T08:00:00Z)"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def positive(text: str) -> int:
    """A count of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


async def command(args: argparse.Namespace, options: DaemonOptions) -> int:
    """Open the ledger the options name, run the subcommand on it, close it."""
    queries = open_queries(options.ledger_location)
    try:
        return SUBCOMMANDS[args.ledger_command](queries, args, sys.stdout)
    finally:
        queries.close()


def list_items(queries: LedgerQueries, args: argparse.Namespace, out: TextIO) -> int:
    """``list``: the newest changes first, as a table."""
    rows = queries.list_items(
        state=args.state, queue=args.queue, since=args.since, limit=args.limit
    )
    out.write(render_items(rows) + "\n")
    if len(rows) == args.limit:
        print(
            f"(first {args.limit}: narrow with --state/--queue/--since or raise --limit)",
            file=sys.stderr,
        )
    return EX_OK


def show(queries: LedgerQueries, args: argparse.Namespace, out: TextIO) -> int:
    """``show``: each matching item's facts and its whole history; 1 when there is none."""
    histories = queries.show(args.conversation, args.participant)
    if not histories:
        who = args.conversation + (f"/{args.participant}" if args.participant else "")
        print(
            f"wrapupd: no work item for {who} in the ledger (purged, or never seen)",
            file=sys.stderr,
        )
        return EX_FAILURE
    out.write(render_history(histories) + "\n")
    return EX_OK


def redrive(queries: LedgerQueries, args: argparse.Namespace, out: TextIO) -> int:
    """``redrive``: put the matching finished items back to pending; print what it touched."""
    rows = queries.redrive(state=args.state, queue=args.queue, dry_run=args.dry_run)
    if rows:
        out.write(render_items(rows) + "\n")
    verb = "would redrive" if args.dry_run else "redriven"
    after = "" if args.dry_run or not rows else ": the running daemon re-checks each, then applies"
    out.write(f"{len(rows)} item(s) {verb}{after}\n")
    return EX_OK


def export(queries: LedgerQueries, args: argparse.Namespace, out: TextIO) -> int:
    """``export``: one record per applied code, in the documented column order."""
    count = WRITERS[args.format](queries.export(since=args.since, until=args.until), out)
    print(f"{count} record(s) exported", file=sys.stderr)
    return EX_OK


SUBCOMMANDS: dict[str, Callable[[LedgerQueries, argparse.Namespace, TextIO], int]] = {
    "list": list_items,
    "show": show,
    "redrive": redrive,
    "export": export,
}
