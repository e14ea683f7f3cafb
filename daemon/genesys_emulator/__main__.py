"""``python -m genesys_emulator``: one JSON ready line on stdout, then logs on stderr."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from typing import Any

from .errors import ControlError
from .options import Options
from .server import start_server
from .state import Emulator

# (flag, option name, type): a value flag per option; type bool makes a switch that turns it on.
OPTION_FLAGS: tuple[tuple[str, str, type], ...] = (
    ("--token-lifetime", "token_lifetime_s", float),
    ("--heartbeat", "heartbeat_interval_s", float),
    ("--channel-lifetime", "channel_lifetime_s", float),
    ("--socket-closing-lead", "socket_closing_lead_s", float),
    ("--rate-limit", "rate_limit_per_window", int),
    ("--rate-window", "rate_window_s", float),
    ("--require-user-context", "require_user_context", bool),
    ("--user-context-status", "user_context_status", int),
    ("--wrapup-own-participant-only", "wrapup_own_participant_only", bool),
    ("--overwrite-allowed", "overwrite_allowed", bool),
    ("--idle-close", "idle_close_s", float),
    ("--refresh-token-lifetime", "refresh_token_lifetime_s", float),
    ("--keep-refresh-tokens", "keep_refresh_tokens", bool),
    ("--extra-queues", "extra_queues", int),
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="genesys_emulator", description=__doc__)
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = any free port)")
    p.add_argument("--org", default="demo", help="org name under config/orgs/ or a .toml path")
    for flag, name, kind in OPTION_FLAGS:
        if kind is bool:
            p.add_argument(flag, action="store_true", default=None, dest=name)
        else:
            p.add_argument(flag, type=kind, dest=name)
    p.add_argument(
        "--traffic-rate", type=float, help="start continuous traffic at R conversations/s"
    )
    p.add_argument("--traffic-seed", type=int, default=None)
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def options_from(args: argparse.Namespace) -> Options:
    changes: dict[str, Any] = {"org": args.org}
    for _, name, _ in OPTION_FLAGS:
        value = getattr(args, name)
        if value is not None:
            changes[name] = value
    return Options().with_changes(changes)


async def serve(args: argparse.Namespace) -> None:
    emu = Emulator(options_from(args))
    handle = await start_server(emu, args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.traffic_rate:
        _start_traffic(emu, args.traffic_rate, args.traffic_seed)
    client = emu.org.main_client
    ready = {
        "ready": True,
        "base_url": handle.base_url,
        "client_id": client.id,
        "client_secret": client.secret,
    }
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    await stop.wait()
    logging.getLogger("genesys_emulator").info("stopping")
    await handle.stop()


def _start_traffic(emu: Emulator, rate: float, seed: int | None) -> None:
    from .control_traffic import traffic_plan

    run, make, rng, interval = traffic_plan(emu, {"rate_per_s": rate, "seed": seed})
    emu.engine.start_traffic(run, make, rng, interval)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        asyncio.run(serve(args))
    except ControlError as exc:
        print(f"genesys_emulator: {exc}", file=sys.stderr)
        return 78
    except KeyboardInterrupt:
        pass
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
