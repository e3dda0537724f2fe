"""Helpers of the emulator tests: a fake clock and an HTTP client over an ASGI app."""

from __future__ import annotations

import httpx
from starlette.types import ASGIApp

START = 1_700_000_000.0


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def client_for(app: ASGIApp) -> httpx.AsyncClient:
    """An HTTP client that talks to `app` in process."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://emulator")
