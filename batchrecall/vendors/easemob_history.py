"""Easemob's hourly history export, the wire only (research/history-apis.md §1.1):
`GET /{org}/{app}/chatmessages/{yyyyMMddHH}` answers the URL of the hour's gzip file
(`data[0].url`, a signed OSS link valid ~30 minutes). An hour not generated yet or past the
retention (400 "... expired or unstored") or without a file (404 storage_object_not_found) is
`HourMissing`, not a failure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import BinaryIO

import httpx

from batchrecall.errors import (
    ErrorCode,
    LaneFatalError,
    PermanentCallError,
    ThrottledError,
    TokenRejectedError,
    TransientCallError,
)
from batchrecall.vendors.base import json_body, retry_after, server_error
from batchrecall.vendors.easemob_answers import description

__all__ = [
    "DOCUMENTED_WINDOW",
    "HourMissing",
    "download",
    "export_hours",
    "export_path",
    "read_export_answer",
]

# Documented rate: "调用频率上限 10 次/分钟/App Key" [DOC message_historical.md].
DOCUMENTED_WINDOW = (10, 60.0)


@dataclass(frozen=True, slots=True)
class HourMissing:
    """The vendor has no file for the hour (yet, or any more): its words."""

    status: int
    error: str
    description: str


def export_hours(since_ms: int, until_ms: int, zone: timezone) -> list[str]:
    """Every `yyyyMMddHH` (in `zone`, the app's cluster time) that [since, until) touches."""
    start = datetime.fromtimestamp(since_ms / 1000, UTC).astimezone(zone)
    hour = start.replace(minute=0, second=0, microsecond=0)
    end = datetime.fromtimestamp(until_ms / 1000, UTC).astimezone(zone)
    hours = []
    while hour < end:
        hours.append(hour.strftime("%Y%m%d%H"))
        hour += timedelta(hours=1)
    return hours


def export_path(app_path: str, hour: str) -> str:
    return f"{app_path}/chatmessages/{hour}"


def read_export_answer(
    response: httpx.Response, *, generation: int, now: float
) -> str | HourMissing:
    """The download URL, the hour's absence, or our error (401: the token; 429 throttled;
    5xx transient; any other refusal permanent, with Easemob's words)."""
    answer = json_body(response)
    status = response.status_code
    error = str(answer.get("error") or "")
    words = description(answer) or f"HTTP {status}"
    if status == 200:
        data = answer.get("data")
        first = data[0] if isinstance(data, list) and data else None
        url = first.get("url") if isinstance(first, dict) else None
        if isinstance(url, str) and url.startswith(("https://", "http://")):
            return url
        raise PermanentCallError(
            ErrorCode.VENDOR_ERROR, "the answer names no download url", http_status=200
        )
    if status == 400 and "expired or unstored" in words:
        return HourMissing(status, error, words)
    if status == 404 and error == "storage_object_not_found":
        return HourMissing(status, error, words)
    if status == 401:
        raise TokenRejectedError(words, token_generation=generation, vendor_code=error)
    if status == 429 and error == "resource_limited":
        raise LaneFatalError(ErrorCode.QUOTA_EXHAUSTED, words, http_status=429, vendor_code=error)
    if status == 429:
        raise ThrottledError(
            ErrorCode.RATE_LIMITED,
            words,
            http_status=429,
            vendor_code=error,
            retry_after=retry_after(response, now=now),
        )
    if status >= 500:
        server_error(response, words, error)
    raise PermanentCallError(ErrorCode.VENDOR_ERROR, words, http_status=status, vendor_code=error)


async def download(client: httpx.AsyncClient, url: str, into: BinaryIO) -> int:
    """Stream the hour's file into `into` (bounded memory); its size. Sent without the app
    token: the link is signed for itself, and its host is the storage's, not Easemob's API.
    Neither the link (a credential until it expires) nor its query is ever put in an error."""
    size = 0
    try:
        async with client.stream("GET", url, headers={"Accept": "*/*"}) as response:
            if response.status_code != 200:
                if response.status_code >= 500:
                    raise TransientCallError(
                        ErrorCode.VENDOR_UNAVAILABLE,
                        f"the export download answered HTTP {response.status_code}",
                        http_status=response.status_code,
                    )
                raise PermanentCallError(
                    ErrorCode.VENDOR_ERROR,
                    f"the export download answered HTTP {response.status_code} (the link may "
                    "have expired: run collect again)",
                    http_status=response.status_code,
                )
            async for chunk in response.aiter_bytes(1 << 18):
                into.write(chunk)
                size += len(chunk)
    except httpx.TransportError as exc:
        raise TransientCallError(
            ErrorCode.VENDOR_UNAVAILABLE, f"the export download failed: {exc.__class__.__name__}"
        ) from None
    return size
