"""`collect yunxin`: the senders' messages from Yunxin's v2 history (research/history-apis §4).

Without `--conversation`: 检索历史消息 (search_messages) by sender, the window walked in
`time_period` steps of a day (the page's example span; its maximum is not documented), each
step paged by `page_token`. The search covers the operator's conversations, so each sender is its
own operator (an inference: the documents do not say whether an operator sees conversations it
is not in). With `--conversation ID`: each conversation's history (the v2.1 path the SDK calls;
the documented v2 path if the server has no v2.1), filtered by sender here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from batchrecall.collect.chains import side_by_side
from batchrecall.collect.history_calls import HistoryLane
from batchrecall.collect.query import Query
from batchrecall.collect.sources import Collected, Progress, RowSink
from batchrecall.errors import PermanentCallError
from batchrecall.vendors.yunxin import YunxinAdapter
from batchrecall.vendors.yunxin_history import (
    MAX_SENDERS,
    Message,
    Page,
    conversation_messages_path,
    message_from_item,
    read_page,
    search_path,
)

__all__ = ["SEARCH_STEP_MS", "YunxinHistory", "collect_yunxin", "conversation_problem"]

SEARCH_STEP_MS = 86_400_000  # time_period: "86400000 = 1 day" is the page's own example
_SUPER_TEAM = "3"


@dataclass
class YunxinHistory:
    """The signed GETs of one Yunxin lane, each through the lane's permits and retries."""

    adapter: YunxinAdapter
    lane: HistoryLane
    wall_clock: Callable[[], float] = time.time

    async def page(self, what: str, path: str) -> Page:
        async def once() -> Page:
            response = await self.adapter.request(
                "GET", self.adapter.url(path), headers=self.adapter.auth_headers()
            )
            return read_page(response, now=self.wall_clock())

        return await self.lane.call(what, once)


def conversation_problem(conversation_id: str) -> str:
    """Why `conversation_id` is not a Yunxin conversation id (empty when it is one)."""
    parts = conversation_id.split("|")
    if len(parts) != 3 or parts[1] not in ("1", "2", "3") or not parts[0] or not parts[2]:
        return (
            f"--conversation {conversation_id!r}: a Yunxin conversation is owner|type|other "
            "(type 1 one-to-one, 2 team, 3 super team)"
        )
    return ""


async def collect_yunxin(
    query: Query,
    history: YunxinHistory,
    sink: RowSink,
    *,
    now_ms: int,
    operator: str | None = None,
    progress: Progress | None = None,
) -> Collected:
    collected = sink.collected
    until = query.until_ms if query.until_ms is not None else now_ms
    try:
        if query.conversations:
            await _conversations(query, history, sink, until, progress)
        else:
            await _search(query, history, sink, until, operator, progress)
    except PermanentCallError as exc:
        collected.error = f"Yunxin refused a history request ({_words(exc)})"
    return collected


async def _search(
    query: Query,
    history: YunxinHistory,
    sink: RowSink,
    until: int,
    operator: str | None,
    progress: Progress | None,
) -> None:
    collected = sink.collected
    groups: list[tuple[str, tuple[str, ...]]]
    if operator is None:
        groups = [(sender, (sender,)) for sender in query.senders]
    else:
        senders = query.senders
        groups = [
            (operator, senders[at : at + MAX_SENDERS]) for at in range(0, len(senders), MAX_SENDERS)
        ]
    steps = [
        (s, min(SEARCH_STEP_MS, until - s)) for s in range(query.since_ms, until, SEARCH_STEP_MS)
    ]
    collected.unit_name = "search windows"
    collected.units_total = len(groups) * len(steps)
    sources: dict[int, dict[str, object]] = {}

    async def search(number: int, who: str, senders: tuple[str, ...]) -> bool:
        records = 0
        try:
            for start, period in steps:
                token = ""
                while True:
                    path = search_path(
                        operator=who, senders=senders, start_ms=start, period_ms=period,
                        page_token=token,
                    )  # fmt: skip
                    page = await history.page("search_messages", path)
                    records += len(page.items)
                    if sink.room() == 0 or not _take(
                        page.items, query, sink, where=f"search {who}"
                    ):
                        return False
                    if not page.has_more or not page.next_token:
                        break
                    token = page.next_token
                collected.units_done += 1
                if progress is not None:
                    progress(collected)
        except PermanentCallError as exc:
            if exc.vendor_code != "404":
                raise
            # Inferred: code 404 on search is the operator account unknown to the app.
            collected.unknown_senders.append(who)
            collected.units_done += len(steps)
        finally:
            sources[number] = {"search": {"operator": who, "senders": list(senders)},
                               "records": records}  # fmt: skip
        return True

    # Each operator's search is a chain of pages; a few run side by side (their rows
    # interleave), so the lane's history rate, not one call's round trip, sets the pace.
    try:
        await side_by_side(
            [partial(search, number, who, senders) for number, (who, senders) in enumerate(groups)]
        )
    finally:
        collected.sources.extend(sources[number] for number in sorted(sources))


