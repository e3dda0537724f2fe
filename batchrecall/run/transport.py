"""The HTTP client of a run: httpx for the adapters, aiohttp's connection pool underneath.

httpx's own pool (httpcore 1.0) scans every connection on every request and stalls past a few
dozen requests in flight; aiohttp's keeps up at hundreds for a fraction of the CPU (measured in
`make bench`, written up in docs/benchmarks.md). The adapters and tests still speak httpx only:
this module turns aiohttp's errors into httpx's, so `Adapter.request` maps them to our codes, and
switches off aiohttp's silent resend of idempotent requests (a DELETE at Yunxin), so that every
request the vendor received is one the engine sent and counted.
"""

from __future__ import annotations

import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import httpx
import yarl

from batchrecall.config import RunSettings

# Connections beyond `concurrency`, for token requests made outside the run's concurrency slots.
_SPARE_CONNECTIONS = 4
# An idle keep-alive connection is closed after this long (httpx's default too).
_KEEPALIVE_S = 5.0


@asynccontextmanager
async def open_client(
    settings: RunSettings, transport: httpx.AsyncBaseTransport | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The run's client: `transport` as given (in-process emulators, tests), else aiohttp's pool
    sized for `settings.concurrency`, every request bounded by `settings.request_timeout_s`."""
    timeout = httpx.Timeout(settings.request_timeout_s)
    if transport is None:
        transport = AiohttpTransport(max_connections=settings.concurrency + _SPARE_CONNECTIONS)
    async with _CookielessClient(
        transport=transport, timeout=timeout, follow_redirects=False
    ) as client:
        yield client


class _NoCookies(httpx.Cookies):
    """A jar that stays empty: vendors' APIs set no cookies and must be sent none."""

    def extract_cookies(self, response: httpx.Response) -> None:
        pass


class _CookielessClient(httpx.AsyncClient):
    """httpx's client without its cookie jar: reading every answer for cookies (through
    `http.cookiejar`) cost a sixth of a request's CPU, for cookies no vendor sets."""

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: httpx._types.CookieTypes) -> None:
        pass  # the jar stays empty


_NO_COOKIES = _NoCookies()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests through one aiohttp session; reads each answer whole.

    Timeouts follow httpx's meaning: `connect` bounds waiting for a pooled connection and
    opening one, `read` bounds each wait for the answer's bytes.
    """

    def __init__(self, *, max_connections: int) -> None:
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=0,
            keepalive_timeout=_KEEPALIVE_S,
            ssl=httpx.create_ssl_context(),  # the CA bundle httpx would use
        )
        session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # httpx keeps the cookies, if any
            auto_decompress=False,  # httpx decodes, as for its own transport
            # Reading the proxy variables costs more than the rest of a request: only when set.
            trust_env=bool(urllib.request.getproxies()),
        )
        # aiohttp resends a DELETE/PUT once when a reused connection drops; that resend would
        # reach the vendor without the engine counting it.
        session._retry_connection = False
        return session

    async def __aenter__(self) -> AiohttpTransport:
        # Opened before the first request: building the TLS context takes some 20 ms, which
        # would otherwise hold the first request after its rate permit and bunch it with the next.
        if self._session is None:
            self._session = self._open()
        return self

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._session is None:
            self._session = self._open()
        timeouts = request.extensions.get("timeout", {})
        body = await request.aread()
        try:
            async with self._session.request(
                request.method,
                yarl.URL(str(request.url), encoded=True),  # httpx has quoted it already
                headers=request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=timeouts.get("connect"),
                    sock_connect=timeouts.get("connect"),
                    sock_read=timeouts.get("read"),
                ),
            ) as answer:
                content = await answer.read()
                status, headers = answer.status, answer.raw_headers
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc), request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise httpx.ReadTimeout(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            # Disconnected, reset, a broken answer: the request may have reached the vendor.
            raise httpx.RemoteProtocolError(
                str(exc) or type(exc).__name__, request=request
            ) from exc
        return httpx.Response(
            status_code=status,
            headers=headers,
            stream=httpx.ByteStream(content),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
