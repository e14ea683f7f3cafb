"""Command line: ``wrapupd run | check | apply | demo``. The one ``asyncio.run()`` lives here.

Exit codes follow sysexits so systemd can tell a bad config (78: do not restart) from an
unreachable platform (69: try again later).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from wrapupd import __version__, logs
from wrapupd.clock import SystemClock
from wrapupd.errors import (
    AuthenticationFailed,
    ConfigError,
    Forbidden,
    LedgerError,
    PlatformError,
    ResolutionError,
)
from wrapupd.settings import Settings, load_settings

if TYPE_CHECKING:  # the service pulls in the SDK (~2 s): imported only by the commands that run it
    from wrapupd.service import Daemon, DaemonOptions

EX_OK = 0
EX_FAILURE = 1
EX_UNAVAILABLE = 69
EX_CONFIG = 78

log = structlog.get_logger("wrapupd.cli")


def build_parser() -> argparse.ArgumentParser:
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"run": cmd_run, "check": cmd_check, "apply": cmd_apply, "demo": cmd_demo}
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        return 130


# --- settings ------------------------------------------------------------------------------------


def _settings_and_logs(args: argparse.Namespace) -> Settings | int:
    """The settings with logging configured from them, or the exit code of a configuration problem."""
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        return _config_error(exc)
    _configure_logs(settings)
    return settings


def _config_error(exc: ConfigError) -> int:
    print(f"wrapupd: configuration problem:\n{exc}", file=sys.stderr)
    return EX_CONFIG


def _platform_exit(exc: PlatformError) -> int:
    """Map a start-up failure to an exit code: credentials and permissions are config problems."""
    if isinstance(exc, AuthenticationFailed):
        print(f"wrapupd: authentication failed: {exc}", file=sys.stderr)
        return EX_CONFIG
    if isinstance(exc, Forbidden):
        print(f"wrapupd: permission problem: {exc}", file=sys.stderr)
        return EX_CONFIG
    print(f"wrapupd: the platform is unreachable or failing: {exc}", file=sys.stderr)
    return EX_UNAVAILABLE


# --- run -----------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from wrapupd.service import options_from_settings

    settings = _settings_and_logs(args)
    if isinstance(settings, int):
        return settings
    options = options_from_settings(settings)
    return asyncio.run(serve(options, config_path=args.config))


def _configure_logs(settings: Settings) -> None:
    logs.configure_logging(
        fmt=settings.log.format,
        level=settings.log.level,
        secrets=[settings.genesys.client_secret.get_secret_value()],
    )


async def serve(
    options: DaemonOptions, *, config_path: Path | None, shutdown: asyncio.Event | None = None
) -> int:
    """Run the daemon until a signal (or ``shutdown``) stops it; returns the exit code."""
    from wrapupd.service import Daemon

    stop = shutdown or asyncio.Event()
    reload_wanted = asyncio.Event()
    daemon = Daemon(options, on_new_token=logs.add_secret)
    _install_signals(stop, reload_wanted)
    starting = asyncio.create_task(daemon.start())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await starting
        await daemon.stop()
        return EX_OK
    try:
        starting.result()
    except ConfigError as exc:
        await daemon.stop()
        return _config_error(exc)
    except LedgerError as exc:
        await daemon.stop()
        print(f"wrapupd: state directory problem: {exc}", file=sys.stderr)
        return EX_CONFIG
    except PlatformError as exc:
        await daemon.stop()
        return _platform_exit(exc)
    code = await _main_loop(daemon, stop, reload_wanted, config_path)
    await daemon.stop()
    stopper.cancel()
    return code


async def _main_loop(
    daemon: Daemon, stop: asyncio.Event, reload_wanted: asyncio.Event, config_path: Path | None
) -> int:
    failed = asyncio.create_task(daemon.wait_failed())
    while True:
        stopper = asyncio.create_task(stop.wait())
        reloader = asyncio.create_task(reload_wanted.wait())
        done, _ = await asyncio.wait(
            {failed, stopper, reloader}, return_when=asyncio.FIRST_COMPLETED
        )
        stopper.cancel()
        reloader.cancel()
        if failed in done:
            log.error("background_job_ended", job=failed.result())
            return EX_FAILURE
        if stop.is_set():
            failed.cancel()
            return EX_OK
        reload_wanted.clear()
        await _reload(daemon, config_path)


async def _reload(daemon: Daemon, config_path: Path | None) -> None:
    from wrapupd.service import rules_from_settings

    try:
        settings = load_settings(config_path)
        await daemon.reload(rules_from_settings(settings))
    except (ConfigError, PlatformError) as exc:
        log.error(
            "reload_rejected", error=str(exc), hint="the previous configuration stays in force"
        )


def _install_signals(stop: asyncio.Event, reload_wanted: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()

    def on_stop(signame: str) -> None:
        if stop.is_set():
            log.warning("forced_exit", signal=signame)
            os._exit(EX_FAILURE)
        log.info("signal_received", signal=signame)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, on_stop, sig.name)
        except (NotImplementedError, RuntimeError):
            return  # not the main thread (tests): the caller's shutdown event is the trigger
    loop.add_signal_handler(signal.SIGHUP, reload_wanted.set)


# --- check ---------------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    from wrapupd.service import check_deployment

    settings = _settings_and_logs(args)
    if isinstance(settings, int):
        return settings
    try:
        report = asyncio.run(check_deployment(settings, on_new_token=logs.add_secret))
    except PlatformError as exc:
        return _platform_exit(exc)
    print(report.table())
    return EX_OK if report.ok else EX_CONFIG


# --- apply ---------------------------------------------------------------------------------------


def cmd_apply(args: argparse.Namespace) -> int:
    from wrapupd.service import apply_one

    settings = _settings_and_logs(args)
    if isinstance(settings, int):
        return settings
    try:
        result = asyncio.run(
            apply_one(
                settings,
                conversation_id=args.conversation,
                participant_id=args.participant,
                code_ref=args.code,
                notes=args.notes,
                dry_run=args.dry_run,
                clock=SystemClock(),
            )
        )
    except PlatformError as exc:
        return _platform_exit(exc)
    print(f"{result.outcome.value}: {result.detail}")
    return result.exit_code


# --- demo ----------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from wrapupd.demo import run_demo

    try:
        return asyncio.run(
            run_demo(duration=args.duration, rate=args.rate, as_json=args.json, seed=args.seed)
        )
    except ResolutionError as exc:
        return _config_error(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
