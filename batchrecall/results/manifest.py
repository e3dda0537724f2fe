"""The audit record beside a results file: `<results>.manifest.json`, one entry per run.

Retention and compliance runs must say what was run, by whom, on which files and settings, and
what came of it. The manifest is written when a run starts and again when it ends, each time
atomically (a temporary file renamed over it); `--resume` appends a new entry to the runs.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from batchrecall.redact import redact

if TYPE_CHECKING:  # collect writes its manifest without loading the run's modules
    from batchrecall.config import Config
    from batchrecall.models import JobRef
    from batchrecall.results.summary import Summary

MANIFEST_SUFFIX = ".manifest.json"
FORMAT_VERSION = 1


def manifest_path(results: Path) -> Path:
    return results.with_name(results.name + MANIFEST_SUFFIX)


def tool_version() -> str:
    try:
        return metadata.version("batchrecall")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def utc_iso(epoch: float | None = None) -> str:
    moment = datetime.now(UTC) if epoch is None else datetime.fromtimestamp(epoch, UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def job_facts(job: JobRef) -> dict[str, Any]:
    """A job file's name, absolute path, size, sha256 and rows (non-blank lines, less a CSV's
    header), read in one streaming pass."""
    digest = hashlib.sha256()
    rows = size = 0
    with job.path.open("rb") as handle:
        for line in handle:
            digest.update(line)
            size += len(line)
            rows += bool(line.strip())
    if job.path.suffix.lower() == ".csv" and rows:
        rows -= 1
    return {
        "name": job.name,
        "path": str(job.path.resolve()),
        "bytes": size,
        "sha256": digest.hexdigest(),
        "rows": rows,
        "encoding": job.encoding,
    }


def describe_config(config: Config) -> dict[str, Any]:
    """The effective config as plain data; every secret shows only its reference
    (`env:NAME`, `file:PATH`) or `***`."""
    run = config.run
    lanes: dict[str, Any] = {}
    for key, lane in sorted(config.lanes.items()):
        entry: dict[str, Any] = {"base_url": lane.base_url, "rate": lane.rate}
        entry.update(lane.credentials)
        entry.update({name: secret.reference for name, secret in lane.secrets.items()})
        if key.vendor == "easemob":
            entry["batch_recall"] = lane.batch_recall
        lanes[str(key)] = entry
    return {
        "source": config.source,
        "run": {name: getattr(run, name) for name in run.__dataclass_fields__},
        "lanes": lanes,
    }


def operator() -> dict[str, str]:
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        user = "unknown"
    return {"user": user, "host": socket.gethostname()}


def summary_counts(
    summary: Summary, *, items: int, invalid_rows: int, duplicates: int
) -> dict[str, Any]:
    """A run's outcome counts: the job's items, invalid rows and duplicates apart, as the plan
    and the report count them; then what this run wrote."""
    return {
        "items": items,
        "invalid_rows": invalid_rows,
        "duplicates": duplicates,
        "items_this_run": summary.items_this_run,
        "statuses": _plain(summary.item_statuses),
        "lanes": {lane: _plain(counts) for lane, counts in sorted(summary.lanes.items())},
        "errors": _plain(summary.item_errors),
        "stopped_lanes": _plain(summary.stopped_lanes),
        "throttles": _plain({lane: n for lane, n in summary.throttles.items() if n}),
    }


def _plain(counts: Mapping[str, Any]) -> dict[str, Any]:
    """String keys (statuses and error codes are str enums, which JSON keys cannot be)."""
    return {str(key): value for key, value in counts.items()}


class Manifest:
    """The manifest of one results file, as this process adds its run to it."""

    def __init__(self, results: Path, *, append: bool) -> None:
        self.path = manifest_path(results)
        self.warning = ""
        self._data: dict[str, Any] = {"format": FORMAT_VERSION, "results": str(results)}
        self._runs: list[dict[str, Any]] = []
        if append and self.path.exists():
            try:
                runs = read_manifest(self.path)["runs"]
                self._runs = list(runs)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                kept = self.path.with_name(self.path.name + ".unreadable")
                os.replace(self.path, kept)
                self.warning = f"{self.path} could not be read ({exc}); kept it as {kept}"
        self._data["runs"] = self._runs

    @property
    def current(self) -> dict[str, Any]:
        return self._runs[-1]

    def start(
        self,
        *,
        run_id: str,
        command: Sequence[str],
        jobs: Sequence[JobRef],
        config: Config,
        resume: bool,
        emulated: bool,
        plan: Mapping[str, Any],
    ) -> None:
        self._runs.append(
            {
                "run_id": run_id,
                "tool": "batchrecall",
                "version": tool_version(),
                "command": [redact(word) for word in command],
                "cwd": os.getcwd(),
                "operator": operator(),
                "resume": resume,
                "emulated": emulated,
                "started_at": utc_iso(),
                "finished_at": None,
                "jobs": [job_facts(job) for job in jobs],
                "config": describe_config(config),
                "plan": dict(plan),
            }
        )
        self.write()

    def finish(
        self,
        summary: Summary,
        exit_code: int,
        *,
        items: int | None = None,
        invalid_rows: int | None = None,
        duplicates: int | None = None,
    ) -> None:
        """The end of the run; the job's counts default to what this run wrote."""
        counts = summary_counts(
            summary,
            items=summary.items if items is None else items,
            invalid_rows=summary.invalid_rows if invalid_rows is None else invalid_rows,
            duplicates=summary.all_duplicates if duplicates is None else duplicates,
        )
        self.current.update(
            {
                "finished_at": utc_iso(),
                "duration_s": round(summary.duration_s, 3),
                "stop_reason": summary.stop_reason,
                "counts": counts,
                "exit_code": int(exit_code),
            }
        )
        self.write()

    def write(self) -> None:
        write_atomically(self.path, orjson.dumps(self._data, option=orjson.OPT_INDENT_2) + b"\n")


def write_atomically(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never half of one, even after a crash."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def read_manifest(path: Path) -> dict[str, Any]:
    """A manifest's content; ValueError if it is not one."""
    data = orjson.loads(path.read_bytes())
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
        raise ValueError("not a batchrecall manifest")
    return data


def recorded_encodings(results: Iterable[Path]) -> dict[str, str]:
    """Each job's text encoding as the manifests of these results files recorded it (the
    latest run's where runs differ); a job no manifest names is not in it."""
    encodings: dict[str, str] = {}
    for path in results:
        manifest = manifest_path(path)
        if not manifest.is_file():
            continue
        try:
            runs = read_manifest(manifest).get("runs") or []
        except (OSError, ValueError):
            continue  # the report says what is wrong with a manifest; here it only lacks a hint
        for run in runs:
            for job in run.get("jobs") or []:
                if isinstance(job, dict) and isinstance(job.get("encoding"), str):
                    encodings[str(job.get("name"))] = job["encoding"]
    return encodings