async def _conversations(
    query: Query,
    history: YunxinHistory,
    sink: RowSink,
    until: int,
    progress: Progress | None,
) -> None:
    collected = sink.collected
    collected.unit_name = "conversations"
    collected.units_total = len(query.conversations)
    version = "v2.1"
    for conversation in query.conversations:
        records = 0
        token = ""
        while True:
            path = conversation_messages_path(
                conversation, begin_ms=query.since_ms, end_ms=until, page_token=token,
                version=version,
            )  # fmt: skip
            try:
                page = await history.page("conversation_messages", path)
            except PermanentCallError as exc:
                if exc.http_status != 404 or version != "v2.1":
                    raise
                # The SDK's v2.1 path is not on this server: the documented (deprecated) v2.
                version = "v2"
                collected.notes.append("the server has no v2.1 history path; read v2's")
                continue
            records += len(page.items)
            if not _take(page.items, query, sink, where=f"conversation {conversation}"):
                return
            if not page.has_more or not page.next_token:
                break
            token = page.next_token
        collected.units_done += 1
        collected.sources.append({"conversation": conversation, "records": records})
        if progress is not None:
            progress(collected)


def _take(items: Sequence[dict[str, Any]], query: Query, sink: RowSink, *, where: str) -> bool:
    """The page's matching messages into the sink; False once --max-items is reached."""
    scan = sink.collected.scan
    for number, item in enumerate(items, 1):
        scan.records += 1
        scan.candidates += 1
        message = message_from_item(item)
        if message is None:
            scan.bad(f"{where}: item {number}", "not a message (ids, sender or time missing)")
            continue
        if message.sender not in query.senders or not query.in_window(message.sent_at):
            continue
        if query.contains is not None and query.contains not in str(item.get("text") or ""):
            continue
        row = _row(message, query)
        if row is None:
            sink.collected.found.skipped += 1
            continue
        if not sink.add(
            (message.conversation_id, message.message_server_id),
            row,
            sender=message.sender,
            conversation=message.conversation_id,
        ):
            return False
    return True


def _row(message: Message, query: Query) -> dict[str, Any] | None:
    kind = message.conversation_id.split("|")[1]
    if query.op == "delete_message" and kind == _SUPER_TEAM:
        return None  # Yunxin deletes one-to-one and advanced team messages only (seed 003)
    row: dict[str, Any] = {"vendor": "yunxin", "op": query.op}
    if query.app != "default":
        row["app"] = query.app
    row |= {
        "conversation_id": message.conversation_id,
        "message_server_id": message.message_server_id,
        "ref": query.ref,
        "sent_at": message.sent_at,
    }
    if kind != "1":
        # A spammer removed from the team must still be recallable (seed 003: the check of the
        # sender's membership is skipped with check_team_member_valid=false).
        row["check_team_member_valid"] = False
    return row


def _words(exc: PermanentCallError) -> str:
    code = exc.vendor_code or (f"HTTP {exc.http_status}" if exc.http_status else "")
    return f"code {code}: {exc.message}" if code else exc.message
