"""The HTTP side every emulator shares: request capture, latency, faults, logging, rendering."""

from __future__ import annotations

import itertools
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import anyio
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from batchrecall.emulators.common import Clock, EmulatorSettings, LoggedRequest
from batchrecall.emulators.faults import ConnectionDropped, Fault, FaultKind, FaultPlan


@dataclass(frozen=True, kw_only=True)
class Incoming:
    """A received request, read once: what a route handler needs to decide the answer."""

    method: str
    path: str
    url: str
    path_params: Mapping[str, str]
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: Any
    """The parsed JSON body, or None (then see `json_ok`)."""
    json_ok: bool
    """Whether the body was present and parsed as JSON."""


@dataclass(frozen=True, kw_only=True)
class Answer:
    """What to answer: HTTP status, a JSON-able body (a str is sent as plain text)."""

    status: int
    body: Any
    code: str | int | None = None
    """The vendor code for the request log."""
    headers: Mapping[str, str] = field(default_factory=dict)


class Reject(Exception):  # noqa: N818 - control flow, not an error
    """Raised by a handler's checks to answer at once with `answer`."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.status)
        self.answer = answer


_arrivals = itertools.count(1)

Handler = Callable[[Incoming], Answer]
ItemsOf = Callable[[Incoming], tuple[str, ...]]


class VendorEmulator(ABC):
    """One vendor's fake: a Starlette app over a state object, with a fault plan and a log."""

    vendor: ClassVar[str]
    random_faults: ClassVar[tuple[FaultKind, ...]]

    def __init__(self, settings: EmulatorSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.log: list[LoggedRequest] = []
        self.faults = FaultPlan(
            rate=settings.fault_rate, seed=settings.seed, random_kinds=self.random_faults
        )
        self._jitter = random.Random(settings.seed)
        self.app = Starlette(routes=self._routes())

    @abstractmethod
    def _routes(self) -> list[Route]:
        """The vendor's routes, each made with `_route`."""

    @abstractmethod
    def _fault_answer(self, fault: Fault) -> Answer:
        """The vendor's answer for an injected 5xx or throttle fault."""

    def _route(self, path: str, method: str, handler: Handler, items_of: ItemsOf) -> Route:
        """A route that runs `handler` through latency, faults and the request log."""

        async def endpoint(request: Request) -> Response:
            return await self._exchange(request, handler, items_of)

        return Route(path, endpoint, methods=[method])

    async def _exchange(self, request: Request, handler: Handler, items_of: ItemsOf) -> Response:
        incoming = await _read(request)
        arrived, seq = self.clock(), next(_arrivals)
        if self.settings.latency_ms > 0:
            jitter = self.settings.latency_jitter_ms
            await anyio.sleep(
                (self.settings.latency_ms + self._jitter.uniform(-jitter, jitter)) / 1000
            )
        fault = self.faults.take(incoming.path)
        if fault is None or fault.kind in ("delay", "drop"):
            answer = _run(handler, incoming)
        else:
            answer = self._fault_answer(fault)
        dropped = fault is not None and fault.kind == "drop"
        self.log.append(
            LoggedRequest(
                time=arrived,
                vendor=self.vendor,
                method=incoming.method,
                path=incoming.path,
                query=dict(incoming.query),
                body=incoming.body,
                status=None if dropped else answer.status,
                code=answer.code,
                items=items_of(incoming),
                fault=fault.kind if fault else None,
                seq=seq,
            )
        )
        if fault is not None and fault.kind == "delay":
            await anyio.sleep(fault.delay_s)
        return _render(answer, _DroppedResponse if dropped else Response)


def retry_after_header(fault: Fault) -> dict[str, str]:
    """The `Retry-After` header a throttle fault asks for, if any."""
    if fault.retry_after is None:
        return {}
    return {"Retry-After": f"{fault.retry_after:g}"}


def _run(handler: Handler, incoming: Incoming) -> Answer:
    try:
        return handler(incoming)
    except Reject as reject:
        return reject.answer


async def _read(request: Request) -> Incoming:
    raw = await request.body()
    body: Any = None
    json_ok = False
    if raw:
        try:
            body = orjson.loads(raw)
            json_ok = True
        except orjson.JSONDecodeError:
            body = None
    return Incoming(
        method=request.method,
        path=_vendor_path(request.scope),
        url=str(request.url),
        path_params=dict(request.path_params),
        query=dict(request.query_params),
        headers=request.headers,
        body=body,
        json_ok=json_ok,
    )


def _vendor_path(scope: Scope) -> str:
    """The decoded path below the mount point (the composite app mounts each vendor)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _render(answer: Answer, response_class: type[Response]) -> Response:
    if isinstance(answer.body, str):
        content = answer.body.encode()
        media_type = "text/plain; charset=utf-8"
    elif isinstance(answer.body, bytes):  # a file (an Easemob export)
        content = answer.body
        media_type = "application/octet-stream"
    else:
        content = orjson.dumps(answer.body)
        media_type = "application/json"
    return response_class(
        content=content,
        status_code=answer.status,
        headers=dict(answer.headers),
        media_type=media_type,
    )


class _DroppedResponse(Response):
    """Sends the answer's headers, then drops the connection instead of the body."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        raise ConnectionDropped("the emulator dropped the connection (fault 'drop')")
