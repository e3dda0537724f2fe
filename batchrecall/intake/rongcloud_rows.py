"""RongCloud job rows (SPEC §2): `recall` and `clear_history`, with RongCloud's own field names.

Sources: research/vendors-tencent-rongcloud.md §R2 (recall, its parameter table) and §R3 (the
history clean, seen in the official Go SDK only). Every value goes into a form body, never into
a URL path, so ids are any non-empty text.
"""

from __future__ import annotations

from typing import Any

from batchrecall.intake.fields import RowError, RowFields, show
from batchrecall.intake.targets import Target

# §R2: 1 one-to-one, 3 group, 4 chatroom, 6 system, 10 ultra group; the clean takes 1, 3, 4, 6.
RECALL_TYPES = (1, 3, 4, 6, 10)
CLEAR_HISTORY_TYPES = (1, 3, 4, 6)
_MAX_MS = 10**16  # as the common `sent_at`: a time in ms before the year 2286
_DIGITS_MAX = 17


def recall(row: RowFields) -> list[Target]:
    """One message a row: `isDelete` (0 default: leave a recall notice; 1: delete without one)
    is part of the identity (the registration's), the other optional fields are sent only when
    given."""
    message_uid = row.ident("messageUID")
    params: dict[str, Any] = {
        "fromUserId": row.ident("fromUserId"),
        "conversationType": _conversation_type(row, RECALL_TYPES),
        "targetId": row.ident("targetId"),
        "messageUID": message_uid,
        "sentTime": _ms(row, "sentTime"),
    }
    bus_channel = row.optional_ident("busChannel")
    if bus_channel is not None:
        params["busChannel"] = bus_channel
    is_delete = _zero_or_one(row, "isDelete")
    if is_delete is not None:
        params["isDelete"] = is_delete
    is_admin = _zero_or_one(row, "isAdmin")
    if is_admin is not None:
        params["isAdmin"] = is_admin
    extra = row.optional_text("extra")
    if extra is not None:
        params["extra"] = extra
    disable_push = row.optional_flag("disablePush")
    if disable_push is not None:
        params["disablePush"] = disable_push
    return [Target(message_uid, (message_uid,), params)]


def clear_history(row: RowFields) -> list[Target]:
    """One conversation's history, all of it or what was sent before `msgTimestamp` (which,
    changing what is cleaned, is part of the identity when given)."""
    sender = row.ident("fromUserId")
    kind = _conversation_type(row, CLEAR_HISTORY_TYPES)
    target_id = row.ident("targetId")
    params: dict[str, Any] = {"conversationType": kind, "fromUserId": sender, "targetId": target_id}
    if row.has("msgTimestamp"):
        params["msgTimestamp"] = _ms(row, "msgTimestamp")
    ids = (sender, str(kind), target_id)
    return [Target(f"{sender}/{kind}/{target_id}", ids, params)]


def _conversation_type(row: RowFields, allowed: tuple[int, ...]) -> int:
    if not row.has("conversationType"):
        raise RowError("missing field 'conversationType'")
    return row.small_int("conversationType", allowed, default=allowed[0])


def _ms(row: RowFields, name: str) -> int:
    """A time in ms since the epoch: a JSON integer, or its digits (a CSV cell)."""
    if not row.has(name):
        raise RowError(f"missing field {show(name)}")
    value = row.get(name)
    if isinstance(value, float):
        raise RowError(f"field {show(name)} is a float and may have lost digits; write digits")
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= _DIGITS_MAX:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < _MAX_MS:
        raise RowError(
            f"field {show(name)} must be a time in ms since the epoch, a positive integer "
            f"(got {show(value)})"
        )
    return value


def _zero_or_one(row: RowFields, name: str) -> int | None:
    """RongCloud's 0/1 switches (`isDelete`, `isAdmin`): 0 or 1, or a boolean for them."""
    value = row.get(name)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return value
    try:
        flag = row.optional_flag(name)
    except RowError:
        raise RowError(f"field {show(name)} must be 0 or 1 (got {show(value)})") from None
    return None if flag is None else int(flag)
