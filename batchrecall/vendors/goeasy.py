"""GoEasy adapter: admin recall of up to 20 timestamps of one conversation per call."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from batchrecall.errors import (
    ErrorCode,
    LaneFatalError,
    SplitCallError,
    ThrottledError,
)
from batchrecall.models import Call, ItemOutcome, Status, Vendor
from batchrecall.vendors.base import Adapter, json_body, outcomes_for, retry_after, server_error

# GoEasy documents no refusal text for recall (seed 001 shows only 401 "Unauthorized"). These
# are the built-in emulator's own words (inferred, not GoEasy's): only they are read; any other
# refusal is `failed` / `vendor-error` with GoEasy's words, not a guess at what they mean.
_INFERRED_REFUSALS: tuple[tuple[str, Status, ErrorCode], ...] = (
    ("message not found", Status.NOT_FOUND, ErrorCode.NOT_FOUND),
    ("recall time limit exceeded", Status.FAILED, ErrorCode.RECALL_WINDOW_EXCEEDED),
)


class GoEasyAdapter(Adapter):
    vendor = Vendor.GOEASY

    async def send(self, call: Call) -> list[ItemOutcome]:
        response = await self.request(
            "POST",
            self.url("/v2/im/history/recall"),
            content=orjson.dumps(self._body(call)),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        answer = json_body(response)
        code = answer.get("code")
        if response.status_code == 200 and code == 200:
            # GoEasy answers for the whole call: every timestamp of it is recalled.
            return outcomes_for(
                call, ItemOutcome(status=Status.OK, http_status=200, vendor_code="200")
            )
        return self._refused(call, response, answer)

    def _body(self, call: Call) -> dict[str, Any]:
        first = call.items[0].params
        body: dict[str, Any] = {"appkey": self.settings.secret("appkey")}
        if "recaller" in first:
            body["recaller"] = first["recaller"]
        if "groupId" in first:
            body["groupId"] = first["groupId"]
        else:
            body["userAId"] = first["userAId"]
            body["userBId"] = first["userBId"]
        body["messages"] = [int(item.params["timestamp"]) for item in call.items]
        return body

    def _refused(
        self, call: Call, response: httpx.Response, answer: dict[str, Any]
    ) -> list[ItemOutcome]:
        status = response.status_code
        code = answer.get("code")
        content = str(answer.get("content") or f"HTTP {status}")
        vendor_code = "" if code is None else str(code)
        details: dict[str, Any] = {"http_status": status, "vendor_code": vendor_code}
        if status == 401 or code == 401:
            raise LaneFatalError(ErrorCode.AUTH_FAILED, content, **details)
        if status == 429 or code == 429:
            raise ThrottledError(
                ErrorCode.RATE_LIMITED, content, retry_after=retry_after(response), **details
            )
        if status >= 500 or (isinstance(code, int) and code >= 500):
            server_error(response, content, vendor_code)
        if len(call.items) > 1:
            # The answer covers the whole call: one bad timestamp would sink the others.
            raise SplitCallError(ErrorCode.BATCH_REJECTED, content, **details)
        return [_single_refusal(content, details)]


def _single_refusal(content: str, details: dict[str, Any]) -> ItemOutcome:
    lowered = content.lower()
    for text, status, error in _INFERRED_REFUSALS:
        if lowered.startswith(text):
            return ItemOutcome(status=status, error=error, message=content, **details)
    return ItemOutcome(
        status=Status.FAILED, error=ErrorCode.VENDOR_ERROR, message=content, **details
    )
