"""`collect VENDOR --idle-before T --account USER...`: each account's conversations whose last
message is older than T, as delete_conversation rows (a retention run).

Yunxin only: 分页查询会话列表 (GET /im/v2.1/conversations, research/history-apis §4.3), a
conversation's time is its `last_message.create_time`, else its `update_time`. Easemob's
user_channels list is in the rate table only (its parameters and answer are not documented) and
GoEasy has no conversation list: the command refuses both.
"""

from __future__ import annotations

from typing import Any

from batchrecall.collect.from_yunxin import YunxinHistory
from batchrecall.collect.query import Query
from batchrecall.collect.sources import Collected, Progress, RowSink
from batchrecall.errors import PermanentCallError
from batchrecall.vendors.yunxin_history import conversations_path

__all__ = ["collect_idle_yunxin", "conversation_time"]


def conversation_time(item: dict[str, Any]) -> int | None:
    """When the conversation last had a message (ms), as the list item says; None if it does
    not say."""
    last = item.get("last_message")
    candidates = [last.get("create_time") if isinstance(last, dict) else None,
                  item.get("update_time")]  # fmt: skip
    for value in candidates:
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


async def collect_idle_yunxin(
    query: Query, history: YunxinHistory, sink: RowSink, *, progress: Progress | None
) -> Collected:
    collected = sink.collected
    collected.unit_name = "accounts"
    collected.units_total = len(query.senders)
    assert query.until_ms is not None  # the idle-before time
    try:
        for account in query.senders:
            listed = 0
            token = ""
            while True:
                path = conversations_path(account, page_token=token)
                page = await history.page("list_conversations", path)
                listed += len(page.items)
                for number, item in enumerate(page.items, 1):
                    if not _take(query, sink, account, number, item):
                        return collected
                if not page.has_more or not page.next_token:
                    break
                token = page.next_token
            collected.units_done += 1
            collected.sources.append({"account": account, "conversations": listed})
            if progress is not None:
                progress(collected)
    except PermanentCallError as exc:
        collected.error = f"Yunxin refused a conversation list ({exc.vendor_code}: {exc.message})"
    return collected


def _take(query: Query, sink: RowSink, account: str, number: int, item: dict[str, Any]) -> bool:
    scan = sink.collected.scan
    scan.records += 1
    scan.candidates += 1
    conversation = item.get("conversation_id")
    if not isinstance(conversation, str) or conversation.count("|") != 2:
        scan.bad(f"account {account}: conversation {number}", "no conversation_id")
        return True
    last = conversation_time(item)
    if last is None:
        sink.collected.found.skipped += 1  # no time to judge it by: kept
        return True
    assert query.until_ms is not None
    if last >= query.until_ms:
        return True
    row: dict[str, Any] = {"vendor": "yunxin", "op": "delete_conversation"}
    if query.app != "default":
        row["app"] = query.app
    row |= {"conversation_id": conversation, "ref": query.ref, "sent_at": last}
    return sink.add((conversation,), row, sender=account, conversation=conversation)
