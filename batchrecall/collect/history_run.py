"""Collect from a vendor's history API: the run's client, the lane's permit store and retry
policy, then the vendor's source. The async shell around the sources."""

from __future__ import annotations

from dataclasses import dataclass, replace

import anyio
import httpx

from batchrecall.collect.history_calls import HistoryLane
from batchrecall.collect.query import Query
from batchrecall.collect.sources import Collected, Progress, RowSink
from batchrecall.config import Config, LaneSettings
from batchrecall.errors import CallError
from batchrecall.models import LaneKey, Vendor
from batchrecall.run.clock import Clock, MonotonicClock
from batchrecall.run.limits import lane_identity, open_permit_store, window_for_rate
from batchrecall.run.retry import RetryPolicy
from batchrecall.run.transport import open_client
from batchrecall.vendors.easemob_history import DOCUMENTED_WINDOW

__all__ = [
    "DOCUMENTED_HISTORY_WINDOWS",
    "HistoryRequest",
    "collect_history",
    "history_window",
]

DOCUMENTED_HISTORY_WINDOWS: dict[Vendor, tuple[int, float] | None] = {
    Vendor.EASEMOB: DOCUMENTED_WINDOW,
    # GoEasy and Yunxin document no rate for their history endpoints: the lane's own rate.
    Vendor.GOEASY: None,
    Vendor.YUNXIN: None,
    # Tencent: 200/s per history API (research/history-apis.md §5), shared with the app's own
    # server traffic: half of it, as the lanes' default rate.
    Vendor.TENCENT: (100, 1.0),
    # RongCloud documents no rate for its history log: the lane's own rate.
    Vendor.RONGCLOUD: None,
}

# The export files come from a storage link, not the rated API: a few a second at most.
_DOWNLOADS = (4, 1.0)


def history_window(settings: LaneSettings) -> tuple[int, float]:
    """The config's `history_rate`, else the documented window, else the lane's `rate`."""
    if settings.history_rate is not None:
        return window_for_rate(settings.history_rate)
    documented = DOCUMENTED_HISTORY_WINDOWS[settings.lane.vendor]
    return documented if documented is not None else window_for_rate(settings.rate)


@dataclass(frozen=True, kw_only=True)
class HistoryRequest:
    query: Query
    config: Config
    now_ms: int
    operator: str | None = None
    idle: bool = False
    """A retention run: the accounts' (query.senders) conversations idle before until_ms."""
    transport: httpx.AsyncBaseTransport | None = None
    clock: Clock | None = None


def collect_history(
    request: HistoryRequest, sink: RowSink, progress: Progress | None = None
) -> Collected:
    """Ask the vendor's history for the query, rows into `sink`; blocks until done."""
    return anyio.run(_collect, request, sink, progress, backend="asyncio")


async def _collect(request: HistoryRequest, sink: RowSink, progress: Progress | None) -> Collected:
    query = request.query
    settings = request.config.lane(LaneKey(vendor=query.vendor, app=query.app))
    store = open_permit_store(request.config.limits, clock=request.clock)
    policy = RetryPolicy(max_attempts=request.config.run.max_attempts)
    lane = HistoryLane(
        key=f"{lane_identity(settings)}:history",
        window=history_window(settings),
        store=store,
        policy=policy,
        clock=request.clock or MonotonicClock(),
    )
    downloads = replace(lane, key=f"{lane.key}:download", window=_DOWNLOADS)
    downloading = query.vendor is Vendor.EASEMOB  # an hourly export: its files are counted
    try:
        async with open_client(request.config.run, request.transport) as client:
            if query.vendor is Vendor.YUNXIN:
                from batchrecall.collect.from_yunxin import YunxinHistory, collect_yunxin
                from batchrecall.vendors.yunxin import YunxinAdapter

                history = YunxinHistory(YunxinAdapter(settings, client), lane)
                if request.idle:
                    from batchrecall.collect.retention import collect_idle_yunxin

                    return await collect_idle_yunxin(query, history, sink, progress=progress)
                return await collect_yunxin(
                    query,
                    history,
                    sink,
                    now_ms=request.now_ms,
                    operator=request.operator,
                    progress=progress,
                )
            if query.vendor is Vendor.EASEMOB:
                from batchrecall.collect.from_easemob import EasemobExports, collect_easemob
                from batchrecall.vendors.easemob import EasemobAdapter

                exports = EasemobExports(EasemobAdapter(settings, client), client, lane, downloads)
                return await collect_easemob(
                    query, exports, settings, sink, now_ms=request.now_ms, progress=progress
                )
            if query.vendor is Vendor.GOEASY:
                from batchrecall.collect.from_goeasy import GoEasyHistory, collect_goeasy
                from batchrecall.vendors.goeasy import GoEasyAdapter

                goeasy = GoEasyHistory(GoEasyAdapter(settings, client), settings, lane)
                return await collect_goeasy(
                    query, goeasy, sink, now_ms=request.now_ms, progress=progress
                )
            if query.vendor in (Vendor.TENCENT, Vendor.RONGCLOUD) and not (
                request.idle or (query.conversations and query.vendor is Vendor.TENCENT)
            ):
                from batchrecall.collect import export_sources
                from batchrecall.collect.from_exports import reader_for
                from batchrecall.collect.hourly_exports import collect_hours

                make = (
                    export_sources.tencent_exports
                    if query.vendor is Vendor.TENCENT
                    else export_sources.rongcloud_exports
                )
                hourly = make(settings, client, lane, downloads)
                downloading = True
                lane = hourly.api  # counted below, whichever window it took
                return await collect_hours(
                    query,
                    hourly,
                    reader_for(query.vendor),
                    sink,
                    now_ms=request.now_ms,
                    progress=progress,
                )
            if query.vendor is Vendor.TENCENT:
                from batchrecall.collect.from_tencent import TencentHistory, collect_tencent
                from batchrecall.vendors.tencent import TencentAdapter

                tencent = TencentHistory(TencentAdapter(settings, client), lane)
                if request.idle:
                    from batchrecall.collect.from_tencent import collect_idle_tencent

                    return await collect_idle_tencent(query, tencent, sink, progress=progress)
                return await collect_tencent(
                    query, tencent, sink, now_ms=request.now_ms, progress=progress
                )
            raise NotImplementedError(query.vendor)
    except CallError as exc:
        # Sent again as the policy allows, or the lane's own failure (credentials): the rows
        # found before it are kept, the error is named.
        sink.collected.error = f"a {query.vendor} history call failed: {exc.message}"
        return sink.collected
    finally:
        sink.collected.calls = {"history": lane.calls, "retries": lane.retries}
        if downloading:
            sink.collected.calls["downloads"] = downloads.calls
        await store.aclose()
