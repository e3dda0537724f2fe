"""`collect --export FILE...`: Easemob export files the operator already downloaded, scanned for
the query's messages, each message once (the vendor may record one twice)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from batchrecall.collect.easemob_records import recall_row
from batchrecall.collect.export_file import ExportError, scan_export
from batchrecall.collect.job_output import JobFileWriter
from batchrecall.collect.query import Query
from batchrecall.collect.sources import Collected, RowSink

__all__ = ["ExportsOutcome", "collect_exports", "read_export"]

ExportsOutcome = Collected  # the outcome of any collect source


def collect_exports(
    files: Sequence[Path], query: Query, writer: JobFileWriter | None
) -> ExportsOutcome:
    """Scan the files in order into `writer` (None: count only, `--dry-run`)."""
    sink = RowSink(query, writer, Collected())
    for path in files:
        if not read_export(path, sink, source={"export": str(path)}):
            break
    return sink.collected


def read_export(path: Path, sink: RowSink, *, source: dict[str, object]) -> bool:
    """One export file's matching messages into `sink`, its source entry appended; False when
    the collect stops here (the file could not be read on, or --max-items was reached)."""
    collected = sink.collected
    query = sink.query
    needles = _needles(query.senders)
    before = collected.scan.records
    try:
        for where, record in scan_export(path, needles=needles, scan=collected.scan):
            row = recall_row(where, record, query, collected.scan)
            if row is None:
                continue
            if not sink.add((row["msg_id"],), row, sender=row["from"], conversation=row["to"]):
                break
    except ExportError as exc:
        collected.error = str(exc)
    collected.sources.append(
        source
        | {"records": collected.scan.records - before}
        | ({"error": collected.error} if collected.error else {})
    )
    collected.units_done += 1
    return not (collected.error or collected.stopped_at_max)


def _needles(senders: Sequence[str]) -> tuple[bytes, ...]:
    """The senders as a line without escapes holds them (the scan parses every line with one);
    none (parse every record) for an id JSON cannot write without an escape."""
    try:
        needles = tuple(b'"' + sender.encode("utf-8") + b'"' for sender in senders)
    except UnicodeEncodeError:  # a lone surrogate from the command line
        return ()
    if any(ch in '"\\' or ch < " " for sender in senders for ch in sender):
        return ()
    return needles
