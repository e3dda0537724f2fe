"""Easemob export records (research/history-apis §1.2) -> recall rows: a record matches on
`payload.from` (the sender), `payload.to` (the conversation: user, group or chat room),
`chat_type` and `timestamp` (ms, UTC)."""

from __future__ import annotations

import re
from typing import Any

from batchrecall.collect.export_file import ExportScan
from batchrecall.collect.query import Query

__all__ = ["recall_row"]

_DIGITS = re.compile(r"[0-9]{1,32}")
_CHAT_TYPES = frozenset({"chat", "groupchat", "chatroom"})


def recall_row(
    where: str, record: dict[str, Any], query: Query, scan: ExportScan
) -> dict[str, Any] | None:
    """The job row that recalls this record's message, if it matches the query; None if not
    (a malformed record is counted in `scan` and named among the first five)."""
    payload = record.get("payload")
    if not isinstance(payload, dict):
        scan.bad(where, "no payload object")
        return None
    sender = payload.get("from")
    if not isinstance(sender, str) or sender not in query.senders:
        return None  # the id was elsewhere in the record (a receiver, a text)
    problem = _problem(record, payload)
    if problem:
        scan.bad(where, problem)
        return None
    sent_at = record["timestamp"]
    to = payload["to"]
    chat_type = record["chat_type"]
    if not query.in_window(sent_at):
        return None
    if query.conversations and to not in query.conversations:
        return None
    if query.chat_type is not None and chat_type != query.chat_type:
        return None
    if query.contains is not None and not _text_holds(payload, query.contains):
        return None
    row: dict[str, Any] = {"vendor": "easemob", "op": "recall"}
    if query.app != "default":
        row["app"] = query.app
    row |= {
        "msg_id": str(record["msg_id"]),
        "to": to,
        "chat_type": chat_type,
        "from": sender,
        "ref": query.ref,
        "sent_at": sent_at,
    }
    return row


def _problem(record: dict[str, Any], payload: dict[str, Any]) -> str:
    msg_id = record.get("msg_id")
    if isinstance(msg_id, int) and not isinstance(msg_id, bool):
        msg_id = str(msg_id)
    if not isinstance(msg_id, str) or not _DIGITS.fullmatch(msg_id):
        return f"msg_id is not Easemob's digits ({str(msg_id)[:40]!r})"
    timestamp = record.get("timestamp")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp <= 0:
        return "timestamp is not a time in ms"
    if record.get("chat_type") not in _CHAT_TYPES:
        return f"chat_type is not chat, groupchat or chatroom ({record.get('chat_type')!r})"
    to = payload.get("to")
    if not isinstance(to, str) or not to:
        return "payload.to is missing"
    return ""


def _text_holds(payload: dict[str, Any], text: str) -> bool:
    bodies = payload.get("bodies")
    if not isinstance(bodies, list):
        return False
    return any(
        isinstance(body, dict)
        and body.get("type") == "txt"
        and isinstance(body.get("msg"), str)
        and text in body["msg"]
        for body in bodies
    )
