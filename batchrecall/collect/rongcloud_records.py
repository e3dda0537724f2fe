"""RongCloud history log records -> recall rows (SPEC §2's rongcloud form).

The log's line format is not documented. Read here, as an inference (README: RongCloud
inferences), as JSON objects holding `fromUserId`, `conversationType`, `targetId`, `msgUID` (the
recall's `messageUID`, per the recall document) and `dateTime` (its `sentTime`, per the same): ms
since the epoch (a number or its digits), or `yyyy-MM-dd HH:mm:ss.SSS` in Beijing time. A
`busChannel` (ultra group channel) is carried into the row. A record of a sender without what
its recall needs is counted malformed and named: nothing is guessed (a time without its ms
would not name the message).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from batchrecall.collect.export_file import ExportScan
from batchrecall.collect.query import Query
from batchrecall.collect.tencent_records import Taken

__all__ = ["rongcloud_row"]

_TYPES = frozenset({1, 3, 4, 6, 10})
_BEIJING = timezone(timedelta(hours=8))


def rongcloud_row(
    where: str, record: dict[str, Any], query: Query, scan: ExportScan
) -> Taken | None:
    sender = record.get("fromUserId")
    if not isinstance(sender, str) or sender not in query.senders:
        return None
    uid, target = record.get("msgUID"), record.get("targetId")
    kind = _number(record.get("conversationType"))
    sent_ms = _sent_ms(record.get("dateTime"))
    if not isinstance(uid, str) or not uid:
        scan.bad(where, "no msgUID")
        return None
    if kind not in _TYPES:
        scan.bad(
            where, f"conversationType is not 1, 3, 4, 6 or 10 ({record.get('conversationType')!r})"
        )
        return None
    if not isinstance(target, str) or not target:
        scan.bad(where, "no targetId")
        return None
    if sent_ms is None:
        scan.bad(where, f"dateTime is not a time in ms ({str(record.get('dateTime'))[:40]!r})")
        return None
    if not query.in_window(sent_ms):
        return None
    if query.conversations and target not in query.conversations:
        return None
    row: dict[str, Any] = {"vendor": "rongcloud", "op": "recall"}
    if query.app != "default":
        row["app"] = query.app
    row |= {
        "fromUserId": sender,
        "conversationType": kind,
        "targetId": target,
        "messageUID": uid,
        "sentTime": sent_ms,
    }
    channel = record.get("busChannel")
    if isinstance(channel, str) and channel:
        row["busChannel"] = channel
    row |= {"ref": query.ref, "sent_at": sent_ms}
    return ("uid", uid), row, sender, f"{kind}/{target}"


def _number(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 4:
        return int(value)
    return None


def _sent_ms(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value > 0 else None
    if not isinstance(value, str):
        return None
    if value.isascii() and value.isdigit() and 10 < len(value) < 16:
        return int(value)
    try:
        moment = datetime.strptime(value, "%Y-%m-%d %H:%M:%S.%f")
    except ValueError:
        return None
    if len(value.rpartition(".")[2]) != 3:
        return None
    return round(moment.replace(tzinfo=_BEIJING).timestamp() * 1000)
