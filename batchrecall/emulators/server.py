"""The emulators in one app, a batchrecall config pointing at them, and serving over HTTP."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from batchrecall.config import DEFAULT_RATES
from batchrecall.emulators.common import DEFAULT_SETTINGS, Clock, EmulatorSettings, LoggedRequest
from batchrecall.emulators.easemob import EasemobEmulator
from batchrecall.emulators.faults import ConnectionDropped
from batchrecall.emulators.goeasy import GoEasyEmulator
from batchrecall.emulators.rongcloud import RongCloudEmulator
from batchrecall.emulators.tencent import TencentEmulator
from batchrecall.emulators.wire import VendorEmulator
from batchrecall.emulators.yunxin import YunxinEmulator
from batchrecall.models import LaneKey, Vendor

DEFAULT_PORT = 8750  # SPEC §6: `batchrecall emulate --port 8750`
VENDORS = ("easemob", "goeasy", "yunxin", "tencent", "rongcloud")


class EmulatorSet:
    """One emulator per vendor, sharing settings and clock, mounted at /easemob, /goeasy,
    /yunxin, /tencent and /rongcloud of one app, with /_emulator/requests (the merged log) and
    /_emulator/health.

    `rates` overrides `settings.rate` for the vendors it names.
    """

    def __init__(
        self,
        settings: EmulatorSettings = DEFAULT_SETTINGS,
        *,
        clock: Clock = time.time,
        rates: Mapping[Vendor, float] | Mapping[str, float] | None = None,
    ) -> None:
        by_vendor = {str(vendor): rate for vendor, rate in (rates or {}).items()}
        if unknown := set(by_vendor) - set(VENDORS):
            raise ValueError(f"rates for unknown vendors {sorted(unknown)}; use {VENDORS}")
        self.settings = settings
        self.clock = clock

        def settings_for(vendor: str) -> EmulatorSettings:
            return replace(settings, rate=by_vendor[vendor]) if vendor in by_vendor else settings

        self.easemob = EasemobEmulator(settings_for("easemob"), clock=clock)
        self.goeasy = GoEasyEmulator(settings_for("goeasy"), clock=clock)
        self.yunxin = YunxinEmulator(settings_for("yunxin"), clock=clock)
        self.tencent = TencentEmulator(settings_for("tencent"), clock=clock)
        self.rongcloud = RongCloudEmulator(settings_for("rongcloud"), clock=clock)
        self.app = Starlette(
            routes=[
                Route("/_emulator/health", self._health, methods=["GET"]),
                Route("/_emulator/requests", self._requests, methods=["GET"]),
                *(Mount(f"/{emulator.vendor}", app=emulator.app) for emulator in self.emulators),
            ]
        )

    @property
    def emulators(self) -> tuple[VendorEmulator, ...]:
        """One emulator per vendor."""
        return (self.easemob, self.goeasy, self.yunxin, self.tencent, self.rongcloud)

    def requests(self) -> list[LoggedRequest]:
        """Every request received by any emulator, in order of arrival."""
        merged = [entry for emulator in self.emulators for entry in emulator.log]
        return sorted(merged, key=lambda entry: entry.seq)

    def config_toml(self, base_url: str, apps: Iterable[LaneKey] = ()) -> str:
        """A batchrecall config (SPEC §3) whose lanes point at these emulators: `default` of
        every vendor and every app in `apps`, all with the credentials the emulators accept.

        Lanes keep the product's default rates whatever the emulators' own limits, so that an
        emulator made stricter (`emulate --rate`) really throttles a rehearsal.
        """
        base = base_url.rstrip("/")
        easemob = self.easemob.state
        yunxin = self.yunxin.state
        fields: dict[Vendor, dict[str, Any]] = {
            Vendor.EASEMOB: {
                "base_url": f"{base}/easemob",
                "org_name": easemob.org_name,
                "app_name": easemob.app_name,
                "client_id": easemob.client_id,
                "client_secret": easemob.client_secret,
                "batch_recall": easemob.batch_recall_enabled,
            },
            Vendor.GOEASY: {"base_url": f"{base}/goeasy", "appkey": self.goeasy.common_key},
            Vendor.YUNXIN: {
                "base_url": f"{base}/yunxin",
                "app_key": yunxin.app_key,
                "app_secret": yunxin.app_secret,
            },
            Vendor.TENCENT: {
                "base_url": f"{base}/tencent",
                "sdkappid": self.tencent.state.sdkappid,
                "identifier": self.tencent.state.identifier,
                "secret_key": self.tencent.state.secret_key,
            },
            Vendor.RONGCLOUD: {
                "base_url": f"{base}/rongcloud",
                "app_key": self.rongcloud.state.app_key,
                "app_secret": self.rongcloud.state.app_secret,
            },
        }
        lanes = {LaneKey(vendor=vendor, app="default") for vendor in Vendor} | set(apps)
        sections = [
            _section(str(key), **fields[key.vendor], rate=DEFAULT_RATES[key.vendor])
            for key in sorted(lanes)
        ]
        header = f"# batchrecall lanes pointing at the emulators served at {base}\n"
        return header + "\n".join(sections)

    async def _health(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "vendors": [e.vendor for e in self.emulators]})

    async def _requests(self, request: Request) -> JSONResponse:
        return JSONResponse([entry.to_json() for entry in self.requests()])


Servable = EmulatorSet | VendorEmulator


@asynccontextmanager
async def running_server(
    emulators: Servable, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serves `emulators` over HTTP in the current event loop and yields its base URL.

    Port 0 picks a free port. Leaving the context stops the server cleanly, also on
    cancellation. Signals are left to the host program.
    """
    async with _serving(emulators, host, port) as bound:
        yield _base_url(host, bound)


async def serve(
    emulators: Servable,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    ready: Callable[[int], None] | None = None,
    shutdown_event: anyio.Event | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Serves until `shutdown_event` is set (or forever), calling `ready(port)` once listening.

    `sock`, bound beforehand with `bind_socket`, is served instead of binding `host:port` here.
    """
    async with _serving(emulators, host, port, sock) as bound:
        if ready is not None:
            ready(bound)
        if shutdown_event is None:
            await anyio.sleep_forever()
        else:
            await shutdown_event.wait()


class _Server(uvicorn.Server):
    """A uvicorn server that leaves SIGINT/SIGTERM to the host program and says when it is up."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = anyio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.listening.set()

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _DropConnections:
    """Turns a "drop" fault into a closed connection: uvicorn closes it when the app returns
    after starting an answer it never finished."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except ConnectionDropped:
            return


@asynccontextmanager
async def _serving(
    emulators: Servable, host: str, port: int, sock: socket.socket | None = None
) -> AsyncIterator[int]:
    """Runs uvicorn on a socket bound here (so a bind error raises, and port 0 is known)."""
    if sock is None:
        sock = bind_socket(host, port)
    config = uvicorn.Config(
        _DropConnections(emulators.app),
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = _Server(config)
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_serve_shielded, server, sock)
            try:
                await server.listening.wait()
                yield sock.getsockname()[1]
            finally:
                server.should_exit = True
    finally:
        sock.close()


async def _serve_shielded(server: _Server, sock: socket.socket) -> None:
    """Runs the server to its own clean end (`should_exit`), even when the caller is cancelled."""
    with anyio.CancelScope(shield=True):
        await server.serve(sockets=[sock])


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (0: a free port); OSError if it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)


def _base_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _section(name: str, **values: Any) -> str:
    lines = [f"[{name}]"]
    for key, value in values.items():
        if value is not None:
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)  # a valid TOML basic string
