"""Easemob's hourly history export, as the emulator keeps it (research/history-apis §1.1-1.2):
a log of the messages as they were sent, which a recall does not change, served one hour at a
time as a gzip file of one record a line behind a signed link on the emulator.

The hour is read in the cluster's time zone (`offset`, Beijing time by default: the newer
document's China clusters). An hour is served once it has begun (`delay_s` None, what a
rehearsal needs) or once it ended `delay_s` ago (Easemob: "建议 24 小时后拉取"); before that, or
past the 3 days kept, the answer is 400 "expired or unstored"; an hour without a message is 404.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson

RETENTION_S = 3 * 86400.0  # "你最多可以获取最近 3 天的历史消息记录"
LINK_LIFETIME_S = 1800  # old English doc: "valid for 30 minutes"
EXPORT_CALLS_PER_MINUTE = 10  # "调用频率上限 10 次/分钟/App Key"
BEIJING = timezone(timedelta(hours=8))


@dataclass
class ExportLog:
    offset: timezone = BEIJING
    delay_s: float | None = None
    retention_s: float = RETENTION_S
    _by_hour: dict[str, list[bytes]] = field(default_factory=lambda: defaultdict(list))
    _key: bytes = field(default_factory=lambda: secrets.token_bytes(16))

    def record(self, msg_id: str, *, sender: str, to: str, chat_type: str, sent_at: float) -> None:
        """A sent message, as the documented record (the new doc's `direction`: outgoing)."""
        stamp = int(sent_at * 1000)
        # A copy: orjson's own bytes keep its 4 KiB buffer, which a million messages notice.
        line = bytes(
            memoryview(
                orjson.dumps(
                    {
                        "msg_id": msg_id,
                        "timestamp": stamp,
                        "direction": "outgoing",
                        "to": "XXXX",
                        "from": "XXXX",
                        "chat_type": chat_type,
                        "payload": {
                            "bodies": [{"msg": "", "type": "txt"}],
                            "ext": {},
                            "from": sender,
                            "to": to,
                        },
                    }
                )
            )
        )
        self._by_hour[self.hour_of(sent_at)].append(line)

    def hour_of(self, when_s: float) -> str:
        return datetime.fromtimestamp(when_s, UTC).astimezone(self.offset).strftime("%Y%m%d%H")

    def refusal(self, hour: str, now_s: float) -> tuple[int, str, str] | None:
        """Why the hour has no link (status, error, description), or None."""
        try:
            start = datetime.strptime(hour, "%Y%m%d%H").replace(tzinfo=self.offset).timestamp()
        except ValueError:
            return 400, "illegal_argument", f"illegal arguments: time: {hour}"
        ready_at = start if self.delay_s is None else start + 3600 + self.delay_s
        if now_s < ready_at or now_s - (start + 3600) > self.retention_s:
            return (
                400,
                "illegal_argument",
                f"illegal arguments: time: {hour}, maybe chat message history is expired or "
                "unstored",
            )
        if not self._by_hour.get(hour):
            return (
                404,
                "storage_object_not_found",
                f"Failed to find chat message history download url for time: {hour}",
            )
        return None

    def signature(self, hour: str, expires: int) -> str:
        return hmac.new(self._key, f"{hour}:{expires}".encode(), hashlib.sha256).hexdigest()

    def link_query(self, hour: str, now_s: float) -> str:
        expires = int(now_s) + LINK_LIFETIME_S
        return (
            f"Expires={expires}&OSSAccessKeyId=emulator&Signature={self.signature(hour, expires)}"
        )

    def file(self, hour: str, query: dict[str, Any], now_s: float) -> bytes | None:
        """The hour's gzip file for a valid, unexpired link; None otherwise (403)."""
        expires = str(query.get("Expires", ""))
        if not expires.isdigit() or int(expires) < now_s:
            return None
        if not hmac.compare_digest(self.signature(hour, int(expires)), str(query.get("Signature"))):
            return None
        return gzip.compress(b"".join(line + b"\n" for line in self._by_hour.get(hour, [])))
