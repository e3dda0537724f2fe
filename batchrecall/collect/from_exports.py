"""`collect --export FILE...`: export files the operator already downloaded (Easemob's hourly
export, Tencent's hourly message records, RongCloud's hourly history log), scanned for the
query's messages, each message once (the vendor may record one twice)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from batchrecall.collect.easemob_records import recall_row
from batchrecall.collect.export_file import ExportError, ExportScan, scan_export
from batchrecall.collect.job_output import JobFileWriter
from batchrecall.collect.query import Query
from batchrecall.collect.rongcloud_records import rongcloud_row
from batchrecall.collect.sources import Collected, RowSink
from batchrecall.collect.tencent_records import Taken, tencent_row
from batchrecall.models import Vendor

__all__ = ["ExportsOutcome", "RecordReader", "collect_exports", "read_export", "reader_for"]

RecordReader = Callable[[str, dict[str, Any], Query, ExportScan], Taken | None]
"""A vendor's record -> the message's identity, its job row, sender and conversation (None: not
wanted; a malformed record is counted in the scan)."""

ExportsOutcome = Collected  # the outcome of any collect source


def collect_exports(
    files: Sequence[Path], query: Query, writer: JobFileWriter | None
) -> ExportsOutcome:
    """Scan the files in order into `writer` (None: count only, `--dry-run`)."""
    sink = RowSink(query, writer, Collected())
    reader = reader_for(query.vendor)
    for path in files:
        if not read_export(path, sink, source={"export": str(path)}, reader=reader):
            break
    return sink.collected


def _easemob_row(
    where: str, record: dict[str, Any], query: Query, scan: ExportScan
) -> Taken | None:
    row = recall_row(where, record, query, scan)
    return None if row is None else ((row["msg_id"],), row, row["from"], row["to"])


def reader_for(vendor: Vendor) -> RecordReader:
    if vendor is Vendor.TENCENT:
        return tencent_row
    if vendor is Vendor.RONGCLOUD:
        return rongcloud_row
    return _easemob_row


def read_export(
    path: Path,
    sink: RowSink,
    *,
    source: dict[str, object],
    reader: RecordReader = _easemob_row,
) -> bool:
    """One export file's matching messages into `sink`, its source entry appended; False when
    the collect stops here (the file could not be read on, or --max-items was reached)."""
    collected = sink.collected
    query = sink.query
    needles = _needles(query.senders)
    before = collected.scan.records
    try:
        for where, record in scan_export(path, needles=needles, scan=collected.scan):
            taken = reader(where, record, query, collected.scan)
            if taken is None:
                continue
            identity, row, sender, conversation = taken
            if not sink.add(identity, row, sender=sender, conversation=conversation):
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
