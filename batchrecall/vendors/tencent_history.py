"""Tencent Cloud IM's history wire (`collect`): one-to-one roaming messages and a group's.

research/history-apis.md §5: `v4/openim/admin_getroammsg` pages back from `MaxTime` (Unix
seconds) with `LastMsgTime` and `LastMsgKey` until `Complete` is 1; each message's `MsgKey` feeds
`admin_msgwithdraw`, and `MsgFlagBits` 8 marks one recalled. `group_msg_get_simple` answers at
most 20 messages at or below `ReqMsgSeq`, newest first; each `MsgSeq` feeds `group_msg_recall`,
and `IsPlaceMsg` non-zero marks one deleted, expired (1) or recalled (2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeGuard

ROAM_MSGS = "/v4/openim/admin_getroammsg"
GROUP_MSGS = "/v4/group_open_http_svc/group_msg_get_simple"
ROAM_PAGE = 100  # MaxCnt: the documented cap is the 13 KB answer, not a count (inferred)
GROUP_PAGE = 20  # "目前一次请求最多返回20条历史消息" (research §T4)
RECALLED_FLAG = 8


@dataclass(frozen=True, slots=True)
class HistoryMessage:
    sender: str
    sent_ms: int
    msg_key: str = ""
    """One-to-one: the MsgKey a recall names."""
    seq: int = 0
    """Group: the MsgSeq a recall names."""
    gone: bool = False
    """Recalled, deleted or expired already: nothing to take back."""


@dataclass(frozen=True, slots=True)
class Page:
    messages: list[HistoryMessage]
    entries: int
    """Entries the answer held, unreadable ones included."""
    more: bool
    next_key: str = ""
    next_time: int = 0
    """admin_getroammsg's `LastMsgKey` and `LastMsgTime`, for the next page."""


def roam_body(
    operator: str, peer: str, *, min_s: int, max_s: int, last_key: str = ""
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Operator_Account": operator,
        "Peer_Account": peer,
        "MaxCnt": ROAM_PAGE,
        "MinTime": min_s,
        "MaxTime": max_s,
    }
    if last_key:
        body["LastMsgKey"] = last_key
    return body


def group_body(group_id: str, *, below_seq: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"GroupId": group_id, "ReqMsgNumber": GROUP_PAGE}
    if below_seq is not None:
        body["ReqMsgSeq"] = below_seq
    return body


def read_roam(answer: dict[str, Any]) -> Page:
    entries = answer.get("MsgList")
    entries = entries if isinstance(entries, list) else []
    messages = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        sender, key, at = entry.get("From_Account"), entry.get("MsgKey"), entry.get("MsgTimeStamp")
        if not isinstance(sender, str) or not isinstance(key, str) or not _is_int(at):
            continue
        flags = entry.get("MsgFlagBits")
        gone = _is_int(flags) and bool(flags & RECALLED_FLAG)
        messages.append(HistoryMessage(sender=sender, sent_ms=at * 1000, msg_key=key, gone=gone))
    last_key, last_time = answer.get("LastMsgKey"), answer.get("LastMsgTime")
    more = answer.get("Complete") == 0 and isinstance(last_key, str) and _is_int(last_time)
    return Page(
        messages=messages,
        entries=len(entries),
        more=more,
        next_key=str(last_key) if more else "",
        next_time=int(last_time) if more and _is_int(last_time) else 0,
    )


def read_group(answer: dict[str, Any]) -> Page:
    entries = answer.get("RspMsgList")
    entries = entries if isinstance(entries, list) else []
    messages = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        sender, seq, at = entry.get("From_Account"), entry.get("MsgSeq"), entry.get("MsgTimeStamp")
        if not isinstance(sender, str) or not _is_int(seq) or not _is_int(at):
            continue
        place = entry.get("IsPlaceMsg")
        gone = _is_int(place) and place != 0
        messages.append(HistoryMessage(sender=sender, sent_ms=at * 1000, seq=seq, gone=gone))
    # IsFinished 1: every message was answered; 0 or 2: there are older ones (2: expired).
    more = answer.get("IsFinished") == 0 and len(entries) > 0
    return Page(messages=messages, entries=len(entries), more=more)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


# recentcontact/get_list (tencentcloud.com/document/product/1047/43087): the request example's
# AssistFlags 7 (bit 0 pinned conversations, bit 1 empty ones too, bit 2 pinned ones paged);
# each page's answer names where the next one starts, until CompleteFlag is 1.
CONTACTS = "/v4/recentcontact/get_list"
CONTACTS_FLAGS = 7
_CURSOR = ("TimeStamp", "StartIndex", "TopTimeStamp", "TopStartIndex")


@dataclass(frozen=True, slots=True)
class Conversation:
    kind: int
    """1 one-to-one (`To_Account`), 2 a group's (`GroupId`)."""
    other: str
    last_ms: int | None
    """`MsgTime` (Unix seconds) in ms; None when the entry has none."""


@dataclass(frozen=True, slots=True)
class ContactsPage:
    conversations: list[Conversation]
    entries: int
    complete: bool
    cursor: dict[str, int]


def contacts_body(account: str, cursor: dict[str, int] | None = None) -> dict[str, Any]:
    start = cursor or {}
    return {
        "From_Account": account,
        **{name: int(start.get(name, 0)) for name in _CURSOR},
        "AssistFlags": CONTACTS_FLAGS,
    }


def read_contacts(answer: dict[str, Any]) -> ContactsPage:
    entries = answer.get("SessionItem")
    entries = entries if isinstance(entries, list) else []
    found = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        kind = entry.get("Type")
        other = entry.get("To_Account") if kind == 1 else entry.get("GroupId")
        if kind not in (1, 2) or not isinstance(other, str) or not other:
            continue
        at = entry.get("MsgTime")
        last = at * 1000 if _is_int(at) and at > 0 else None
        found.append(Conversation(kind=kind, other=other, last_ms=last))
    cursor = {name: answer[name] for name in _CURSOR if _is_int(answer.get(name))}
    # Anything but CompleteFlag 1 with a cursor to go on from is read as "more to come".
    complete = answer.get("CompleteFlag") == 1 or len(cursor) < len(_CURSOR)
    return ContactsPage(conversations=found, entries=len(entries), complete=complete, cursor=cursor)
