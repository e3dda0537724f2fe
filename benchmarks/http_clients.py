"""Raw HTTP client speed: one async client, a semaphore, a loopback server answering late.

Each figure is requests/s and the client process's CPU per request (user + system time from
`resource.getrusage`), for the transports a run could use.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass

import aiohttp
import httpx
import httpx_aiohttp

from batchrecall.config import RunSettings
from batchrecall.run.transport import open_client
from benchmarks.processes import serving

_HEADERS = {"AppKey": "bench", "Nonce": "0123456789abcdef", "CurTime": "1", "CheckSum": "x" * 40}


@dataclass(frozen=True)
class Speed:
    per_s: float
    cpu_ms: float
    """Client CPU (user + system) per request, in milliseconds."""


@contextmanager
def loopback_server(delay_ms: float) -> Iterator[str]:
    """`benchmarks.loopback` in its own process; yields its base URL."""
    with serving("benchmarks.loopback", "--delay-ms", str(delay_ms)) as port:
        yield f"http://127.0.0.1:{port}"


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@asynccontextmanager
async def _httpx_default(concurrency: int) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=15) as client:
        yield client


@asynccontextmanager
async def _httpx_aiohttp(concurrency: int) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    transport = httpx_aiohttp.AiohttpTransport(limits=limits)
    async with httpx.AsyncClient(transport=transport, timeout=15) as client:
        yield client


def _ours(concurrency: int) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    return open_client(RunSettings(concurrency=concurrency))


HTTPX_CLIENTS: dict[str, Callable[[int], AbstractAsyncContextManager[httpx.AsyncClient]]] = {
    "httpx 0.28 (httpcore pool)": _httpx_default,
    "httpx + httpx-aiohttp AiohttpTransport": _httpx_aiohttp,
    "httpx + batchrecall.run.transport": _ours,
}


async def _drive(send: Callable[[int], Awaitable[None]], concurrency: int, calls: int) -> Speed:
    """`calls` requests from `concurrency` workers; warmed up by one round first."""

    async def run(count: int) -> None:
        numbers = iter(range(count))

        async def worker() -> None:
            for n in numbers:
                await send(n)

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    await run(concurrency)  # open the connections first
    cpu, start = _cpu_s(), time.perf_counter()
    await run(calls)
    elapsed, used = time.perf_counter() - start, _cpu_s() - cpu
    return Speed(per_s=calls / elapsed, cpu_ms=used / calls * 1000)


async def measure_httpx(name: str, base: str, concurrency: int, calls: int) -> Speed:
    async with HTTPX_CLIENTS[name](concurrency) as client:

        async def send(n: int) -> None:
            answer = await client.request(
                "DELETE", f"{base}/im/v2/conversations/a%7C1%7Cb/messages/{n}", headers=_HEADERS
            )
            answer.raise_for_status()

        return await _drive(send, concurrency, calls)


async def measure_aiohttp(base: str, concurrency: int, calls: int) -> Speed:
    """aiohttp on its own: the floor under any httpx transport built on it."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send(n: int) -> None:
            url = f"{base}/im/v2/conversations/a%7C1%7Cb/messages/{n}"
            async with session.request("DELETE", url, headers=_HEADERS) as answer:
                await answer.read()
                answer.raise_for_status()

        return await _drive(send, concurrency, calls)


def main() -> None:
    """Quick look: every client at concurrency 8, 64 and 256."""
    with loopback_server(50) as base:
        for concurrency in (8, 64, 256):
            for name in HTTPX_CLIENTS:
                calls = 10 * concurrency
                speed = asyncio.run(measure_httpx(name, base, concurrency, calls))
                print(f"{concurrency:>4} {name:<42} {speed.per_s:8.0f}/s {speed.cpu_ms:.3f} ms")
            speed = asyncio.run(measure_aiohttp(base, concurrency, 10 * concurrency))
            print(
                f"{concurrency:>4} {'aiohttp alone':<42} {speed.per_s:8.0f}/s {speed.cpu_ms:.3f} ms"
            )


if __name__ == "__main__":
    main()
