"""`collect tencent`: each `--conversation`'s history (research/history-apis.md §5), filtered by
sender and time here. Tencent has no search by sender: a one-to-one conversation
(`user:PEER`) is read once per sender from its roaming messages (admin_getroammsg, paged back in
time), a group (`group:ID`) from its messages (group_msg_get_simple, paged back by seq).

Rows: a one-to-one recall per message (`From_Account`, `To_Account`, `MsgKey`); a group's seqs
of one sender, ten a row (a group recall call's own unit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from batchrecall.collect.history_calls import HistoryLane
from batchrecall.collect.query import Query
from batchrecall.collect.sources import Collected, Progress, RowSink
from batchrecall.errors import PermanentCallError
from batchrecall.vendors.tencent import TencentAdapter
from batchrecall.vendors.tencent_history import (
    CONTACTS,
    GROUP_MSGS,
    ROAM_MSGS,
    ContactsPage,
    Conversation,
    HistoryMessage,
    Page,
    contacts_body,
    group_body,
    read_contacts,
    read_group,
    read_roam,
    roam_body,
)

__all__ = ["TencentHistory", "collect_idle_tencent", "collect_tencent", "conversation_problem"]

ROW_SEQS = 10  # group_msg_recall: at most 10 seqs a call


@dataclass
class TencentHistory:
    """The history calls of one Tencent lane, each through the lane's permits and retries."""

    adapter: TencentAdapter
    lane: HistoryLane

    async def roam(self, operator: str, peer: str, *, min_s: int, max_s: int, key: str) -> Page:
        body = roam_body(operator, peer, min_s=min_s, max_s=max_s, last_key=key)

        async def once() -> Page:
            return read_roam(await self.adapter.read_only(ROAM_MSGS, body))

        return await self.lane.call("tencent_roam_messages", once)

    async def group(self, group_id: str, *, below_seq: int | None) -> Page:
        body = group_body(group_id, below_seq=below_seq)

        async def once() -> Page:
            return read_group(await self.adapter.read_only(GROUP_MSGS, body))

        return await self.lane.call("tencent_group_messages", once)

    async def contacts(self, account: str, cursor: dict[str, int] | None) -> ContactsPage:
        body = contacts_body(account, cursor)

        async def once() -> ContactsPage:
            return read_contacts(await self.adapter.read_only(CONTACTS, body))

        return await self.lane.call("tencent_conversation_list", once)


def conversation_problem(text: str) -> str | None:
    """Why `text` names no Tencent conversation (`user:PEER` or `group:ID`), or None."""
    kind, sep, name = text.partition(":")
    if not sep or kind not in ("user", "group") or not name:
        return (
            f"--conversation {text!r}: a Tencent conversation is user:PEER (one-to-one, with each "
            "sender) or group:GROUP_ID"
        )
    return None


async def collect_tencent(
    query: Query, history: TencentHistory, sink: RowSink, *, now_ms: int, progress: Progress | None
) -> Collected:
    collected = sink.collected
    collected.unit_name = "conversations"
    collected.units_total = len(query.conversations)
    until = query.until_ms if query.until_ms is not None else now_ms
    try:
        for name in query.conversations:
            kind, _, target = name.partition(":")
            if kind == "group":
                read, keep_on = await _group(query, history, sink, target)
            else:
                read, keep_on = await _peer(query, history, sink, target, until)
            collected.units_done += 1
            collected.sources.append({"conversation": name, "records": read})
            if progress is not None:
                progress(collected)
            if not keep_on:
                break
    except PermanentCallError as exc:
        collected.error = f"Tencent refused a history request ({exc.vendor_code}: {exc.message})"
    return collected


def _count(sink: RowSink, page: Page, where: str) -> None:
    scan = sink.collected.scan
    scan.records += page.entries
    scan.candidates += page.entries
    for _ in range(page.entries - len(page.messages)):
        scan.bad(where, "an entry without From_Account, a key or seq, or MsgTimeStamp")


def _wanted(query: Query, message: HistoryMessage) -> bool:
    return not message.gone and message.sender in query.senders and query.in_window(message.sent_ms)


