"""What a history source hands back to the command: the outcome of a collect over any source (the
counts, the sources read, what was missing) and the progress it reports as it goes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from batchrecall.collect.export_file import ExportScan
from batchrecall.collect.job_output import Found, JobFileWriter
from batchrecall.collect.query import Query

__all__ = ["Collected", "Progress", "RowSink"]

Progress = Callable[["Collected"], None]
"""Called after every unit (an hour, a conversation, a search window) with the counts so far."""


@dataclass
class Collected:
    """What a collect read and found; the manifest and the summary print it."""

    scan: ExportScan = field(default_factory=ExportScan)
    found: Found = field(default_factory=Found)
    sources: list[dict[str, object]] = field(default_factory=list)
    error: str = ""
    """What stopped the collect; the rows found before it are kept."""
    stopped_at_max: bool = False
    missing: list[str] = field(default_factory=list)
    """Hours (or conversations) the vendor had nothing for yet: named, not fatal."""
    unknown_senders: list[str] = field(default_factory=list)
    units_done: int = 0
    units_total: int = 0
    unit_name: str = "export files"
    notes: list[str] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    """The vendor calls made: `history` (each attempt, retries included), `retries`, and
    Easemob's export `downloads`; empty for files read from disk."""


@dataclass
class RowSink:
    """Rows into the writer (None: `--dry-run`), each message once, counted, up to --max-items."""

    query: Query
    writer: JobFileWriter | None
    collected: Collected
    _seen: set[tuple[str, ...]] = field(default_factory=set)

    def add(
        self, identity: tuple[str, ...], row: dict[str, Any], *, sender: str, conversation: str
    ) -> bool:
        """Write the row unless its message was written already; False once --max-items is
        reached (the caller stops)."""
        if not self.fresh(identity):
            return True
        return self.write(row, [(sender, conversation, row["sent_at"])])

    def fresh(self, identity: tuple[str, ...]) -> bool:
        """Whether the message is not among those taken already (counted as a repeat if it is)."""
        if identity in self._seen:
            self.collected.found.duplicates += 1
            return False
        self._seen.add(identity)
        return True

    def room(self) -> int | None:
        """Messages still wanted under --max-items (None: no limit)."""
        limit = self.query.max_items
        return None if limit is None else max(0, limit - self.collected.found.items)

    def write(self, row: dict[str, Any], messages: list[tuple[str, str, int]]) -> bool:
        """One row for these messages (sender, conversation, sent ms); False once --max-items
        is reached."""
        if self.writer is not None:
            self.writer.write(row)
        for sender, conversation, sent_ms in messages:
            self.collected.found.add(sender=sender, conversation=conversation, sent_ms=sent_ms)
        if self.room() == 0:
            self.collected.stopped_at_max = True
            return False
        return True
