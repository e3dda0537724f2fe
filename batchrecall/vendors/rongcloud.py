"""RongCloud (融云) adapter: recall one message a call, clean a conversation's history.

Sources: research/vendors-tencent-rongcloud.md Part R. Both APIs take a form body
(`application/x-www-form-urlencoded`) and answer JSON `{"code": 200}` on success; a refusal
carries `code` and `errorMessage` (the official Java SDK's error table) with the HTTP status
RongCloud's status-code table gives it (§R4).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import httpx

from batchrecall.config import LaneSettings
from batchrecall.errors import (
    ErrorCode,
    LaneFatalError,
    ThrottledError,
    TransientCallError,
)
from batchrecall.models import Call, Item, ItemOutcome, Op, Status, Vendor
from batchrecall.vendors.base import Adapter, json_body, outcomes_for, retry_after, server_error
from batchrecall.vendors.rongcloud_signature import new_nonce, signed_headers, timestamp

RECALL_PATH = "/message/recall.json"  # §R2
CLEAN_PATH = "/conversation/message/history/clean.json"  # §R3, seen in the Go SDK only
SUCCESS = 200
THROTTLED = 1008  # "调用频率超限", HTTP 429
# The limit is counted a second ("每秒钟限 100 次"); how long to wait is not documented.
THROTTLE_PAUSE_S = 1.0

# Codes of RongCloud's status-code table (§R4) that stop the lane: nothing the lane sends can
# succeed until the operator fixes the app. 1001 and 1004 are the signature's (key and secret
# do not match, bad signature), 1006 a locked or deleted app; 1007 "该方法被限制调用" and 1009
# "未开通该服务" refuse the API itself.
_LANE_CODES: dict[int, ErrorCode] = {
    1001: ErrorCode.AUTH_FAILED,
    1004: ErrorCode.AUTH_FAILED,
    1006: ErrorCode.AUTH_FAILED,
    1007: ErrorCode.SERVICE_DISABLED,
    1009: ErrorCode.SERVICE_DISABLED,
}
# Where only the HTTP status is readable (the table pairs each code with one).
_LANE_STATUSES: dict[int, ErrorCode] = {
    401: ErrorCode.AUTH_FAILED,
    430: ErrorCode.SERVICE_DISABLED,
}
# 1000 "服务内部错误" (500) and 1050 "内部服务超时" (504): retried, as any 5xx.
_SERVER_CODES = frozenset({1000, 1050})
# The item's own refusal: a parameter error, no POST data, a parameter too long.
_BAD_REQUEST_CODES = frozenset({1002, 1003, 1005})
# 1015 "删除的数据不存在" is read as not found; what RongCloud answers for an unknown or an
# already recalled message is not documented (inferred: README).
_NOT_FOUND_CODES = frozenset({1015})
# 404 "服务器找不到请求的地址" is the address's, not the message's: a wrong base_url or a gateway.
_NO_SUCH_ADDRESS = 404


class RongCloudAdapter(Adapter):
    vendor = Vendor.RONGCLOUD
    default_throttle_pause_s = THROTTLE_PAUSE_S

    def __init__(
        self,
        settings: LaneSettings,
        client: httpx.AsyncClient,
        *,
        wall_clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] = new_nonce,
    ) -> None:
        super().__init__(settings, client)
        self._wall_clock = wall_clock
        self._nonce = nonce

    def auth_headers(self) -> dict[str, str]:
        """Fresh for every request: a new Nonce and the Timestamp in the lane's unit."""
        headers = signed_headers(
            self.settings.credentials["app_key"],
            self.settings.secret("app_secret"),
            nonce=self._nonce(),
            timestamp=timestamp(self._wall_clock(), self.settings.setting("timestamp_unit")),
        )
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        headers["Accept"] = "application/json"
        return headers

    async def send(self, call: Call) -> list[ItemOutcome]:
        path = RECALL_PATH if call.op is Op.RECALL else CLEAN_PATH
        response = await self.request(
            "POST",
            self.url(path),
            content=form_body(call.items[0]).encode(),
            headers=self.auth_headers(),
        )
        return outcomes_for(call, self._outcome(response))

    def _outcome(self, response: httpx.Response) -> ItemOutcome:
        answer = json_body(response)
        status = response.status_code
        code = _code(answer.get("code"))
        message = str(answer.get("errorMessage") or answer.get("msg") or "")
        details: dict[str, Any] = {
            "http_status": status,
            "vendor_code": "" if code is None else str(code),
        }
        if code == SUCCESS and status == 200:
            return ItemOutcome(status=Status.OK, **details)
        text = message or (f"code {code}" if code is not None else f"HTTP {status}")
        if code == THROTTLED or (code is None and status == 429):
            pause = retry_after(response, now=self._wall_clock())
            raise ThrottledError(ErrorCode.RATE_LIMITED, text, retry_after=pause, **details)
        lane_error = _LANE_CODES.get(code) if code is not None else _LANE_STATUSES.get(status)
        if lane_error is not None:
            raise LaneFatalError(lane_error, text, **details)
        if code in _SERVER_CODES or status >= 500 or status == 408:
            server_error(response, text, details["vendor_code"])
        if code == _NO_SUCH_ADDRESS or (code is None and status == 404):
            raise TransientCallError(ErrorCode.VENDOR_UNAVAILABLE, text, **details)
        if code in _NOT_FOUND_CODES:
            return ItemOutcome(
                status=Status.NOT_FOUND, error=ErrorCode.NOT_FOUND, message=text, **details
            )
        if code in _BAD_REQUEST_CODES:
            return ItemOutcome(
                status=Status.FAILED, error=ErrorCode.BAD_REQUEST, message=text, **details
            )
        return _unrecognised(code, message, details)


def form_body(item: Item) -> str:
    """The item's form fields as RongCloud reads them: numbers as digits, booleans as
    true/false (the Go SDK's `strconv.FormatBool`)."""
    fields = {
        name: ("true" if value else "false") if isinstance(value, bool) else str(value)
        for name, value in item.params.items()
    }
    return urlencode(fields)


def _code(value: Any) -> int | None:
    """The body's `code`: an integer, or its digits (the Java SDK's table writes "200")."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 10:
        return int(value)
    return None


def _unrecognised(code: int | None, message: str, details: dict[str, Any]) -> ItemOutcome:
    """An answer not in the table. A refusal (4xx) did nothing: failed with RongCloud's words.
    Any other may have acted: unknown, sent again by --resume."""
    what = f"unrecognised answer code {code}" if code is not None else "unreadable answer"
    text = what + (f": {message}" if message else "")
    refused = 400 <= details["http_status"] < 500
    return ItemOutcome(
        status=Status.FAILED if refused else Status.UNKNOWN,
        error=ErrorCode.VENDOR_ERROR,
        message=text,
        **details,
    )
