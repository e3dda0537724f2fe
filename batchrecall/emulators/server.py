"""Every vendor's emulator in one app, a config pointing at them, and serving over HTTP."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from batchrecall import catalog
from batchrecall.emulators.common import DEFAULT_SETTINGS, Clock, EmulatorSettings, LoggedRequest
from batchrecall.emulators.faults import ConnectionDropped
from batchrecall.emulators.wire import VendorEmulator
from batchrecall.errors import UsageError
from batchrecall.models import Item, LaneKey, Vendor

if TYPE_CHECKING:
    from batchrecall.emulators.easemob import EasemobEmulator
    from batchrecall.emulators.goeasy import GoEasyEmulator
    from batchrecall.emulators.rongcloud import RongCloudEmulator
    from batchrecall.emulators.tencent import TencentEmulator
    from batchrecall.emulators.yunxin import YunxinEmulator

DEFAULT_PORT = 8750  # SPEC §6: `batchrecall emulate --port 8750`


class EmulatorSet:
    """One emulator per installed vendor that has one (the catalog's), sharing settings and
    clock, each mounted at its prefix (/easemob, /goeasy, /yunxin, ...) of one app, with
    /_emulator/requests (the merged log) and /_emulator/health.

    `rates` overrides `settings.rate` for the vendors it names.
    """

    def __init__(
        self,
        settings: EmulatorSettings = DEFAULT_SETTINGS,
        *,
        clock: Clock = time.time,
        rates: Mapping[Vendor, float] | Mapping[str, float] | None = None,
    ) -> None:
        self.specs = {name: spec for name, spec in catalog.vendors().items() if spec.emulator}
        by_vendor = {str(vendor): rate for vendor, rate in (rates or {}).items()}
        if unknown := set(by_vendor) - set(self.specs):
            raise ValueError(
                f"rates for unknown vendors {sorted(unknown)}; use {tuple(self.specs)}"
            )
        self.settings = settings
        self.clock = clock

        def settings_for(vendor: str) -> EmulatorSettings:
            return replace(settings, rate=by_vendor[vendor]) if vendor in by_vendor else settings

        self.by_vendor: dict[str, VendorEmulator] = {}
        for name, spec in self.specs.items():
            assert spec.emulator is not None
            factory = catalog.resolve(spec.emulator.factory)
            self.by_vendor[name] = factory(settings_for(name), clock=clock)
        self.app = Starlette(
            routes=[
                Route("/_emulator/health", self._health, methods=["GET"]),
                Route("/_emulator/requests", self._requests, methods=["GET"]),
                *(
                    Mount(self.specs[name].prefix, app=emulator.app)
                    for name, emulator in self.by_vendor.items()
                ),
            ]
        )

    @property
    def easemob(self) -> EasemobEmulator:
        return cast("EasemobEmulator", self.by_vendor["easemob"])

    @property
    def goeasy(self) -> GoEasyEmulator:
        return cast("GoEasyEmulator", self.by_vendor["goeasy"])

    @property
    def yunxin(self) -> YunxinEmulator:
        return cast("YunxinEmulator", self.by_vendor["yunxin"])

    @property
    def tencent(self) -> TencentEmulator:
        return cast("TencentEmulator", self.by_vendor["tencent"])

    @property
    def rongcloud(self) -> RongCloudEmulator:
        return cast("RongCloudEmulator", self.by_vendor["rongcloud"])

    @property
    def emulators(self) -> tuple[VendorEmulator, ...]:
        """Every vendor's emulator."""
        return tuple(self.by_vendor.values())

    def prefixes(self) -> list[str]:
        """Where each emulator is mounted, in the vendors' order."""
        return [self.specs[name].prefix for name in self.by_vendor]

    def seed(self, item: Item, twist: Mapping[str, Any], sent_at: float) -> None:
        """Make `item` exist in its vendor's emulator, sent at `sent_at` (epoch seconds)."""
        spec = self.specs.get(item.vendor)
        if spec is None or spec.emulator is None:
            raise UsageError(f"vendor {item.vendor} has no emulator to rehearse with")
        catalog.resolve(spec.emulator.seed)(self.by_vendor[item.vendor], item, twist, sent_at)

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
        fields: dict[str, dict[str, Any]] = {}
        for name, emulator in self.by_vendor.items():
            spec = self.specs[name]
            assert spec.emulator is not None
            keys = catalog.resolve(spec.emulator.lane_config)(emulator)
            fields[name] = {"base_url": f"{base}{spec.prefix}", **keys}
        lanes = {LaneKey(vendor=Vendor(name), app="default") for name in fields}
        lanes |= {key for key in apps if key.vendor in fields}
        sections = [
            _section(str(key), **fields[key.vendor], rate=self.specs[key.vendor].default_rate)
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
