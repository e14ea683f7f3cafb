"""The aiohttp application (REST + OAuth + WebSocket + control plane on one port) and its runner."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from .auth import Token
from .errors import (
    ApiError,
    ControlError,
    authentication_required,
    bad_credentials,
    control_error,
    error_body,
    generic,
    json_response,
    rate_limited_body,
)
from .faults import RequestFault
from .handlers.common import CALLER, EMULATOR, TOKEN
from .limits import Verdict
from .routes import WRAPUP_WRITE_ROUTES, setup_api, setup_control
from .state import Emulator

log = logging.getLogger("genesys_emulator.server")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HOST = "127.0.0.1"


def build_app(emu: Emulator) -> web.Application:
    # 64 MB bodies: the control plane's raw_frames fault carries huge frames for fuzzing.
    app = web.Application(middlewares=[dispatch], client_max_size=64 * 1024 * 1024)
    app[EMULATOR] = emu
    setup_api(app)
    setup_control(app)
    return app


@web.middleware
async def dispatch(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/_emulator/"):
        return await _control(request, handler)
    if request.path.startswith("/channels/"):
        return await handler(request)
    return await _api(request, handler)


async def _control(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not _loopback(request.remote):
        return json_response({"error": "the control plane answers only on loopback"}, status=403)
    if request.match_info.http_exception is not None:
        exc = request.match_info.http_exception
        return json_response(
            {"error": f"{exc.reason}: {request.method} {request.path}"}, exc.status
        )
    try:
        return await handler(request)
    except ControlError as exc:
        return control_error(str(exc))
    except Exception as exc:  # the emulator never crashes on control input
        log.exception("control handler failed")
        return control_error(f"{type(exc).__name__}: {exc}")


def _loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def _template(request: web.Request) -> str:
    route = request.match_info.route
    resource = route.resource
    if request.match_info.http_exception is not None or resource is None:
        return request.path
    return resource.canonical


async def _api(request: web.Request, handler: Handler) -> web.StreamResponse:
    emu = request.app[EMULATOR]
    calls = emu.call_log  # the run this request began in: a reset meanwhile starts a new log
    context_id = str(uuid.uuid4())
    if request.match_info.route.name in WRAPUP_WRITE_ROUTES:
        emu.count_wrapup_call(request.match_info["id"], request.match_info["pid"])
    try:
        response = await _pipeline(emu, request, handler, context_id)
    except ApiError as exc:
        response = json_response(exc.body(context_id), exc.status, exc.headers)
    response.headers["ININ-Correlation-Id"] = context_id
    calls.record(request.method, _template(request), response.status)
    return response


async def _pipeline(
    emu: Emulator, request: web.Request, handler: Handler, context_id: str
) -> web.StreamResponse:
    latency = emu.faults.take("latency", request.method, request.path)
    if latency is not None:
        await asyncio.sleep(latency.seconds)
    late = emu.faults.take("late_answer", request.method, request.path)
    response = await _answer(emu, request, handler, context_id)
    if late is not None:
        await asyncio.sleep(late.seconds)  # done already: only the answer is late
    return response


async def _answer(
    emu: Emulator, request: web.Request, handler: Handler, context_id: str
) -> web.StreamResponse:
    if request.path in ("/oauth/token", "/oauth/authorize"):
        return _fault(emu, request, context_id) or await handler(request)
    if request.match_info.http_exception is not None:
        raise generic(request.match_info.http_exception.status)
    token = _bearer(emu, request)
    verdict = emu.limiter.hit(token.value, emu.now())
    if not verdict.allowed:
        return _rate_limited(verdict, context_id)
    response: web.StreamResponse | None = _fault(emu, request, context_id)
    if response is None:
        request[TOKEN], request[CALLER] = token, token.caller
        try:
            response = await handler(request)
        except ApiError as exc:
            response = json_response(exc.body(context_id), exc.status, exc.headers)
    response.headers.update(verdict.headers())
    return response


def _bearer(emu: Emulator, request: web.Request) -> Token:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        raise authentication_required()
    token = emu.valid_token(header[7:].strip())
    if token is None:
        raise bad_credentials()
    return token


def _rate_limited(verdict: Verdict, context_id: str) -> web.Response:
    headers = {**verdict.headers(), "Retry-After": str(verdict.reset_s)}
    return json_response(rate_limited_body(verdict.reset_s, context_id), 429, headers)


def _fault(emu: Emulator, request: web.Request, context_id: str) -> web.Response | None:
    fault = emu.faults.take("http", request.method, request.path)
    if fault is None:
        return None
    return fault_response(fault, context_id)


def fault_response(fault: RequestFault, context_id: str) -> web.Response:
    headers: dict[str, str] = {}
    if fault.retry_after is not None:
        headers["Retry-After"] = str(fault.retry_after)
    if fault.body is not None:
        body = fault.body if isinstance(fault.body, dict) else {"message": fault.body}
        if isinstance(body, dict) and "contextId" in body:
            body = {**body, "contextId": context_id}
    elif fault.status == 429:
        body = rate_limited_body(fault.retry_after or 1, context_id)
    else:
        err = generic(fault.status)
        body = error_body(fault.status, err.code, err.message, context_id)
    return json_response(body, fault.status, headers)


# --- running ---------------------------------------------------------------------------------


class ServerHandle:
    """A started server: its runner, the emulator and the bound port."""

    def __init__(self, emu: Emulator, runner: web.AppRunner, port: int) -> None:
        self.emu, self.runner, self.port = emu, runner, port

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def stop(self) -> None:
        await self.emu.stop()
        await self.runner.cleanup()


async def start_server(emu: Emulator, port: int = 0) -> ServerHandle:
    runner = web.AppRunner(build_app(emu), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port)
    await site.start()
    bound = int(runner.addresses[0][1])
    handle = ServerHandle(emu, runner, bound)
    emu.base_url = handle.base_url
    await emu.start()
    log.info("emulator listening on %s (org %s)", handle.base_url, emu.org.name)
    return handle
