"""`collect tencent` (without `--conversation`) and `collect rongcloud`: the vendor's hourly
export, one request an hour of the window (the hour in the vendor's time zone, Beijing time for
both), then each file its answer names, streamed to a temporary file and scanned as a downloaded
export is (`--export`). An hour the vendor has no file for (not made yet, past its retention,
or without a message) is named in the output and the manifest; the others are still read.
"""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from batchrecall.collect.from_exports import RecordReader, read_export
from batchrecall.collect.history_calls import HistoryLane
from batchrecall.collect.query import Query
from batchrecall.collect.sources import Collected, Progress, RowSink
from batchrecall.collect.times import parse_offset
from batchrecall.errors import PermanentCallError
from batchrecall.vendors.easemob_history import HourMissing, download, export_hours

__all__ = ["HourRequest", "HourlyExports", "collect_hours"]


@dataclass(frozen=True, slots=True)
class HourRequest:
    hour: str
    """`yyyyMMddHH` in the vendor's zone."""
    kind: str = ""
    """Tencent's ChatType (C2C, Group); empty where one file holds every kind."""

    @property
    def name(self) -> str:
        return f"{self.hour} {self.kind}".strip()


@dataclass
class HourlyExports:
    """One vendor's export: `ask` the API for an hour (through the lane's permits and
    retries), then the downloads (through their own: the storage's link is not the API's)."""

    vendor: str
    ask: Callable[[HourRequest], Awaitable[list[str] | HourMissing]]
    client: httpx.AsyncClient
    api: HistoryLane
    downloads: HistoryLane
    kinds: tuple[str, ...] = ("",)
    offset: str = "+08:00"

    async def link(self, request: HourRequest) -> list[str] | HourMissing:
        return await self.api.call(f"{self.vendor}_history_export", lambda: self.ask(request))

    async def fetch(self, url: str, into: Path) -> int:
        async def once() -> int:
            with into.open("wb") as handle:
                return await download(self.client, url, handle)

        return await self.downloads.call(f"{self.vendor}_export_download", once)


async def collect_hours(
    query: Query,
    exports: HourlyExports,
    reader: RecordReader,
    sink: RowSink,
    *,
    now_ms: int,
    progress: Progress | None,
) -> Collected:
    collected = sink.collected
    until = query.until_ms if query.until_ms is not None else now_ms
    hours = export_hours(query.since_ms, until, parse_offset(exports.offset))
    requests = [HourRequest(hour, kind) for hour in hours for kind in exports.kinds]
    collected.unit_name = f"export hours ({exports.offset})"
    collected.units_total = len(requests)
    with tempfile.TemporaryDirectory(prefix="batchrecall-export-") as scratch:
        for request in requests:
            try:
                answer = await exports.link(request)
            except PermanentCallError as exc:
                collected.error = (
                    f"{exports.vendor} refused the export of hour {request.name}: {exc.message}"
                )
                return collected
            if isinstance(answer, HourMissing):
                collected.missing.append(
                    f"{request.name} ({exports.offset}): {answer.error}: {answer.description}"
                )
                collected.sources.append({"hour": request.name, "missing": answer.error})
                collected.units_done += 1
                if progress is not None:
                    progress(collected)
                continue
            for number, url in enumerate(answer, 1):
                path = Path(scratch) / f"{request.hour}-{request.kind or 'all'}-{number}.gz"
                try:
                    size = await exports.fetch(url, path)
                except PermanentCallError as exc:
                    collected.error = f"hour {request.name}: {exc.message}"
                    return collected
                source: dict[str, object] = {"hour": request.name, "bytes": size}
                keep_on = read_export(path, sink, source=source, reader=reader)
                path.unlink(missing_ok=True)
                if not keep_on:
                    return collected
            if len(answer) != 1:
                collected.units_done += 1 - len(answer)  # one unit an hour, however many files
            if progress is not None:
                progress(collected)
    return collected
