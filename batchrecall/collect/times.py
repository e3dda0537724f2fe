"""The times a query names (SPEC §8): an ISO 8601 moment with its offset, or a span back."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from batchrecall.errors import UsageError

__all__ = ["parse_moment", "parse_offset", "utc_text"]

_SPAN = re.compile(r"([0-9]+)([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_OFFSET = re.compile(r"([+-])([0-9]{2}):?([0-9]{2})")


def parse_moment(text: str, *, now_ms: int, option: str) -> int:
    """`2026-12-03T10:00Z`, `2026-12-03T10:00:00+08:00` or a span back from now (`90m`, `2h`,
    `3d`), as ms since the epoch; UsageError naming the option otherwise."""
    value = text.strip()
    span = _SPAN.fullmatch(value)
    if span is not None:
        return now_ms - int(span.group(1)) * _UNIT_S[span.group(2)] * 1000
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{option} {text!r}: expected an ISO 8601 time with its offset "
            "(2026-12-03T10:00Z, 2026-12-03T18:00+08:00) or a span back from now (90m, 2h, 3d)"
        ) from None
    if moment.tzinfo is None:
        raise UsageError(
            f"{option} {text!r} has no offset: add Z for UTC or the zone's offset (+08:00)"
        )
    return round(moment.timestamp() * 1000)


def parse_offset(text: str) -> timezone:
    """`+08:00`, `-0530`, `Z` or `UTC` as a fixed offset; ValueError otherwise."""
    value = text.strip()
    if value.upper() in ("Z", "UTC"):
        return UTC
    match = _OFFSET.fullmatch(value)
    if match is None:
        raise ValueError(f"expected an offset such as +08:00 (got {text!r})")
    sign = 1 if match.group(1) == "+" else -1
    minutes = int(match.group(2)) * 60 + int(match.group(3))
    if minutes >= 24 * 60:
        raise ValueError(f"an offset is less than 24 hours (got {text!r})")
    return timezone(sign * timedelta(minutes=minutes))


def utc_text(ms: int) -> str:
    """ms since the epoch as `2026-12-03T10:00:00.123Z`."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
