"""The hourly exports of Tencent Cloud IM and RongCloud as `collect_hours` reads them: each
vendor's request for an hour, sent by its adapter (credentials, signature, answers)."""

from __future__ import annotations

import time
from dataclasses import replace

import httpx

from batchrecall.collect.history_calls import HistoryLane
from batchrecall.collect.hourly_exports import HourlyExports, HourRequest
from batchrecall.config import LaneSettings
from batchrecall.vendors.easemob_history import HourMissing

__all__ = ["rongcloud_exports", "tencent_exports"]


def tencent_exports(
    settings: LaneSettings, client: httpx.AsyncClient, lane: HistoryLane, downloads: HistoryLane
) -> HourlyExports:
    from batchrecall.vendors.tencent import TencentAdapter
    from batchrecall.vendors.tencent_export_history import (
        CHAT_TYPES,
        DOCUMENTED_WINDOW,
        GET_HISTORY,
        HOUR_OFFSET,
        history_body,
        read_history,
    )

    adapter = TencentAdapter(settings, client)

    async def ask(request: HourRequest) -> list[str] | HourMissing:
        return read_history(
            await adapter.read_only(GET_HISTORY, history_body(request.kind, request.hour))
        )

    if settings.history_rate is None:  # get_history has its own documented rate
        lane = replace(lane, key=f"{lane.key}:export", window=DOCUMENTED_WINDOW)
    return HourlyExports(
        vendor="tencent",
        ask=ask,
        client=client,
        api=lane,
        downloads=downloads,
        kinds=CHAT_TYPES,
        offset=HOUR_OFFSET,
    )


def rongcloud_exports(
    settings: LaneSettings, client: httpx.AsyncClient, lane: HistoryLane, downloads: HistoryLane
) -> HourlyExports:
    from batchrecall.vendors.rongcloud import RongCloudAdapter
    from batchrecall.vendors.rongcloud_history import (
        HISTORY_PATH,
        HOUR_OFFSET,
        history_form,
        read_history_answer,
    )

    adapter = RongCloudAdapter(settings, client)

    async def ask(request: HourRequest) -> list[str] | HourMissing:
        response = await adapter.request(
            "POST",
            adapter.url(HISTORY_PATH),
            content=history_form(request.hour),
            headers=adapter.auth_headers(),
        )
        return read_history_answer(response, now=time.time())

    return HourlyExports(
        vendor="rongcloud",
        ask=ask,
        client=client,
        api=lane,
        downloads=downloads,
        offset=HOUR_OFFSET,
    )
