"""The adapter interface every vendor implements, and the HTTP error translation they share."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import httpx
import orjson

from batchrecall import catalog
from batchrecall.config import LaneSettings
from batchrecall.errors import (
    ErrorCode,
    LaneFatalError,
    TransientCallError,
    UnconfirmedCallError,
)
from batchrecall.models import Call, ItemOutcome, Op, Vendor
from batchrecall.redact import register_secret

NO_ITEMS_EXTENSION = "batchrecall_no_items"
NO_ITEMS: dict[str, Any] = {NO_ITEMS_EXTENSION: True}
"""httpx request extensions of a request that carries no item (a token request): its leaving
does not mean the call reached the vendor."""


class Adapter(ABC):
    """Turns one planned call into one vendor request, and the answer into per-item outcomes.

    `send` returns outcomes (in the call's item order) when the vendor answered per item, and
    raises a `CallError` when the call failed as a whole.
    """

    vendor: ClassVar[Vendor]

    default_throttle_pause_s: ClassVar[float] = 0.5

    def __init__(self, settings: LaneSettings, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.client = client
        self.spec = catalog.get(settings.lane.vendor)
        """The vendor's registration: its ops' limits and pacing."""
        for secret in settings.secrets.values():
            register_secret(secret.reveal())

    def max_items(self, op: Op) -> int:
        """Items a call of `op` carries now (the registration's limit, under the lane's
        settings)."""
        return self.spec.items_per_call(op, self.settings.setting)

    def pacing_key(self, call: Call) -> str | None:
        """A key whose own rate limit applies to this call, beyond the lane's (None: none): the
        value of the param the op's registration names as `pacing_field`."""
        field = self.spec.op(call.op).pacing_field
        return None if field is None else str(call.items[0].params[field])

    async def prepare(self) -> None:  # noqa: B027 - optional hook
        """Get ready to send (an auth token) before the call takes its place in the rate limit."""

    async def refresh_auth(self, token_generation: int) -> None:  # noqa: B027 - optional hook
        """Called after a TokenRejectedError: drop the token if it is still the rejected one."""

    @abstractmethod
    async def send(self, call: Call) -> list[ItemOutcome]: ...

    def url(self, path: str) -> str:
        return self.settings.base_url + path

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send one request; transport failures become our transient errors."""
        try:
            return await self.client.request(method, url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise TransientCallError(
                ErrorCode.VENDOR_UNAVAILABLE,
                f"cannot connect: {exc.__class__.__name__}",
                delivered=False,
            ) from exc
        except httpx.TimeoutException as exc:
            raise UnconfirmedCallError(
                ErrorCode.TIMEOUT, "no answer within the request timeout"
            ) from exc
        except httpx.TransportError as exc:
            raise UnconfirmedCallError(
                ErrorCode.VENDOR_UNAVAILABLE, f"connection lost: {exc.__class__.__name__}"
            ) from exc
        except httpx.InvalidURL as exc:
            raise LaneFatalError(ErrorCode.BAD_REQUEST, f"invalid URL: {exc}") from exc


def json_body(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object, or {} when there is none."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


def retry_after(response: httpx.Response, *, now: float | None = None) -> float | None:
    """Seconds the answer's `Retry-After` asks for: a number of seconds or an HTTP date
    (RFC 9110 §10.2.3), counted from the answer's `Date` when it has one, else from `now`
    (default: the wall clock); capped at 10 minutes, None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        when = _http_date(value)
        if when is None:
            return None
        sent = _http_date(response.headers.get("Date", ""))
        seconds = when - (sent if sent is not None else time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, min(seconds, 600.0))


def _http_date(text: str) -> float | None:
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # an HTTP date is always GMT
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def outcomes_for(call: Call, outcome: ItemOutcome) -> list[ItemOutcome]:
    return [outcome] * len(call.items)


def server_error(response: httpx.Response, message: str, vendor_code: str = "") -> None:
    """Raise the transient error of an HTTP 5xx answer."""
    raise TransientCallError(
        ErrorCode.VENDOR_UNAVAILABLE,
        message or f"HTTP {response.status_code}",
        http_status=response.status_code,
        vendor_code=vendor_code,
        retry_after=retry_after(response),
    )
