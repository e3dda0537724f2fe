"""Reading Tencent Cloud IM answers: the envelope, per-seq results and what each code means.

Every REST answer is HTTP 200 with `ActionStatus` (`OK`/`FAIL`), `ErrorCode` (0 success) and
`ErrorInfo` (research/vendors-tencent-rongcloud.md §T1.3); any other HTTP status is the network
between. Codes from §T1.5 (the common REST table and the SDK's `V2TIMErrorCode.h`) and the API
pages' own tables (§T3.1, §T3.3, §T3.6); the classes of the common codes are inferences (README).
"""

from __future__ import annotations

from typing import Any, NoReturn

import httpx

from batchrecall.errors import (
    ErrorCode,
    LaneFatalError,
    SplitCallError,
    ThrottledError,
    TokenRejectedError,
    TransientCallError,
)
from batchrecall.models import Call, ItemOutcome, Status
from batchrecall.vendors.base import json_body, retry_after, server_error

OK = 0
# Frequency limits: 60007 the API's, 60011 the SDKAppID's, 60018/60019 "请求过于频繁",
# 10006 a group API's "操作频率限制".
THROTTLE_CODES = frozenset({60007, 60011, 60018, 60019, 10006})
# "请重试" and timeouts: the common table, admin_msgwithdraw's 91000, the group and
# recent-contact tables' internal errors.
TRANSIENT_CODES = frozenset({60008, 60013, 60014, 91000, 10002, 20004, 20005, 50004, 50005})
# UserSig expired (70001) or no longer valid (70052): a new one is built and the call sent again
# once.
RENEW_CODES = frozenset({70001, 70052})
# The admin account, its UserSig, the SDKAppID or the request URL is refused: every call of the
# lane would be. 90009, 60010 and 50003: "请求需要 App 管理员权限" (identifier is no admin).
_AUTH_CODES = frozenset(
    {60002, 60004, 60005, 60006, 60009, 60010, 60012, 60021, 70003, 70009, 70013, 70014, 70016}
    | {70020, 70050, 70051, 90009, 50003}
)
# "SDKAppID 被禁用", "请求被禁用", "专业版套餐包已到期并停用".
_DISABLED_CODES = frozenset({60016, 60017, 60020})

# One item's fate. 20023 "already recalled" is not_found as every vendor's (SPEC §2); 20022 and
# 10030 "does not exist" cover messages past the roaming period; 10010 a dissolved group's; 50001
# an owner never imported has no conversation.
_ITEM_CODES: dict[int, tuple[Status, ErrorCode]] = {
    20022: (Status.NOT_FOUND, ErrorCode.NOT_FOUND),
    20023: (Status.NOT_FOUND, ErrorCode.NOT_FOUND),
    10030: (Status.NOT_FOUND, ErrorCode.NOT_FOUND),
    10010: (Status.NOT_FOUND, ErrorCode.NOT_FOUND),
    50001: (Status.NOT_FOUND, ErrorCode.NOT_FOUND),
    10031: (Status.FAILED, ErrorCode.RECALL_WINDOW_EXCEEDED),
    20016: (Status.FAILED, ErrorCode.RECALL_WINDOW_EXCEEDED),
    10007: (Status.FAILED, ErrorCode.PERMISSION_DENIED),
    90003: (Status.FAILED, ErrorCode.RECIPIENT_NOT_FOUND),
    90008: (Status.FAILED, ErrorCode.BAD_REQUEST),
    90054: (Status.FAILED, ErrorCode.BAD_REQUEST),
    90001: (Status.FAILED, ErrorCode.BAD_REQUEST),
    60003: (Status.FAILED, ErrorCode.BAD_REQUEST),
    60015: (Status.FAILED, ErrorCode.BAD_REQUEST),
    70107: (Status.FAILED, ErrorCode.BAD_REQUEST),
    10003: (Status.FAILED, ErrorCode.BAD_REQUEST),
    10004: (Status.FAILED, ErrorCode.BAD_REQUEST),
    10015: (Status.FAILED, ErrorCode.BAD_REQUEST),
    10032: (Status.FAILED, ErrorCode.BAD_REQUEST),
    10033: (Status.FAILED, ErrorCode.BAD_REQUEST),
    10034: (Status.FAILED, ErrorCode.BAD_REQUEST),
    10035: (Status.FAILED, ErrorCode.BAD_REQUEST),
    50002: (Status.FAILED, ErrorCode.BAD_REQUEST),
}
# What group_msg_recall's per-seq RetCodes say, in the SDK header's words (§T1.5): the answer
# carries no text of its own for a seq.
_RET_TEXTS: dict[int, str] = {
    10030: "请求撤回的消息不存在",
    10031: "消息撤回超过了时间限制",
    10032: "请求撤回的消息不支持撤回操作",
    10033: "群组类型不支持消息撤回操作",
}
# Codes that may be about one item of a call of several (one MsgKey, one seq): the call is sent
# again one item a call to learn each item's own answer. Group-wide ones (10010, 10007, 10015,
# 10033) are every seq's.
_ONE_ITEM_CODES = frozenset(
    {20022, 20023, 90054, 90001, 60003, 60015, 70107, 10004, 10030, 10031, 10032, 10034}
)


def envelope(response: httpx.Response, now: float) -> tuple[dict[str, Any], int | None, str]:
    """The answer's body, its ErrorCode (None when unreadable) and ErrorInfo; raises for an
    HTTP status other than 200."""
    answer = json_body(response)
    info = str(answer.get("ErrorInfo") or "")
    if response.status_code != 200:
        _http_failure(response, info, now)
    code = answer.get("ErrorCode")
    if not isinstance(code, int) or isinstance(code, bool):
        return answer, None, info
    return answer, code, info


