"""The manifest beside a collected job file: the query, the sources read, the counts and the job
file's sha256, so that a job can be traced back to what was asked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import orjson

from batchrecall.collect.job_output import JobFileWriter
from batchrecall.collect.query import Query
from batchrecall.collect.sources import Collected
from batchrecall.results.manifest import manifest_path, tool_version, utc_iso, write_atomically

__all__ = ["existing_job_is_ours", "write_collect_manifest"]

_KIND = "batchrecall collect"


def write_collect_manifest(
    out: Path, query: Query, outcome: Collected, writer: JobFileWriter, *, argv: Sequence[str]
) -> Path:
    path = manifest_path(out)
    data = {
        "kind": _KIND,
        "tool_version": tool_version(),
        "created_at": utc_iso(),
        "command": ["batchrecall", *argv],
        "query": query.describe(),
        "sources": outcome.sources,
        "missing": outcome.missing,
        "unknown_senders": outcome.unknown_senders,
        "notes": outcome.notes,
        "error": outcome.error or None,
        "stopped_at_max_items": outcome.stopped_at_max,
        "scan": {
            "records": outcome.scan.records,
            "parsed": outcome.scan.candidates,
            "malformed": outcome.scan.malformed,
            "malformed_first": outcome.scan.malformed_named,
        },
        "found": outcome.found.counts(),
        "calls": outcome.calls,
        "job": {"path": str(out.resolve()), "rows": writer.rows, "sha256": writer.sha256},
    }
    write_atomically(path, orjson.dumps(data, option=orjson.OPT_INDENT_2))
    return path


def existing_job_is_ours(out: Path) -> bool:
    """Whether `out` is a job file an earlier collect wrote (its manifest says so)."""
    try:
        data = orjson.loads(manifest_path(out).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return False
    return isinstance(data, dict) and data.get("kind") == _KIND
