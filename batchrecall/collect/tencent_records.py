"""Tencent Cloud IM export records -> recall rows (SPEC §2's tencent form).

The file's record format is not documented (the page describes only the download). Read here,
as an inference (README: Tencent inferences), as JSON objects with the field names of Tencent's
REST messages: `From_Account` (the sender), `MsgTimestamp` (Unix seconds; `MsgTimeStamp` and
`MsgTime` as the history and callback APIs spell it), and `To_Account` + `MsgKey` (one-to-one) or
`GroupId` + `MsgSeq` (a group's). A record of a sender without what its recall needs is counted
malformed and named: nothing is guessed.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from batchrecall.collect.export_file import ExportScan
from batchrecall.collect.query import Query

__all__ = ["tencent_row"]

_TIME_FIELDS = ("MsgTimestamp", "MsgTimeStamp", "MsgTime")

Taken = tuple[tuple[str, ...], dict[str, Any], str, str]
"""A message's identity, its job row, its sender and its conversation."""


def tencent_row(where: str, record: dict[str, Any], query: Query, scan: ExportScan) -> Taken | None:
    sender = record.get("From_Account")
    if not isinstance(sender, str) or sender not in query.senders:
        return None  # the id was elsewhere in the record
    sent_s = next((record[f] for f in _TIME_FIELDS if _is_int(record.get(f))), None)
    if sent_s is None or sent_s <= 0:
        scan.bad(where, "no MsgTimestamp (Unix seconds)")
        return None
    sent_ms = sent_s * 1000
    row: dict[str, Any] = {"vendor": "tencent", "op": "recall"}
    if query.app != "default":
        row["app"] = query.app
    group = record.get("GroupId")
    if group is not None:
        seq = record.get("MsgSeq")
        if not isinstance(group, str) or not group or not _is_int(seq) or seq <= 0:
            scan.bad(where, "a group message without GroupId and MsgSeq")
            return None
        identity: tuple[str, ...] = ("group", group, str(seq))
        conversation = f"group:{group}"
        row |= {"GroupId": group, "MsgSeq": seq}
    else:
        to, key = record.get("To_Account"), record.get("MsgKey")
        if not isinstance(to, str) or not to or not isinstance(key, str) or not key:
            scan.bad(where, "a one-to-one message without To_Account and MsgKey")
            return None
        identity = ("c2c", key)
        conversation = f"user:{to}"
        row |= {"From_Account": sender, "To_Account": to, "MsgKey": key}
    if not query.in_window(sent_ms):
        return None
    if query.conversations and conversation not in query.conversations:
        return None
    if query.contains is not None and not _text_holds(record.get("MsgBody"), query.contains):
        return None
    row |= {"ref": query.ref, "sent_at": sent_ms}
    return identity, row, sender, conversation


def _text_holds(body: Any, text: str) -> bool:
    if not isinstance(body, list):
        return False
    for element in body:
        content = element.get("MsgContent") if isinstance(element, dict) else None
        if (
            element.get("MsgType") == "TIMTextElem"
            and isinstance(content, dict)
            and isinstance(content.get("Text"), str)
            and text in content["Text"]
        ):
            return True
    return False


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
