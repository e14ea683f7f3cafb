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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="genesys_emulator", description=__doc__)
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = any free port)")
    p.add_argument("--org", default="demo", help="org name under config/orgs/ or a .toml path")
    p.add_argument("--token-lifetime", type=float, dest="token_lifetime_s")
    p.add_argument("--heartbeat", type=float, dest="heartbeat_interval_s")
    p.add_argument("--channel-lifetime", type=float, dest="channel_lifetime_s")
    p.add_argument("--socket-closing-lead", type=float, dest="socket_closing_lead_s")
    p.add_argument("--rate-limit", type=int, dest="rate_limit_per_window")
    p.add_argument("--rate-window", type=float, dest="rate_window_s")
    p.add_argument(
        "--require-user-context", action="store_true", default=None, dest="require_user_context"
    )
    p.add_argument("--idle-close", type=float, dest="idle_close_s")
    p.add_argument(
        "--traffic-rate", type=float, help="start continuous traffic at R conversations/s"
    )
    p.add_argument("--traffic-seed", type=int, default=None)
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def options_from(args: argparse.Namespace) -> Options:
    changes: dict[str, Any] = {"org": args.org}
    for name in (
        "token_lifetime_s",
        "heartbeat_interval_s",
        "channel_lifetime_s",
        "socket_closing_lead_s",
        "rate_limit_per_window",
        "rate_window_s",
        "require_user_context",
        "idle_close_s",
    ):
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
