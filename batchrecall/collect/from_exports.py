"""`collect --export FILE...`: Easemob export files the operator already downloaded, scanned for
the query's messages, each message once (the vendor may record one twice)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import orjson

from batchrecall.collect.easemob_records import recall_row
from batchrecall.collect.export_file import ExportError, scan_export
from batchrecall.collect.job_output import JobFileWriter
from batchrecall.collect.query import Query
from batchrecall.collect.sources import Collected

__all__ = ["ExportsOutcome", "collect_exports"]


ExportsOutcome = Collected  # the outcome of any collect source


def collect_exports(
    files: Sequence[Path], query: Query, writer: JobFileWriter | None
) -> ExportsOutcome:
    """Scan the files in order into `writer` (None: count only, `--dry-run`)."""
    outcome = ExportsOutcome()
    needles = _needles(query.senders)
    seen: set[str] = set()
    for path in files:
        before = outcome.scan.records
        try:
            for where, record in scan_export(path, needles=needles, scan=outcome.scan):
                row = recall_row(where, record, query, outcome.scan)
                if row is None:
                    continue
                if row["msg_id"] in seen:
                    outcome.found.duplicates += 1
                    continue
                seen.add(row["msg_id"])
                if writer is not None:
                    writer.write(row)
                outcome.found.add(
                    sender=row["from"], conversation=row["to"], sent_ms=row["sent_at"]
                )
                if query.max_items is not None and outcome.found.items >= query.max_items:
                    outcome.stopped_at_max = True
                    break
        except ExportError as exc:
            outcome.error = str(exc)
        outcome.sources.append(
            {"export": str(path), "records": outcome.scan.records - before}
            | ({"error": outcome.error} if outcome.error else {})
        )
        if outcome.error or outcome.stopped_at_max:
            break
    return outcome


def _needles(senders: Sequence[str]) -> tuple[bytes, ...]:
    """The senders as they appear in the export's JSON text; none (parse every record) where an
    id might be written escaped."""
    if all(sender.isascii() and sender.isprintable() and not set(sender) & set('"\\/')
           for sender in senders):  # fmt: skip
        return tuple(orjson.dumps(sender) for sender in senders)
    return ()