def succeeded(answer: dict[str, Any], code: int | None) -> bool | None:
    """True: the call was done; False: refused; None: the envelope contradicts itself."""
    status = answer.get("ActionStatus")
    if code == OK:
        return True if status == "OK" else None
    return False if code is not None and status in ("FAIL", None) else None


def unconfirmed(call: Call, message: str, code: int | None) -> list[ItemOutcome]:
    """An answer that neither confirms nor refuses: the work may have been done."""
    return [
        ItemOutcome(
            status=Status.UNKNOWN,
            error=ErrorCode.VENDOR_ERROR,
            message=message,
            http_status=200,
            vendor_code="" if code is None else str(code),
        )
    ] * len(call.items)


def refused(
    call: Call, code: int, info: str, *, generation: int, retry_wait: float | None
) -> list[ItemOutcome]:
    """The outcomes of a call refused with `code`, or the call-level error it means."""
    details: dict[str, Any] = {"http_status": 200, "vendor_code": str(code)}
    text = info or f"ErrorCode {code}"
    call_level(code, text, details, generation=generation, retry_wait=retry_wait)
    if len(call.items) > 1 and code in _ONE_ITEM_CODES:
        raise SplitCallError(ErrorCode.BATCH_REJECTED, text, **details)
    return [coded_outcome(code, info)] * len(call.items)


def call_level(
    code: int,
    text: str,
    details: dict[str, Any],
    *,
    generation: int,
    retry_wait: float | None,
) -> None:
    """Raise the call-level error `code` means, if it is one."""
    if code in THROTTLE_CODES:
        raise ThrottledError(ErrorCode.RATE_LIMITED, text, retry_after=retry_wait, **details)
    if code in TRANSIENT_CODES:
        raise TransientCallError(ErrorCode.VENDOR_UNAVAILABLE, text, **details)
    if code in RENEW_CODES:
        raise TokenRejectedError(
            text, token_generation=generation, http_status=200, vendor_code=str(code)
        )
    if code in _AUTH_CODES:
        raise LaneFatalError(
            ErrorCode.AUTH_FAILED,
            f"{text} (check sdkappid, identifier, secret_key and base_url)",
            **details,
        )
    if code in _DISABLED_CODES:
        raise LaneFatalError(ErrorCode.SERVICE_DISABLED, text, **details)


def coded_outcome(code: int, info: str) -> ItemOutcome:
    """One item's outcome for a refusal `code`; one no table names: failed with the vendor's
    words (ActionStatus FAIL says it was not done)."""
    details: dict[str, Any] = {"http_status": 200, "vendor_code": str(code)}
    known = _ITEM_CODES.get(code)
    if code in THROTTLE_CODES:
        known = (Status.FAILED, ErrorCode.RATE_LIMITED)
    elif code in TRANSIENT_CODES:
        known = (Status.FAILED, ErrorCode.VENDOR_UNAVAILABLE)
    if known is None:
        text = f"unrecognised ErrorCode {code}" + (f": {info}" if info else "")
        return ItemOutcome(
            status=Status.FAILED, error=ErrorCode.VENDOR_ERROR, message=text, **details
        )
    status, error = known
    return ItemOutcome(status=status, error=error, message=info, **details)


def per_seq(call: Call, answer: dict[str, Any]) -> list[ItemOutcome]:
    """group_msg_recall: each seq's `RetCode` in `RecallRetList` (0 recalled, else refused);
    a seq the list does not name is not confirmed, and sent again."""
    by_seq: dict[int, Any] = {}
    entries = answer.get("RecallRetList")
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("MsgSeq"), int):
            by_seq.setdefault(entry["MsgSeq"], entry.get("RetCode"))
    outcomes = []
    for item in call.items:
        seq = int(item.params["MsgSeq"])
        if seq not in by_seq:
            outcomes.append(
                ItemOutcome(
                    status=Status.FAILED,
                    error=ErrorCode.VENDOR_UNAVAILABLE,
                    message="the answer did not mention this seq",
                    http_status=200,
                    vendor_code="0",
                )
            )
            continue
        ret = by_seq[seq]
        if ret == OK and not isinstance(ret, bool):
            outcomes.append(ItemOutcome(status=Status.OK, http_status=200, vendor_code="0"))
        elif isinstance(ret, int) and not isinstance(ret, bool):
            outcomes.append(coded_outcome(ret, _RET_TEXTS.get(ret, "")))
        else:
            outcomes.append(
                ItemOutcome(
                    status=Status.UNKNOWN,
                    error=ErrorCode.VENDOR_ERROR,
                    message=f"unreadable RetCode {ret!r}",
                    http_status=200,
                )
            )
    return outcomes


def _http_failure(response: httpx.Response, info: str, now: float) -> NoReturn:
    """Tencent answers every API outcome with HTTP 200 (§T1.3): any other status is the network
    between, never the vendor's verdict, so the call is tried again (429 as a throttle,
    inferred: not documented)."""
    status = response.status_code
    text = info or f"HTTP {status}"
    if status == 429:
        raise ThrottledError(
            ErrorCode.RATE_LIMITED,
            text,
            http_status=429,
            retry_after=retry_after(response, now=now),
        )
    if status >= 500:
        server_error(response, text)
    code = ErrorCode.TIMEOUT if status == 408 else ErrorCode.VENDOR_UNAVAILABLE
    raise TransientCallError(code, f"{text} (not a Tencent IM answer)", http_status=status)
