"""Tencent Cloud IM's hourly message export in the emulator (tencentcloud.com/document/product/
1047/34885): `v4/open_msg_svc/get_history` answers, for one ChatType and one Beijing-time hour,
`File[]` with the `URL` of a gzip file of the hour's records (one JSON record a line) on the
emulator, its `ExpireTime` and sizes; files are kept 7 days.

An hour is served once it has begun (what a rehearsal needs); before that, past the 7 days, or
without a message the answer holds no file (what Tencent answers then is not documented:
inferred, README).
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import orjson
from starlette.routing import Route

from batchrecall.emulators.common import SlidingWindow
from batchrecall.emulators.wire import Answer, Incoming

if TYPE_CHECKING:
    from batchrecall.emulators.tencent import TencentEmulator

GET_HISTORY = "/v4/open_msg_svc/get_history"
HISTORY_FIELDS = frozenset({"ChatType", "MsgTime"})
RETENTION_S = 7 * 86400.0  # "文件有效期7天"
LINK_LIFETIME_S = 3600  # the link's lifetime is not documented (inferred)
EXPORT_RATE = 10  # "最高调用频率 10次/秒"
BEIJING = timezone(timedelta(hours=8))  # "MsgTime 使用的是北京时间"
_DOWNLOAD = "/_export/{chat}/{hour}.gz"


class TencentExport:
    """The hour files of one app, cut from its messages when asked."""

    def __init__(self, emulator: TencentEmulator) -> None:
        self.emulator = emulator
        self._key = secrets.token_bytes(16)
        self._window = SlidingWindow.per_second(EXPORT_RATE)

    def routes(
        self, route: Callable[..., Route], no_items: Callable[[Incoming], Any]
    ) -> list[Route]:
        return [
            route(GET_HISTORY, "POST", self._get_history, no_items),
            route(_DOWNLOAD, "GET", self._download, no_items),
        ]

    def file(self, chat_type: str, hour: str) -> bytes:
        lines = [
            orjson.dumps(record) + b"\n"
            for sent_at, record in self.emulator.state.sent_records(chat_type)
            if _hour_of(sent_at) == hour
        ]
        return gzip.compress(b"".join(lines))

    def _get_history(self, incoming: Incoming) -> Answer:
        from batchrecall.emulators.tencent import _THROTTLED_INFO, THROTTLED, _answer, _reject
        from batchrecall.emulators.tencent_state import OK

        body = self.emulator._gate(incoming, GET_HISTORY)
        if not self._window.admit(self.emulator.clock()):
            raise _reject(THROTTLED, _THROTTLED_INFO)
        chat_type, hour = body.get("ChatType"), body.get("MsgTime")
        if chat_type not in ("C2C", "Group"):
            raise _reject(50002, "ChatType: C2C or Group expected")
        start = _hour_start(hour)
        if start is None:
            raise _reject(50002, "MsgTime: yyyymmddhh expected")
        assert isinstance(chat_type, str)
        assert isinstance(hour, str)
        now = self.emulator.clock()
        if now < start or now - (start + 3600) > RETENTION_S:
            return _answer(OK, extra={"File": []})
        content = self.file(chat_type, hour)
        if len(gzip.decompress(content)) == 0:
            return _answer(OK, extra={"File": []})
        expires = int(now) + LINK_LIFETIME_S
        base = incoming.url.split("/v4/", 1)[0]
        url = (
            f"{base}/_export/{chat_type}/{hour}.gz?expires={expires}"
            f"&sig={self._signature(chat_type, hour, expires)}"
        )
        entry = {
            "URL": url,
            "ExpireTime": datetime.fromtimestamp(expires, BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
            "FileSize": len(gzip.decompress(content)),
            "FileMD5": hashlib.md5(gzip.decompress(content)).hexdigest(),
            "GzipSize": len(content),
            "GzipMD5": hashlib.md5(content).hexdigest(),
        }
        return _answer(OK, extra={"File": [entry]})

    def _download(self, incoming: Incoming) -> Answer:
        """The file behind a link: no UserSig (the link is signed for itself)."""
        chat, hour = incoming.path_params["chat"], incoming.path_params["hour"]
        expires = str(incoming.query.get("expires", ""))
        valid = (
            expires.isdigit()
            and int(expires) >= self.emulator.clock()
            and hmac.compare_digest(
                self._signature(chat, hour, int(expires)), str(incoming.query.get("sig", ""))
            )
        )
        if not valid:
            return Answer(status=403, body="AccessDenied: the link is invalid or expired")
        return Answer(status=200, body=self.file(chat, hour))

    def _signature(self, chat: str, hour: str, expires: int) -> str:
        return hmac.new(self._key, f"{chat}:{hour}:{expires}".encode(), hashlib.sha256).hexdigest()


def _hour_of(when_s: float) -> str:
    return datetime.fromtimestamp(when_s, UTC).astimezone(BEIJING).strftime("%Y%m%d%H")


def _hour_start(hour: Any) -> float | None:
    if not isinstance(hour, str) or len(hour) != 10 or not hour.isdigit():
        return None
    try:
        return datetime.strptime(hour, "%Y%m%d%H").replace(tzinfo=BEIJING).timestamp()
    except ValueError:
        return None


__all__ = ["GET_HISTORY", "HISTORY_FIELDS", "TencentExport"]
