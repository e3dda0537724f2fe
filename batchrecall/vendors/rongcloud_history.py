"""RongCloud's hourly message history log, the wire only (research/history-apis.md §6,
vendors-tencent-rongcloud.md §R5): `POST /message/history.json` with the form `date=yyyyMMddHH`
(Beijing time) answers `{"code": 200, "url": "...", "date": "..."}`, `url` empty when the hour has
no data (or none yet: the hour's file is made some hours after it); files are kept 3 days.
The service must be enabled in the console: else 1009 (HTTP 430), which stops the collect.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx

from batchrecall.errors import (
    ErrorCode,
    LaneFatalError,
    PermanentCallError,
    ThrottledError,
)
from batchrecall.vendors.base import json_body, retry_after, server_error
from batchrecall.vendors.easemob_history import HourMissing

__all__ = ["HISTORY_PATH", "HOUR_OFFSET", "history_form", "read_history_answer"]

HISTORY_PATH = "/message/history.json"
HOUR_OFFSET = "+08:00"  # the date is Beijing time
_DISABLED = 1009  # "未开通该服务" (HTTP 430)
_THROTTLED = 1008
_AUTH = frozenset({1001, 1004, 1006, 1007})
_SERVER = frozenset({1000, 1050})


def history_form(hour: str) -> bytes:
    return urlencode({"date": hour}).encode()


def read_history_answer(response: httpx.Response, *, now: float) -> list[str] | HourMissing:
    """The hour's download URL, its absence, or our error: 1009 service disabled and the
    signature's codes stop the lane; 1008 / 429 throttled; 1000, 1050 and 5xx transient."""
    answer = json_body(response)
    status = response.status_code
    code = _code(answer.get("code"))
    words = str(answer.get("errorMessage") or answer.get("msg") or "")
    details: dict[str, Any] = {"http_status": status, "vendor_code": str(code or "")}
    if code == 200 and status == 200:
        url = answer.get("url")
        if url in (None, ""):
            return HourMissing(200, "url empty", "RongCloud has no history log for the hour")
        if isinstance(url, str) and url.startswith(("https://", "http://")):
            return [url]
        raise PermanentCallError(
            ErrorCode.VENDOR_ERROR, "the answer's url is not a link", **details
        )
    text = words or (f"code {code}" if code is not None else f"HTTP {status}")
    if code == _DISABLED or (code is None and status == 430):
        raise LaneFatalError(
            ErrorCode.SERVICE_DISABLED,
            f"the message history log is not enabled for this app ({text}): enable it in "
            "RongCloud's console (only hours after that are logged)",
            **details,
        )
    if code == _THROTTLED or (code is None and status == 429):
        raise ThrottledError(
            ErrorCode.RATE_LIMITED, text, retry_after=retry_after(response, now=now), **details
        )
    if code in _AUTH or (code is None and status == 401):
        raise LaneFatalError(ErrorCode.AUTH_FAILED, text, **details)
    if code in _SERVER or status >= 500:
        server_error(response, text, details["vendor_code"])
    raise PermanentCallError(ErrorCode.VENDOR_ERROR, text, **details)


def _code(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 10:
        return int(value)
    return None
