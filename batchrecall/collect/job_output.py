"""`collect`'s output: the job file (written whole or not at all), the counts a summary shows,
and the manifest beside the job file."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from batchrecall.collect.times import utc_text

__all__ = ["CSV_COLUMNS", "Found", "JobFileWriter"]

_CSV_COLUMNS = ("vendor", "op", "app", "msg_id", "to", "chat_type", "from", "ref", "sent_at")
# The columns of a CSV job file by vendor: every field collect writes for it.
CSV_COLUMNS: dict[str, tuple[str, ...]] = {
    "easemob": _CSV_COLUMNS,
    "goeasy": ("vendor", "op", "app", "groupId", "userAId", "userBId", "messages", "ref",
               "sent_at"),
    "yunxin": ("vendor", "op", "app", "conversation_id", "message_server_id",
               "check_team_member_valid", "ref", "sent_at"),
    "tencent": ("vendor", "op", "app", "From_Account", "To_Account", "ToGroupid", "MsgKey",
                "GroupId", "MsgSeq", "ref", "sent_at"),
    "rongcloud": ("vendor", "op", "app", "fromUserId", "conversationType", "targetId",
                  "busChannel", "messageUID", "sentTime", "ref", "sent_at"),
}  # fmt: skip


@dataclass
class Found:
    """What was found: items per sender, conversation and UTC hour, and the time range."""

    items: int = 0
    duplicates: int = 0
    skipped: int = 0
    """Matches the op cannot take (a super team's message for delete_message)."""
    senders: Counter[str] = field(default_factory=Counter)
    conversations: Counter[str] = field(default_factory=Counter)
    hours: Counter[str] = field(default_factory=Counter)
    first_ms: int | None = None
    last_ms: int | None = None

    def add(self, *, sender: str, conversation: str, sent_ms: int) -> None:
        self.items += 1
        self.senders[sender] += 1
        self.conversations[conversation] += 1
        self.hours[utc_text(sent_ms)[:13] + ":00Z"] += 1
        self.first_ms = sent_ms if self.first_ms is None else min(self.first_ms, sent_ms)
        self.last_ms = sent_ms if self.last_ms is None else max(self.last_ms, sent_ms)

    def counts(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "duplicates": self.duplicates,
            "skipped": self.skipped,
            "per_sender": dict(self.senders.most_common()),
            "per_conversation": dict(self.conversations.most_common()),
            "per_hour": dict(sorted(self.hours.items())),
            "first_sent_at": None if self.first_ms is None else utc_text(self.first_ms),
            "last_sent_at": None if self.last_ms is None else utc_text(self.last_ms),
        }


class JobFileWriter:
    """Rows into a temporary file beside `out`; `commit` moves it into place (fsync'd), so a
    failed or empty collect leaves no job file behind."""

    def __init__(self, out: Path, columns: tuple[str, ...] = _CSV_COLUMNS) -> None:
        self.out = out
        self._csv = out.suffix.lower() == ".csv"
        self._columns = columns
        out.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
        self._temporary = Path(name)
        self._file = os.fdopen(handle, "wb")
        self._digest = hashlib.sha256()
        self.rows = 0
        if self._csv:
            self._write_csv(list(self._columns))

    def write(self, row: dict[str, Any]) -> None:
        if self._csv:
            self._write_csv([_cell(row.get(column)) for column in self._columns])
        else:
            self._write(orjson.dumps(row) + b"\n")
        self.rows += 1

    def _write_csv(self, cells: list[str]) -> None:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerow(cells)
        self._write(text.getvalue().encode())

    def _write(self, data: bytes) -> None:
        self._digest.update(data)
        self._file.write(data)

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def commit(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._temporary, self.out)

    def abort(self) -> None:
        self._file.close()
        self._temporary.unlink(missing_ok=True)


def _cell(value: Any) -> str:
    """A CSV cell as the job reader takes it: booleans true/false, a list as its JSON text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return orjson.dumps(value).decode()
    return str(value)
