"""`collect easemob` without `--export`: the hourly history export API (research/history-apis
§1.1), one call an hour of the window (the hour in the app's `export_utc_offset`), then the gzip
file its answer names, streamed to a temporary file and scanned as a downloaded export is.

An hour the vendor has no file for (not generated yet: Easemob suggests waiting up to 24 hours;
or past its 3 days) is named in the output and the manifest; the others are still read.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from batchrecall.collect.from_exports import read_export
from batchrecall.collect.history_calls import HistoryLane
from batchrecall.collect.query import Query
from batchrecall.collect.sources import Collected, Progress, RowSink
from batchrecall.collect.times import parse_offset
from batchrecall.config import LaneSettings
from batchrecall.errors import PermanentCallError, TokenRejectedError
from batchrecall.vendors.easemob import EasemobAdapter
from batchrecall.vendors.easemob_history import (
    HourMissing,
    download,
    export_hours,
    export_path,
    read_export_answer,
)

__all__ = ["EasemobExports", "collect_easemob"]


@dataclass
class EasemobExports:
    """The export API of one Easemob lane (through its permits and retries) and the downloads
    (through their own retries: the storage's link is not the API's rate)."""

    adapter: EasemobAdapter
    client: httpx.AsyncClient
    api: HistoryLane
    downloads: HistoryLane
    wall_clock: Callable[[], float] = time.time

    async def link(self, hour: str) -> str | HourMissing:
        async def once() -> str | HourMissing:
            headers, generation = await self.adapter.bearer()
            response = await self.adapter.request(
                "GET", self.adapter.url(export_path(self.adapter.app_path, hour)), headers=headers
            )
            try:
                return read_export_answer(response, generation=generation, now=self.wall_clock())
            except TokenRejectedError:
                # The token expired or was revoked: a new one, once.
                await self.adapter.refresh_auth(generation)
                headers, generation = await self.adapter.bearer()
                response = await self.adapter.request(
                    "GET",
                    self.adapter.url(export_path(self.adapter.app_path, hour)),
                    headers=headers,
                )
                return read_export_answer(response, generation=generation, now=self.wall_clock())

        return await self.api.call("easemob_chatmessages", once)

    async def fetch(self, url: str, into: Path) -> int:
        async def once() -> int:
            with into.open("wb") as handle:
                return await download(self.client, url, handle)

        return await self.downloads.call("easemob_export_download", once)


async def collect_easemob(
    query: Query,
    exports: EasemobExports,
    settings: LaneSettings,
    sink: RowSink,
    *,
    now_ms: int,
    progress: Progress | None,
) -> Collected:
    collected = sink.collected
    zone = parse_offset(settings.export_utc_offset)
    until = query.until_ms if query.until_ms is not None else now_ms
    hours = export_hours(query.since_ms, until, zone)
    collected.unit_name = f"export hours ({settings.export_utc_offset})"
    collected.units_total = len(hours)
    with tempfile.TemporaryDirectory(prefix="batchrecall-export-") as scratch:
        for hour in hours:
            try:
                answer = await exports.link(hour)
            except PermanentCallError as exc:
                collected.error = f"Easemob refused the export of hour {hour}: {exc.message}"
                return collected
            if isinstance(answer, HourMissing):
                collected.missing.append(
                    f"{hour} ({settings.export_utc_offset}): HTTP {answer.status} "
                    f"{answer.error}: {answer.description}"
                )
                collected.sources.append(
                    {"hour": hour, "missing": f"HTTP {answer.status} {answer.error}"}
                )
                collected.units_done += 1
                if progress is not None:
                    progress(collected)
                continue
            path = Path(scratch) / f"{hour}.gz"
            try:
                size = await exports.fetch(answer, path)
            except PermanentCallError as exc:
                collected.error = f"hour {hour}: {exc.message}"
                return collected
            keep_on = read_export(path, sink, source={"hour": hour, "bytes": size})
            path.unlink(missing_ok=True)
            if progress is not None:
                progress(collected)
            if not keep_on:
                break
    return collected
