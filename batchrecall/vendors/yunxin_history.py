"""Yunxin IM v2 history, the wire only: search by sender, a conversation's messages, an account's
conversations (research/history-apis.md §4); signed as every Yunxin request (vendors/yunxin).

Each function builds one request path, and `read_page` turns the answer into a page or raises
our error: throttled (416, HTTP 429), transient (5xx, gateway), the lane's (HTTP 401/403), or
permanent (`PermanentCallError`: a parameter, signature or account the vendor refused, with its
code; HTTP 404: a path this server does not have).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from batchrecall.errors import (
    ErrorCode,
    LaneFatalError,
    PermanentCallError,
    ThrottledError,
    TransientCallError,
)
from batchrecall.vendors.base import json_body, retry_after, server_error
from batchrecall.vendors.yunxin import THROTTLE_PAUSE_S

__all__ = [
    "MAX_LIMIT",
    "MAX_SENDERS",
    "Message",
    "Page",
    "conversation_messages_path",
    "conversations_path",
    "message_from_item",
    "read_page",
    "search_path",
]

MAX_SENDERS = 5  # search_messages: sender_account_ids, "max 5" [DOC §4.2]
MAX_LIMIT = 100  # limit max 100 [SDK §4.1, §4.2]
SEARCH_PATH = "/im/v2.1/messages/actions/search_messages"  # [DOC §4.2, SDK]
_SUCCESS = 200
_THROTTLED = 416


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    has_more: bool
    next_token: str


@dataclass(frozen=True, slots=True)
class Message:
    """A history item as a recall needs it: the conversation as its sender sees it
    (`sender|type|receiver`, the recall path's conversation id) and the server id."""

    conversation_id: str
    message_server_id: str
    sender: str
    sent_at: int


def search_path(
    *,
    operator: str,
    senders: Sequence[str],
    start_ms: int,
    period_ms: int,
    page_token: str = "",
    limit: int = MAX_LIMIT,
) -> str:
    """检索历史消息: the operator's conversations (all of them: no `conversation_id`), the
    senders' messages sent in [start, start + period)."""
    if not 1 <= len(senders) <= MAX_SENDERS:
        raise ValueError(f"search_messages takes 1 to {MAX_SENDERS} senders a call")
    query = {
        "operator_id": operator,
        "sender_account_ids": ",".join(senders),
        "start_time": str(start_ms),
        "time_period": str(period_ms),
        "limit": str(limit),
    }
    if page_token:
        query["page_token"] = page_token
    return f"{SEARCH_PATH}?{urlencode(query)}"


def conversation_messages_path(
    conversation_id: str,
    *,
    begin_ms: int,
    end_ms: int,
    page_token: str = "",
    limit: int = MAX_LIMIT,
    version: str = "v2.1",
) -> str:
    """分页查询历史消息: v2.1 as the SDK calls it; v2 is the deprecated documented path."""
    query = {"begin_time": str(begin_ms), "end_time": str(end_ms), "limit": str(limit)}
    if page_token:
        query["page_token"] = page_token
    segment = quote(conversation_id, safe="")
    return f"/im/{version}/conversations/{segment}/messages?{urlencode(query)}"


def conversations_path(account: str, *, page_token: str = "", limit: int = MAX_LIMIT) -> str:
    """分页查询会话列表 [SDK §4.3]; the limit's maximum is not documented (100 like the rest)."""
    query = {"account_id": account, "limit": str(limit)}
    if page_token:
        query["page_token"] = page_token
    return f"/im/v2.1/conversations?{urlencode(query)}"


def read_page(response: httpx.Response, *, now: float) -> Page:
    """The answer's page (`data.items`, `has_more`, `next_token`), or our error."""
    answer = json_body(response)
    if response.status_code != 200:
        _http_failure(response, answer, now=now)
    code = answer.get("code")
    message = str(answer.get("msg") or answer.get("desc") or "")
    if code == _THROTTLED:
        raise ThrottledError(
            ErrorCode.RATE_LIMITED,
            message or "throttled",
            vendor_code="416",
            retry_after=max(THROTTLE_PAUSE_S, retry_after(response, now=now) or 0.0),
        )
    if not isinstance(code, int) or isinstance(code, bool) or 500 <= code < 600:
        raise TransientCallError(
            ErrorCode.VENDOR_UNAVAILABLE, message or "unreadable answer", vendor_code=str(code)
        )
    if code != _SUCCESS:
        raise PermanentCallError(ErrorCode.VENDOR_ERROR, message, vendor_code=str(code))
    data = answer.get("data")
    data = data if isinstance(data, dict) else {}
    items = [item for item in data.get("items") or [] if isinstance(item, dict)]
    token = data.get("next_token")
    return Page(
        items=items,
        has_more=data.get("has_more") is True,
        next_token=token if isinstance(token, str) else "",
    )


def message_from_item(item: dict[str, Any]) -> Message | None:
    """The item's message (SDK QueryMessagesByPageResponseV2: `message_server_id` a Long,
    `sender_id`, `conversation_type` 1 P2P / 2 team / 3 super team, `receiver_id` or
    `team_id`, `create_time` ms), or None when a field is missing or malformed."""
    server_id = item.get("message_server_id")
    if isinstance(server_id, int) and not isinstance(server_id, bool) and server_id >= 0:
        server_id = str(server_id)
    sender = item.get("sender_id")
    kind = item.get("conversation_type")
    sent_at = item.get("create_time")
    if (
        not isinstance(server_id, str)
        or not server_id.isascii()
        or not server_id.isdigit()
        or not isinstance(sender, str)
        or not sender
        or kind not in (1, 2, 3)
        or not isinstance(sent_at, int)
        or isinstance(sent_at, bool)
        or sent_at <= 0
    ):
        return None
    other = item.get("receiver_id") if kind == 1 else item.get("team_id")
    if isinstance(other, int) and not isinstance(other, bool):
        other = str(other)
    if not isinstance(other, str) or not other:
        return None
    return Message(
        conversation_id=f"{sender}|{kind}|{other}",
        message_server_id=server_id,
        sender=sender,
        sent_at=sent_at,
    )


def _http_failure(response: httpx.Response, answer: dict[str, Any], *, now: float) -> None:
    text = str(answer.get("msg") or f"HTTP {response.status_code}")
    if response.status_code == 429:
        raise ThrottledError(
            ErrorCode.RATE_LIMITED,
            text,
            http_status=429,
            retry_after=max(THROTTLE_PAUSE_S, retry_after(response, now=now) or 0.0),
        )
    if response.status_code in (401, 403):
        raise LaneFatalError(ErrorCode.AUTH_FAILED, text, http_status=response.status_code)
    if response.status_code >= 500 or response.status_code == 408:
        server_error(response, text)
    if response.status_code == 404:
        raise PermanentCallError(ErrorCode.VENDOR_ERROR, "no such path", http_status=404)
    raise TransientCallError(ErrorCode.VENDOR_UNAVAILABLE, text, http_status=response.status_code)
