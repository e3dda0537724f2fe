"""The emulators served over HTTP on a free loopback port from a thread, for `collect` run as
the operator runs it (its own event loop), with a config pointing at them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx

from batchrecall.emulators.server import EmulatorSet, serve


@contextmanager
def served(emulators: EmulatorSet, config: Path) -> Iterator[str]:
    """Serve `emulators` until the block ends; write `config` for them; yield the base URL."""
    ready = threading.Event()
    port: list[int] = []
    stop: list[anyio.Event] = []
    token: list[anyio.lowlevel.EventLoopToken] = []

    async def main() -> None:
        stop.append(anyio.Event())
        token.append(anyio.lowlevel.current_token())

        def up(bound: int) -> None:
            port.append(bound)
            ready.set()

        await serve(emulators, "127.0.0.1", 0, ready=up, shutdown_event=stop[0])

    thread = threading.Thread(target=anyio.run, args=(main,), daemon=True)
    thread.start()
    assert ready.wait(30), "the emulators did not start"
    base_url = f"http://127.0.0.1:{port[0]}"
    config.write_text(emulators.config_toml(base_url), encoding="utf-8")
    try:
        yield base_url
    finally:
        anyio.from_thread.run_sync(stop[0].set, token=token[0])
        thread.join(30)


class Gate(httpx.AsyncBaseTransport):
    """Holds every request until `width` are in flight at once (5 s at most)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, width: int) -> None:
        self.inner, self.width, self.in_flight = inner, width, 0
        self.full = anyio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.in_flight += 1
        if self.in_flight >= self.width:
            self.full.set()
        try:
            with anyio.fail_after(5):
                await self.full.wait()
            return await self.inner.handle_async_request(request)
        finally:
            self.in_flight -= 1
