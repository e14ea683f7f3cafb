"""Command line: ``wrapupd run | check | login | apply | ledger | status | demo``. The one ``asyncio.run()`` lives here, and
the one place where an error becomes an exit code (sysexits: 78 bad config, 69 unreachable).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import structlog

from wrapupd import __version__, logs
from wrapupd.commands import EX_CONFIG, EX_FAILURE, EX_UNAVAILABLE
from wrapupd.errors import (
    AuthenticationFailed,
    BackgroundJobFailed,
    ConfigError,
    Forbidden,
    LedgerError,
    LedgerUnavailable,
    PlatformError,
)
from wrapupd.retry import USER_CONTEXT_REMEDY
from wrapupd.settings import Settings, load_settings

log = structlog.get_logger("wrapupd.cli")

# The wrapupd-emulator distribution (emulator/): only `wrapupd demo` imports it.
EMULATOR_PACKAGES = ("genesys_emulator", "groundtruth")


def build_parser() -> argparse.ArgumentParser:
    """The argument table of every command."""
    parser = argparse.ArgumentParser(prog="wrapupd", description=__doc__)
    parser.add_argument("--version", action="version", version=f"wrapupd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--config", "-c", type=Path, help="TOML settings file (default: $WRAPUPD_CONFIG)"
        )
        return p

    with_config(sub.add_parser("run", help="run the daemon"))
    with_config(
        sub.add_parser(
            "check",
            help="validate config, authenticate, resolve queues, codes and topic permissions",
        )
    )
    login = with_config(
        sub.add_parser(
            "login",
            help="sign the integration user in (grant = authorization_code) and store the"
            " refresh token",
        )
    )
    login.add_argument(
        "--no-browser", action="store_true", help="only print the URL to open (another machine)"
    )
    login.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the sign-in (default 300)"
    )
    apply = with_config(
        sub.add_parser(
            "apply", help="apply one code to one participant, with the daemon's state checks"
        )
    )
    apply.add_argument("--conversation", required=True)
    apply.add_argument("--participant", required=True)
    apply.add_argument(
        "--code", required=True, help="code name or id, assigned to the participant's queue"
    )
    apply.add_argument("--notes", default=None)
    apply.add_argument("--dry-run", action="store_true")
    _ledger_parser(
        sub.add_parser("ledger", help="read the ledger: list, show, redrive, export"), with_config
    )
    status = sub.add_parser("status", help="the status page's facts as text, from a running daemon")
    where = status.add_mutually_exclusive_group()
    where.add_argument("--config", "-c", type=Path, help="read [http] listen from this TOML file")
    where.add_argument("--url", help="the daemon's health listener, e.g. http://127.0.0.1:9464")
    demo = sub.add_parser(
        "demo", help="run against the built-in simulated org (no credentials needed)"
    )
    demo.add_argument(
        "--duration", type=float, default=60.0, help="seconds of generated traffic (default 60)"
    )
    demo.add_argument(
        "--rate", type=float, default=2.0, help="new conversations per second (default 2)"
    )
    demo.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument(
        "--replicas", type=int, default=1, help="replicas sharing --ledger (default 1)"
    )
    demo.add_argument(
        "--ledger",
        default=None,
        help="postgresql://user@host:port/db shared by the replicas"
        " (password in WRAPUPD_LEDGER__PASSWORD)",
    )
    return parser


def _ledger_parser(
    ledger: argparse.ArgumentParser,
    with_config: Callable[[argparse.ArgumentParser], argparse.ArgumentParser],
) -> None:
    """``wrapupd ledger``'s subcommands (see :mod:`wrapupd.commands.ledger`)."""
    from wrapupd.commands.ledger import WRITERS, moment, positive
    from wrapupd.ledger import REDRIVABLE, state_choices

    sub = ledger.add_subparsers(dest="ledger_command", required=True, metavar="SUBCOMMAND")
    listing = with_config(sub.add_parser("list", help="work items, newest change first"))
    listing.add_argument("--state", choices=state_choices(), help="a state or an outcome")
    listing.add_argument("--queue", help="queue name or id")
    listing.add_argument("--since", type=moment, help="changed at or after (ISO-8601)")
    listing.add_argument("--limit", type=positive, default=100, help="at most N rows (default 100)")
    show = with_config(sub.add_parser("show", help="one conversation's items and their history"))
    show.add_argument("conversation")
    show.add_argument("participant", nargs="?")
    redrive = with_config(
        sub.add_parser(
            "redrive", help="put failed items back to pending for the daemon to re-check"
        )
    )
    redrive.add_argument("--state", choices=sorted(o.value for o in REDRIVABLE), default="failed")
    redrive.add_argument("--queue", help="queue name or id")
    redrive.add_argument("--dry-run", action="store_true", help="print what would be redriven")
    export = with_config(
        sub.add_parser("export", help="one record per applied code (CSV or JSONL)")
    )
    export.add_argument("--format", choices=sorted(WRITERS), default="csv")
    export.add_argument("--since", type=moment, help="applied at or after (ISO-8601)")
    export.add_argument("--until", type=moment, help="applied before (ISO-8601)")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run the command, and turn what it raised into an exit code."""
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(_command(args))
    except KeyboardInterrupt:
        return 130
    except ConfigError as exc:
        return _fail(f"configuration problem:\n{exc}", EX_CONFIG)
    except LedgerError as exc:
        return _fail(f"ledger problem: {exc}", EX_CONFIG)
    except LedgerUnavailable as exc:
        return _fail(f"the ledger is unreachable or failing: {exc}", EX_UNAVAILABLE)
    except PlatformError as exc:
        return _platform_exit(exc)
    except BackgroundJobFailed as exc:
        log.error("background_job_ended", error=str(exc))
        return EX_FAILURE
    except ModuleNotFoundError as exc:
        if exc.name not in EMULATOR_PACKAGES:
            raise
        return _fail(
            "`wrapupd demo` needs the emulator, which the production package leaves out:"
            " install it from the wrapupd repository with `pip install ./emulator`"
            " (or `make venv` for a development set-up)",
            EX_UNAVAILABLE,
        )


def _command(args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    """The command to run; those that take settings get them loaded (and logging set up) first.

    Commands are imported on use: the daemon's import pulls in the platform SDK (about 2 s)."""
    if args.command == "demo":
        from wrapupd.commands import demo

        return demo.command(args)
    if args.command == "status":
        from wrapupd.commands import status

        return status.command(args)
    settings = load_settings(args.config)
    _configure_logs(settings)
    if args.command == "run":
        from wrapupd.commands import run

        return run.command(args, settings)
    if args.command == "check":
        from wrapupd.commands import check

        return check.command(args, settings)
    if args.command == "ledger":
        from wrapupd.commands import ledger

        return ledger.command(args, settings.daemon_options())
    if args.command == "login":
        from wrapupd.commands import login

        return login.command(args, settings)
    from wrapupd.commands import apply

    return apply.command(args, settings)


def _configure_logs(settings: Settings) -> None:
    logs.configure_logging(
        fmt=settings.log.format,
        level=settings.log.level,
        secrets=[
            settings.genesys.client_secret.get_secret_value(),
            *([settings.ledger_password] if settings.ledger_password else []),
        ],
    )


def _fail(message: str, code: int) -> int:
    print(f"wrapupd: {message}", file=sys.stderr)
    return code


def _platform_exit(exc: PlatformError) -> int:
    """Credentials and permissions are configuration problems; anything else may pass."""
    if isinstance(exc, AuthenticationFailed):
        return _fail(f"authentication failed: {exc}", EX_CONFIG)
    if isinstance(exc, Forbidden) and exc.user_context_required:
        return _fail(
            f"the org requires a user context: {exc}. Remedy: {USER_CONTEXT_REMEDY}", EX_CONFIG
        )
    if isinstance(exc, Forbidden):
        return _fail(f"permission problem: {exc}", EX_CONFIG)
    return _fail(f"the platform is unreachable or failing: {exc}", EX_UNAVAILABLE)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
