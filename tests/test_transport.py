"""The run's HTTP client over real sockets: what each transport failure becomes, the timeout, the
pool size, and that no request is sent twice behind the engine's back.

Every server here is a bare asyncio server on 127.0.0.1, on a port picked at run time.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import ClassVar

import httpx
import pytest

from batchrecall.config import LaneSettings, RunSettings
from batchrecall.errors import ErrorCode, TransientCallError, UnconfirmedCallError
from batchrecall.models import Call, ItemOutcome, LaneKey, Op, Vendor
from batchrecall.run.transport import open_client
from batchrecall.vendors.base import Adapter

_OK = (
    b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 13\r\n\r\n{"code":200}\n'
)


class _Probe(Adapter):
    """The smallest adapter: only its shared `request` is under test."""

    vendor = Vendor.GOEASY
    ops: ClassVar[Mapping[Op, int]] = {}

    async def send(self, call: Call) -> list[ItemOutcome]:
        raise NotImplementedError


def _probe(client: httpx.AsyncClient, base_url: str) -> _Probe:
    settings = LaneSettings(
        lane=LaneKey(vendor=Vendor.GOEASY, app="default"), base_url=base_url, rate=10
    )
    return _Probe(settings, client)


@dataclass
class _Server:
    """Counts requests and connections; `on_request(n, writer)` answers request number n."""

    on_request: Callable[[int, asyncio.StreamWriter], None]
    requests: int = 0
    connections: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    heads: list[bytes] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                self.requests += 1
                self.on_request(self.requests, writer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass


@asynccontextmanager
async def _serving(
    on_request: Callable[[int, asyncio.StreamWriter], None],
) -> AsyncIterator[tuple[_Server, str]]:
    state = _Server(on_request)
    server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield state, f"http://127.0.0.1:{port}"
    finally:
        for writer in state.writers:
            writer.close()
        server.close()
        await server.wait_closed()


def _answer(n: int, writer: asyncio.StreamWriter) -> None:
    writer.write(_OK)


def _never_answer(n: int, writer: asyncio.StreamWriter) -> None:
    pass


def _drop(n: int, writer: asyncio.StreamWriter) -> None:
    writer.transport.abort()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.anyio
async def test_an_answer_comes_through_with_its_body() -> None:
    async with _serving(_answer) as (server, base), open_client(RunSettings()) as client:
        answer = await _probe(client, base).request("POST", base + "/x", json={"a": 1})
    assert answer.status_code == 200
    assert answer.json() == {"code": 200}
    assert server.requests == 1


@pytest.mark.anyio
async def test_a_refused_connection_is_unavailable_and_not_delivered() -> None:
    base = f"http://127.0.0.1:{_free_port()}"
    async with open_client(RunSettings()) as client:
        with pytest.raises(TransientCallError) as caught:
            await _probe(client, base).request("DELETE", base + "/x")
    assert caught.value.code == ErrorCode.VENDOR_UNAVAILABLE
    assert not isinstance(caught.value, UnconfirmedCallError)
    assert caught.value.delivered is False


@pytest.mark.anyio
async def test_no_answer_within_the_request_timeout_is_a_timeout() -> None:
    settings = RunSettings(request_timeout_s=0.3)
    async with _serving(_never_answer) as (server, base), open_client(settings) as client:
        start = time.monotonic()
        with pytest.raises(UnconfirmedCallError) as caught:
            await _probe(client, base).request("DELETE", base + "/x")
        waited = time.monotonic() - start
    assert caught.value.code == ErrorCode.TIMEOUT
    assert server.requests == 1
    assert 0.3 <= waited < 5.0


@pytest.mark.anyio
async def test_a_dropped_connection_is_unavailable_and_may_have_been_delivered() -> None:
    async with _serving(_drop) as (server, base), open_client(RunSettings()) as client:
        with pytest.raises(UnconfirmedCallError) as caught:
            await _probe(client, base).request("DELETE", base + "/x")
    assert caught.value.code == ErrorCode.VENDOR_UNAVAILABLE
    assert caught.value.delivered is True
    assert server.requests == 1


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["DELETE", "POST"])
async def test_a_request_is_never_resent_when_a_reused_connection_drops(method: str) -> None:
    """aiohttp resends an idempotent request once when a kept-alive connection drops; the vendor
    would then receive a request that the engine never counted in `attempts`."""

    def first_answered_then_dropped(n: int, writer: asyncio.StreamWriter) -> None:
        if n == 1:
            writer.write(_OK)
        else:
            writer.transport.abort()

    async with (
        _serving(first_answered_then_dropped) as (server, base),
        open_client(RunSettings()) as client,
    ):
        probe = _probe(client, base)
        await probe.request(method, base + "/x")
        with pytest.raises(UnconfirmedCallError):
            await probe.request(method, base + "/x")
    assert server.connections == 1, "the second request reused the first one's connection"
    assert server.requests == 2


@pytest.mark.anyio
async def test_the_pool_is_sized_from_concurrency() -> None:
    settings = RunSettings(concurrency=3)
    async with _serving(_answer) as (server, base), open_client(settings) as client:
        probe = _probe(client, base)
        await asyncio.gather(*(probe.request("DELETE", f"{base}/{n}") for n in range(40)))
    assert server.requests == 40
    # Room for the run's concurrency and a few token requests; never one per request.
    assert 3 <= server.connections <= 3 + 4


@pytest.mark.anyio
async def test_a_given_transport_is_used_as_it_is() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"code": 200})

    async with open_client(RunSettings(), httpx.MockTransport(answer)) as client:
        answer_ = await client.get("http://127.0.0.1/anything")
    assert answer_.json() == {"code": 200}
    assert [str(r.url) for r in seen] == ["http://127.0.0.1/anything"]


@pytest.mark.anyio
async def test_the_path_goes_out_as_httpx_encoded_it() -> None:
    """Ids carry `|`, spaces and `#`: the request line holds httpx's encoding, unchanged."""
    async with _serving(_answer) as (server, base), open_client(RunSettings()) as client:
        url = base + "/im/v2/conversations/a%7C1%7Cb/m|1 2"
        await _probe(client, base).request("DELETE", url, params={"ids": "x y#z"})
    request_line = server.heads[0].split(b"\r\n")[0]
    assert (
        request_line == b"DELETE " + httpx.URL(url, params={"ids": "x y#z"}).raw_path + b" HTTP/1.1"
    )


@pytest.mark.anyio
async def test_a_cookie_the_vendor_sets_is_never_sent_back() -> None:
    def set_cookie(n: int, writer: asyncio.StreamWriter) -> None:
        writer.write(_OK.replace(b"\r\n\r\n", b"\r\nset-cookie: sid=abc; Path=/\r\n\r\n", 1))

    async with _serving(set_cookie) as (server, base), open_client(RunSettings()) as client:
        probe = _probe(client, base)
        first = await probe.request("POST", base + "/x")
        await probe.request("POST", base + "/x")
    assert first.headers["set-cookie"].startswith("sid=abc")
    assert all(b"cookie" not in head.lower().replace(b"set-cookie", b"") for head in server.heads)
    assert server.requests == 2