async def _peer(
    query: Query, history: TencentHistory, sink: RowSink, peer: str, until: int
) -> tuple[int, bool]:
    read = 0
    min_s = query.since_ms // 1000
    for sender in query.senders:
        max_s, key = math.ceil(until / 1000), ""
        while True:
            page = await history.roam(sender, peer, min_s=min_s, max_s=max_s, key=key)
            read += page.entries
            _count(sink, page, f"conversation user:{peer} of {sender}")
            for message in sorted(page.messages, key=lambda m: m.sent_ms):
                if not _wanted(query, message) or message.sender != sender:
                    continue
                if not sink.fresh(("c2c", sender, peer, message.msg_key)):
                    continue
                row: dict[str, Any] = {"vendor": "tencent", "op": "recall"}
                if query.app != "default":
                    row["app"] = query.app
                row |= {
                    "From_Account": sender,
                    "To_Account": peer,
                    "MsgKey": message.msg_key,
                    "ref": query.ref,
                    "sent_at": message.sent_ms,
                }
                if not sink.write(row, [(sender, f"user:{peer}", message.sent_ms)]):
                    return read, False
            if not page.more or (page.next_time, page.next_key) == (max_s, key):
                break
            max_s, key = page.next_time, page.next_key
    return read, True


async def _group(
    query: Query, history: TencentHistory, sink: RowSink, group_id: str
) -> tuple[int, bool]:
    read = 0
    by_sender: dict[str, list[tuple[int, int]]] = {}
    below: int | None = None
    while True:
        page = await history.group(group_id, below_seq=below)
        read += page.entries
        _count(sink, page, f"conversation group:{group_id}")
        for message in page.messages:
            if _wanted(query, message) and sink.fresh(("group", group_id, str(message.seq))):
                by_sender.setdefault(message.sender, []).append((message.seq, message.sent_ms))
        lowest = min((m.seq for m in page.messages), default=None)
        oldest = min((m.sent_ms for m in page.messages), default=None)
        if not page.more or lowest is None or lowest <= 1 or (below is not None and lowest > below):
            break
        if oldest is not None and oldest < query.since_ms:
            break
        below = lowest - 1
    return read, _write_group(query, sink, group_id, by_sender)


def _write_group(
    query: Query, sink: RowSink, group_id: str, by_sender: dict[str, list[tuple[int, int]]]
) -> bool:
    for sender, found in by_sender.items():
        found.sort()
        room = sink.room()
        if room is not None:
            found = found[:room]
        for at in range(0, len(found), ROW_SEQS):
            chunk = found[at : at + ROW_SEQS]
            row: dict[str, Any] = {"vendor": "tencent", "op": "recall"}
            if query.app != "default":
                row["app"] = query.app
            row |= {
                "GroupId": group_id,
                "MsgSeq": [seq for seq, _ in chunk],
                "ref": query.ref,
                # The row's oldest message, the first to leave the roaming period.
                "sent_at": min(sent for _, sent in chunk),
            }
            messages = [(sender, f"group:{group_id}", sent) for _, sent in chunk]
            if not sink.write(row, messages):
                return False
    return True


async def collect_idle_tencent(
    query: Query, history: TencentHistory, sink: RowSink, *, progress: Progress | None
) -> Collected:
    """A retention run: each account's conversations (recentcontact/get_list) whose `MsgTime`
    is before --idle-before, as delete_conversation rows."""
    collected = sink.collected
    collected.unit_name = "accounts"
    collected.units_total = len(query.senders)
    try:
        for account in query.senders:
            listed = 0
            cursor: dict[str, int] | None = None
            while True:
                page = await history.contacts(account, cursor)
                listed += page.entries
                _count_contacts(sink, page, account)
                for conversation in page.conversations:
                    if not _take_idle(query, sink, account, conversation):
                        return collected
                if page.complete or page.cursor == cursor:
                    break
                cursor = page.cursor
            collected.units_done += 1
            collected.sources.append({"account": account, "conversations": listed})
            if progress is not None:
                progress(collected)
    except PermanentCallError as exc:
        collected.error = f"Tencent refused a conversation list ({exc.vendor_code}: {exc.message})"
    return collected


def _count_contacts(sink: RowSink, page: ContactsPage, account: str) -> None:
    scan = sink.collected.scan
    scan.records += page.entries
    scan.candidates += page.entries
    for _ in range(page.entries - len(page.conversations)):
        scan.bad(f"account {account}", "a conversation without Type and To_Account or GroupId")


def _take_idle(query: Query, sink: RowSink, account: str, conversation: Conversation) -> bool:
    if conversation.last_ms is None:
        sink.collected.found.skipped += 1  # no time to judge it by: kept
        return True
    assert query.until_ms is not None  # the idle-before time
    if conversation.last_ms >= query.until_ms:
        return True
    field = "To_Account" if conversation.kind == 1 else "ToGroupid"
    row: dict[str, Any] = {"vendor": "tencent", "op": "delete_conversation"}
    if query.app != "default":
        row["app"] = query.app
    row |= {
        "From_Account": account,
        field: conversation.other,
        "ref": query.ref,
        "sent_at": conversation.last_ms,
    }
    name = f"{account}/{conversation.other}"
    identity = (account, str(conversation.kind), conversation.other)
    return sink.add(identity, row, sender=account, conversation=name)
