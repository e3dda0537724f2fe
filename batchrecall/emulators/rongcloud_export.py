"""RongCloud's hourly message history log in the emulator (research/history-apis.md §6):
`POST /message/history.json` with the form `date=yyyyMMddHH` (Beijing time) answers
`{"code": 200, "url": "...", "date": "..."}`, the url of a gzip file of the hour's messages on
the emulator, or an empty url when the hour has none (or none yet, or past the 3 days kept).
Without the service enabled the answer is 1009 (HTTP 430).

The log's line format is not documented: one JSON record a line with `fromUserId`,
`conversationType`, `targetId`, `msgUID` and `dateTime` (`yyyy-MM-dd HH:mm:ss.SSS`, Beijing
time) is played here (inferred, README).
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import orjson
from starlette.routing import Route

from batchrecall.emulators.wire import Answer, Incoming

if TYPE_CHECKING:
    from batchrecall.emulators.rongcloud import RongCloudEmulator

HISTORY = "/message/history.json"
RETENTION_S = 3 * 86400.0  # "will be deleted from RongCloud servers after 3 days"
LINK_LIFETIME_S = 3600  # not documented (inferred)
BEIJING = timezone(timedelta(hours=8))
_DOWNLOAD = "/_export/history/{hour}.gz"

FormRoute = Callable[[str, Callable[[Incoming, Mapping[str, str]], Answer], str], Route]


class RongCloudExport:
    """The hour files of one app, cut from its messages when asked."""

    def __init__(self, emulator: RongCloudEmulator) -> None:
        self.emulator = emulator
        self.enabled = True
        """False: the app has not enabled the history log; every request answers 1009."""
        self._key = secrets.token_bytes(16)

    def routes(self, form_route: FormRoute, route: Callable[..., Route]) -> list[Route]:
        return [
            form_route(HISTORY, self._history, "date"),
            route(_DOWNLOAD, "GET", self._download, lambda _: ()),
        ]

    def file(self, hour: str) -> bytes:
        lines = []
        for message in self.emulator.state.sent_messages():
            moment = datetime.fromtimestamp(message.sent_ms / 1000, UTC).astimezone(BEIJING)
            if moment.strftime("%Y%m%d%H") != hour:
                continue
            record: dict[str, Any] = {
                "fromUserId": message.sender,
                "targetId": message.target_id,
                "conversationType": message.conversation_type,
                "msgUID": message.uid,
                "dateTime": moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{message.sent_ms % 1000:03d}",
                "classname": "RC:TxtMsg",
                "content": {"content": ""},
            }
            if message.bus_channel:
                record["busChannel"] = message.bus_channel
            lines.append(orjson.dumps(record) + b"\n")
        return gzip.compress(b"".join(lines))

    def _history(self, incoming: Incoming, form: Mapping[str, str]) -> Answer:
        from batchrecall.emulators.rongcloud import _answer, _known, _reject
        from batchrecall.emulators.rongcloud_state import BAD_PARAMETER, NOT_ENABLED, OK, WORDS

        self.emulator._gate(incoming, form)
        _known(form, frozenset({"date"}))
        if not self.enabled:
            raise _reject(NOT_ENABLED, WORDS[NOT_ENABLED])
        hour = form.get("date", "")
        start = _hour_start(hour)
        if start is None:
            raise _reject(BAD_PARAMETER, "date: yyyyMMddHH expected")
        now = self.emulator.clock()
        url = ""
        if start <= now and now - (start + 3600) <= RETENTION_S:
            content = self.file(hour)
            if gzip.decompress(content):
                expires = int(now) + LINK_LIFETIME_S
                base = incoming.url.split(HISTORY, 1)[0]
                url = (
                    f"{base}/_export/history/{hour}.gz?expires={expires}"
                    f"&sig={self._signature(hour, expires)}"
                )
        answer = _answer(OK)
        return Answer(
            status=answer.status, body={"code": OK, "url": url, "date": hour}, code=answer.code
        )

    def _download(self, incoming: Incoming) -> Answer:
        hour = incoming.path_params["hour"]
        expires = str(incoming.query.get("expires", ""))
        valid = (
            expires.isdigit()
            and int(expires) >= self.emulator.clock()
            and hmac.compare_digest(
                self._signature(hour, int(expires)), str(incoming.query.get("sig", ""))
            )
        )
        if not valid:
            return Answer(status=403, body="AccessDenied: the link is invalid or expired")
        return Answer(status=200, body=self.file(hour))

    def _signature(self, hour: str, expires: int) -> str:
        return hmac.new(self._key, f"{hour}:{expires}".encode(), hashlib.sha256).hexdigest()


def _hour_start(hour: str) -> float | None:
    if len(hour) != 10 or not hour.isdigit():
        return None
    try:
        return datetime.strptime(hour, "%Y%m%d%H").replace(tzinfo=BEIJING).timestamp()
    except ValueError:
        return None


__all__ = ["HISTORY", "RongCloudExport"]
