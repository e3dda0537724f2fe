"""`collect goeasy`: each `--conversation`'s history (research/history-apis §2.1), paged back by
`lasttimestamp` to `--since`, filtered by `senderId` here (GoEasy has no sender filter and no
start time). Rows group a conversation's timestamps, 20 a row: a recall call's own unit."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from batchrecall.collect.chains import side_by_side
from batchrecall.collect.history_calls import HistoryLane
from batchrecall.collect.query import Query
from batchrecall.collect.sources import Collected, Progress, RowSink
from batchrecall.config import LaneSettings
from batchrecall.errors import PermanentCallError
from batchrecall.vendors.base import Adapter
from batchrecall.vendors.goeasy_history import (
    MAX_LIMIT,
    HistoryMessage,
    history_path,
    read_history,
)

__all__ = ["GoEasyHistory", "collect_goeasy", "conversation_fields"]

ROW_TIMESTAMPS = 20  # recall: "每次最多撤回20条消息"


@dataclass
class GoEasyHistory:
    """The history GETs of one GoEasy lane, each through the lane's permits and retries."""

    adapter: Adapter
    settings: LaneSettings
    lane: HistoryLane

    async def page(
        self, conversation: dict[str, str], before_ms: int
    ) -> tuple[list[HistoryMessage], int]:
        path = history_path(self.settings.secret("appkey"), conversation, before_ms=before_ms)

        async def once() -> tuple[list[HistoryMessage], int]:
            response = await self.adapter.request(
                "GET", self.adapter.url(path), headers={"Accept": "application/json"}
            )
            return read_history(response)

        return await self.lane.call("goeasy_history", once)


def conversation_fields(text: str) -> dict[str, str] | None:
    """`group:ID` -> {"groupId"}; `USER_A:USER_B` -> {"userAId", "userBId"}; None otherwise."""
    if text.startswith("group:"):
        group = text.removeprefix("group:")
        return {"groupId": group} if group and ":" not in group else None
    parts = text.split(":")
    if len(parts) != 2 or not all(parts):
        return None
    return {"userAId": parts[0], "userBId": parts[1]}


async def collect_goeasy(
    query: Query, history: GoEasyHistory, sink: RowSink, *, now_ms: int, progress: Progress | None
) -> Collected:
    collected = sink.collected
    collected.unit_name = "conversations"
    collected.units_total = len(query.conversations)
    until = query.until_ms if query.until_ms is not None else now_ms
    sources: dict[int, dict[str, object]] = {}

    async def read(number: int, name: str) -> bool:
        fields = conversation_fields(name)
        assert fields is not None  # the command checked it
        records = [0]
        try:
            keep_on = await _conversation(query, history, sink, name, fields, until, records)
        finally:
            sources[number] = {"conversation": name, "records": records[0]}
        collected.units_done += 1
        if progress is not None:
            progress(collected)
        return keep_on

    # Each conversation is a chain of pages; a few are read side by side.
    try:
        await side_by_side([partial(read, n, name) for n, name in enumerate(query.conversations)])
    except PermanentCallError as exc:
        collected.error = f"GoEasy refused a history request ({exc.message})"
    finally:
        collected.sources.extend(sources[number] for number in sorted(sources))
    return collected


async def _conversation(
    query: Query,
    history: GoEasyHistory,
    sink: RowSink,
    name: str,
    fields: dict[str, str],
    until: int,
    read: list[int],
) -> bool:
    """The conversation paged back to --since (entries read counted into `read[0]`), then its
    rows written; False once --max-items is reached."""
    scan = sink.collected.scan
    by_sender: dict[str, list[int]] = {}
    before = until
    while True:
        messages, entries = await history.page(fields, before)
        read[0] += entries
        scan.records += entries
        scan.candidates += entries
        for _ in range(entries - len(messages)):
            scan.bad(f"conversation {name}", "an entry without timestamp or senderId")
        for message in messages:
            if message.recalled or message.sender not in query.senders:
                continue
            if not query.in_window(message.timestamp):
                continue
            if sink.fresh((name, str(message.timestamp))):
                by_sender.setdefault(message.sender, []).append(message.timestamp)
        oldest = min((m.timestamp for m in messages), default=None)
        if entries < MAX_LIMIT or oldest is None or oldest < query.since_ms or oldest >= before:
            break
        before = oldest
    return _write(query, sink, name, fields, by_sender)


def _write(
    query: Query, sink: RowSink, name: str, fields: dict[str, str], by_sender: dict[str, list[int]]
) -> bool:
    for sender, stamps in by_sender.items():
        stamps.sort()
        room = sink.room()
        if room is not None:
            stamps = stamps[:room]
        for at in range(0, len(stamps), ROW_TIMESTAMPS):
            chunk = stamps[at : at + ROW_TIMESTAMPS]
            row: dict[str, Any] = {"vendor": "goeasy", "op": "recall"}
            if query.app != "default":
                row["app"] = query.app
            # sent_at: the row's oldest message, the first to leave a recall window.
            row |= {**fields, "messages": chunk, "ref": query.ref, "sent_at": chunk[0]}
            if not sink.write(row, [(sender, name, stamp) for stamp in chunk]):
                return False
    return True
