"""Reading Easemob's answers: per-message results, refusal texts and call-level errors."""

from __future__ import annotations

from typing import Any, NoReturn

import httpx

from batchrecall.errors import (
    ErrorCode,
    LaneFatalError,
    PermanentCallError,
    SplitCallError,
    ThrottledError,
    TokenRejectedError,
    TransientCallError,
)
from batchrecall.models import Call, ItemOutcome, Status
from batchrecall.vendors.base import retry_after, server_error

# Per-message failure texts, Easemob's and Agora Chat's wordings (vendors.md §1.4, §1.6; matched
# as substrings, case-insensitive: the docs print straight and typographic apostrophes).
_RECALL_REASONS: tuple[tuple[str, Status, ErrorCode], ...] = (
    ("exceed recall time", Status.FAILED, ErrorCode.RECALL_WINDOW_EXCEEDED),
    ("exceed call time", Status.FAILED, ErrorCode.RECALL_WINDOW_EXCEEDED),
    ("not_found msg", Status.NOT_FOUND, ErrorCode.NOT_FOUND),
    ("find msg to", Status.FAILED, ErrorCode.RECIPIENT_NOT_FOUND),
    ("find message to", Status.FAILED, ErrorCode.RECIPIENT_NOT_FOUND),
    ("internal error", Status.FAILED, ErrorCode.VENDOR_UNAVAILABLE),
)
# Seed 000: forbidden_op "message recall service is unopened", the recall service is off.
_RECALL_UNOPENED = "service is unopened"


def refused_message(
    response: httpx.Response, answer: dict[str, Any], generation: int, now: float
) -> list[ItemOutcome]:
    """A non-200 answer about one message: its own outcome, or a call-level error."""
    reason = _recall_reason(description(answer))
    if answer.get("error") == "message_recall_error" and reason is not None:
        status, code = reason
        return [refusal_outcome(status, code, response, answer)]
    raise_for_status(response, answer, generation, now)


def per_message(call: Call, response: httpx.Response, answer: dict[str, Any]) -> list[ItemOutcome]:
    """Map each message's `recalled` value; a message the answer does not mention is unconfirmed."""
    by_id: dict[str, dict[str, Any]] = {}
    for entry in entries(answer):
        msg_id = entry.get("msg_id")
        if msg_id is not None:
            by_id.setdefault(str(msg_id), entry)
    outcomes = []
    for item in call.items:
        found = by_id.get(str(item.params["msg_id"]))
        if found is None:
            outcomes.append(
                ItemOutcome(
                    status=Status.FAILED,
                    error=ErrorCode.VENDOR_UNAVAILABLE,
                    message="the answer did not mention this message",
                    http_status=response.status_code,
                )
            )
            continue
        recalled = str(found.get("recalled", ""))
        if recalled == "yes":
            outcomes.append(ItemOutcome(status=Status.OK, http_status=response.status_code))
            continue
        status, code = _recall_reason(recalled) or (Status.FAILED, ErrorCode.VENDOR_ERROR)
        outcomes.append(
            ItemOutcome(
                status=status,
                error=code,
                message=recalled,
                http_status=response.status_code,
                vendor_code=recalled,
            )
        )
    return outcomes


def entries(answer: dict[str, Any]) -> list[dict[str, Any]]:
    data: Any = answer.get("data")
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        data = answer.get("msgs")  # the older per-message failure shape
    if not isinstance(data, list):
        return []
    return [entry for entry in data if isinstance(entry, dict)]


def _recall_reason(text: str) -> tuple[Status, ErrorCode] | None:
    lowered = text.lower().replace("’", "'").replace("‘", "'")
    for needle, status, code in _RECALL_REASONS:
        if needle in lowered:
            return status, code
    return None


def description(answer: dict[str, Any]) -> str:
    return str(answer.get("error_description") or answer.get("error") or "")


def is_easemob_error(answer: dict[str, Any]) -> bool:
    return answer.get("error") in ("organization_application_not_found", "message_recall_error")


def refusal_outcome(
    status: Status, code: ErrorCode, response: httpx.Response, answer: dict[str, Any]
) -> ItemOutcome:
    return ItemOutcome(
        status=status,
        error=code,
        message=description(answer),
        http_status=response.status_code,
        vendor_code=str(answer.get("error", "")),
    )


def raise_for_status(
    response: httpx.Response, answer: dict[str, Any], generation: int, now: float, items: int = 1
) -> NoReturn:
    """Raise the call-level error of a non-200 Easemob answer (`items`: messages it carried)."""
    status = response.status_code
    error = str(answer.get("error", ""))
    text = description(answer) or f"HTTP {status}"
    details: dict[str, Any] = {"http_status": status, "vendor_code": error}
    if status == 401:
        raise TokenRejectedError(text, token_generation=generation, vendor_code=error)
    if status == 429:
        if error == "resource_limited":
            raise LaneFatalError(ErrorCode.QUOTA_EXHAUSTED, text, **details)
        raise ThrottledError(
            ErrorCode.RATE_LIMITED, text, retry_after=retry_after(response, now=now), **details
        )
    if _RECALL_UNOPENED in text.lower():
        # The one forbidden_op the documents name (seed 000): the recall service is off.
        raise LaneFatalError(ErrorCode.SERVICE_DISABLED, text, **details)
    if status == 404 and error == "organization_application_not_found":
        raise LaneFatalError(ErrorCode.AUTH_FAILED, text, **details)
    if status >= 500:
        server_error(response, text, error)
    if status == 408:
        raise TransientCallError(ErrorCode.TIMEOUT, text, **details)
    if status == 403 and items > 1:
        # Refused as a whole for a reason not documented per message: one call each.
        raise SplitCallError(ErrorCode.BATCH_REJECTED, text, **details)
    if status == 403:
        raise PermanentCallError(ErrorCode.PERMISSION_DENIED, text, **details)
    if status == 404 and error == "service_resource_not_found":
        raise PermanentCallError(ErrorCode.NOT_FOUND, text, **details)
    if status == 404 and not error:
        # No Easemob answer (a gateway, a wrong base_url): not the vendor's verdict, so it is
        # tried again, and left to --resume when it keeps coming.
        raise TransientCallError(
            ErrorCode.VENDOR_UNAVAILABLE, f"HTTP 404 without an Easemob answer: {text}", **details
        )
    if status == 413 or "limit" in text.lower() or "size" in text.lower():
        raise PermanentCallError(ErrorCode.BATCH_REJECTED, text, **details)
    raise PermanentCallError(ErrorCode.BAD_REQUEST, text, **details)
