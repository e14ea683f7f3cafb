"""Command line: ``wrapupd run | check | apply | demo``. The one ``asyncio.run()`` lives here, and
the one place where an error becomes an exit code (sysexits: 78 bad config, 69 unreachable).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine, Sequence
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
    PlatformError,
)
from wrapupd.settings import Settings, load_settings

log = structlog.get_logger("wrapupd.cli")


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
        return _fail(f"state directory problem: {exc}", EX_CONFIG)
    except PlatformError as exc:
        return _platform_exit(exc)
    except BackgroundJobFailed as exc:
        log.error("background_job_ended", error=str(exc))
        return EX_FAILURE


def _command(args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    """The command to run; those that take settings get them loaded (and logging set up) first.

    Commands are imported on use: the daemon's import pulls in the platform SDK (about 2 s)."""
    if args.command == "demo":
        from wrapupd.commands import demo

        return demo.command(args)
    settings = load_settings(args.config)
    _configure_logs(settings)
    if args.command == "run":
        from wrapupd.commands import run

        return run.command(args, settings)
    if args.command == "check":
        from wrapupd.commands import check

        return check.command(args, settings)
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
    if isinstance(exc, Forbidden):
        return _fail(f"permission problem: {exc}", EX_CONFIG)
    return _fail(f"the platform is unreachable or failing: {exc}", EX_UNAVAILABLE)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
