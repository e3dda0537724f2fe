"""GoEasy IM history, the wire only (research/history-apis.md §2.1, [DOC] the 2.x REST history
page): `GET /v2/im/history?appkey&userAId&userBId|groupId&limit&lasttimestamp`, a conversation's
messages sent before `lasttimestamp` (exclusive), newest first, at most 30 a call."""

from __future__ import annotations

from dataclasses import dataclass
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

__all__ = ["MAX_LIMIT", "HistoryMessage", "history_path", "read_history"]

MAX_LIMIT = 30  # "limit ... 默认 10, 最大 30" (v2) [DOC]
PATH = "/v2/im/history"


@dataclass(frozen=True, slots=True)
class HistoryMessage:
    timestamp: int
    """The message's send time (ms): also what a recall names it by."""
    sender: str
    recalled: bool


def history_path(
    appkey: str, conversation: dict[str, str], *, before_ms: int, limit: int = MAX_LIMIT
) -> str:
    """`conversation`: {"groupId": ...} or {"userAId": ..., "userBId": ...}. The appkey goes in
    the query, as the page shows: the path is a secret, never logged."""
    query = {"appkey": appkey, **conversation, "limit": str(limit), "lasttimestamp": str(before_ms)}
    return f"{PATH}?{urlencode(query)}"


def read_history(response: httpx.Response) -> tuple[list[HistoryMessage], int]:
    """The answer's messages (the malformed left out) and how many entries it held; our error
    for a refusal: 401 the lane's, 429 throttled, 5xx transient, anything else permanent."""
    answer = json_body(response)
    code = answer.get("code")
    status = response.status_code
    words = answer.get("content")
    text = words if isinstance(words, str) else f"HTTP {status}"
    details: dict[str, Any] = {
        "http_status": status,
        "vendor_code": "" if code is None else str(code),
    }
    if status == 401 or code == 401:
        raise LaneFatalError(ErrorCode.AUTH_FAILED, text, **details)
    if status == 429 or code == 429:
        raise ThrottledError(
            ErrorCode.RATE_LIMITED, text, retry_after=retry_after(response), **details
        )
    if status >= 500 or (isinstance(code, int) and not isinstance(code, bool) and code >= 500):
        server_error(response, text, details["vendor_code"])
    if status != 200 or code != 200 or not isinstance(words, list):
        raise PermanentCallError(ErrorCode.VENDOR_ERROR, text, **details)
    messages = []
    for entry in words:
        message = _message(entry)
        if message is not None:
            messages.append(message)
    return messages, len(words)


def _message(entry: Any) -> HistoryMessage | None:
    """An entry of `content`: `timestamp` (ms) and `senderId`; `recalled` true once recalled
    (the client history's flag, SDK >= 2.7 [DOC history-message])."""
    if not isinstance(entry, dict):
        return None
    stamp = entry.get("timestamp")
    sender = entry.get("senderId")
    if not isinstance(stamp, int) or isinstance(stamp, bool) or stamp <= 0:
        return None
    if not isinstance(sender, str) or not sender:
        return None
    return HistoryMessage(timestamp=stamp, sender=sender, recalled=entry.get("recalled") is True)
