"""``wrapupd run``: the daemon until SIGTERM or SIGINT (a second one forces the exit); SIGHUP
re-reads the settings and puts in force what can change while running (dry_run, the rate budget,
the log level, the queue table, ...), naming what needs a restart; a bad file changes nothing."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path

import structlog

from wrapupd import logs
from wrapupd.commands import EX_FAILURE, EX_OK
from wrapupd.errors import ConfigError, PlatformError
from wrapupd.logs import LogOptions
from wrapupd.options import DaemonOptions
from wrapupd.service import Daemon
from wrapupd.settings import Settings, load_settings

log = structlog.get_logger("wrapupd.cli")


async def command(args: argparse.Namespace, settings: Settings) -> int:
    """``wrapupd run``: serve until a stop signal; 0 after a clean shutdown."""
    await serve(
        settings.daemon_options(), config_path=args.config, log_options=_log_options(settings)
    )
    return EX_OK


async def serve(
    options: DaemonOptions, *, config_path: Path | None, log_options: LogOptions
) -> None:
    """Run the daemon with the process's signals as its shutdown and reload triggers."""
    stop = asyncio.Event()
    reload_wanted = asyncio.Event()
    _install_signals(stop, reload_wanted)
    daemon = Daemon(options, on_new_token=logs.add_secret, log_options=log_options)
    reloads = asyncio.create_task(_reload_on_request(daemon, reload_wanted, config_path))
    try:
        await daemon.serve(stop.wait)
    finally:
        reloads.cancel()


async def _reload_on_request(
    daemon: Daemon, reload_wanted: asyncio.Event, config_path: Path | None
) -> None:
    while True:
        await reload_wanted.wait()
        reload_wanted.clear()
        await reload_settings(daemon, config_path)


async def reload_settings(daemon: Daemon, config_path: Path | None) -> None:
    """Read and validate the settings again and hand them to the daemon; a bad file or a queue
    table that does not resolve changes nothing (logged as ``reload_rejected``)."""
    try:
        settings = load_settings(config_path)
        await daemon.reload(settings.daemon_options(), _log_options(settings))
    except (ConfigError, PlatformError) as exc:
        log.error(
            "reload_rejected", error=str(exc), hint="the previous configuration stays in force"
        )


def _log_options(settings: Settings) -> LogOptions:
    return LogOptions(level=settings.log.level, format=settings.log.format)


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
            return  # not the main thread: signals cannot reach this loop
    loop.add_signal_handler(signal.SIGHUP, reload_wanted.set)
