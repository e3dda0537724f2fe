"""Tencent Cloud IM's hourly history export, the wire only (tencentcloud.com/document/product/
1047/34885, research/history-apis.md §5): `v4/open_msg_svc/get_history` with
`{"ChatType": "C2C"|"Group", "MsgTime": "yyyymmddhh"}` (Beijing time, one hour) answers
`File[]`, each a gzip file's `URL` and `ExpireTime`; files are kept 7 days.

What Tencent answers for an hour not generated yet or already deleted is not documented: an
answer without a file is read as the hour's absence (`HourMissing`), not a failure (inferred).
"""

from __future__ import annotations

from typing import Any

from batchrecall.errors import ErrorCode, PermanentCallError
from batchrecall.vendors.easemob_history import HourMissing

__all__ = ["CHAT_TYPES", "DOCUMENTED_WINDOW", "GET_HISTORY", "history_body", "read_history"]

GET_HISTORY = "/v4/open_msg_svc/get_history"
CHAT_TYPES = ("C2C", "Group")
# "最高调用频率 10次/秒" (the Chinese page of 1047/34885, 2024-07-16).
DOCUMENTED_WINDOW = (10, 1.0)
HOUR_OFFSET = "+08:00"  # "MsgTime 使用的是北京时间,不支持其他时区"


def history_body(chat_type: str, hour: str) -> dict[str, Any]:
    return {"ChatType": chat_type, "MsgTime": hour}


def read_history(answer: dict[str, Any]) -> list[str] | HourMissing:
    """The hour's download URLs (an accepted answer, as `read_only` returns it), or its
    absence. The URLs are credentials until they expire: never put in an error."""
    files = answer.get("File")
    if files is None or files == []:
        return HourMissing(200, "no File", "Tencent answered no message record file for the hour")
    if not isinstance(files, list):
        raise PermanentCallError(ErrorCode.VENDOR_ERROR, "File is not a list", http_status=200)
    urls = []
    for entry in files:
        url = entry.get("URL") if isinstance(entry, dict) else None
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise PermanentCallError(
                ErrorCode.VENDOR_ERROR, "a File entry names no download URL", http_status=200
            )
        urls.append(url)
    return urls
