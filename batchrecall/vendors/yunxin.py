"""NetEase Yunxin IM v2 adapter: recall, delete, clear history, batch conversation delete."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

from batchrecall.config import LaneSettings
from batchrecall.errors import (
    CallError,
    ErrorCode,
    LaneFatalError,
    SplitCallError,
    ThrottledError,
    TransientCallError,
)
from batchrecall.models import Call, Item, ItemOutcome, Op, Status, Vendor
from batchrecall.vendors.base import Adapter, json_body, outcomes_for, retry_after, server_error
from batchrecall.vendors.yunxin_checksum import ChecksumEvidence, ProbeAnswer, Verdict

# Yunxin blocks an app for 10 s after it exceeds its rate (v1 recall doc: "如超限，将被屏蔽 10 秒").
THROTTLE_PAUSE_S = 10.0
BAD_PARAMETER = 414  # a parameter error, or a CheckSum/CurTime/AppKey failure (vendors.md §2.2)

# Body codes (Yunxin's shared status-code table, vendors.md §2.3 and §7). 404 and 417 read as
# not_found are inferences: the v1 recall page answers 200 for a missing message.
_ITEM_CODES: dict[int, tuple[Status, ErrorCode]] = {
    404: (Status.NOT_FOUND, ErrorCode.NOT_FOUND),
    417: (Status.NOT_FOUND, ErrorCode.NOT_FOUND),  # "重复操作": already done
    403: (Status.FAILED, ErrorCode.PERMISSION_DENIED),
    508: (Status.FAILED, ErrorCode.RECALL_WINDOW_EXCEEDED),
    414: (Status.FAILED, ErrorCode.BAD_REQUEST),
    419: (Status.FAILED, ErrorCode.BATCH_REJECTED),
}
# Success is code 200 only (the v2 envelope and both SDKs' isSuccess); the API page's example
# `"code": 0` is the doc tool's placeholder (its `msg` reads "string"). Any code not known here
# is read as "may have been done": unknown, sent again by --resume.
SUCCESS = 200
# A read-only request whose every parameter is valid by construction, to learn whether a 414 is
# the signature's (yunxin_checksum): one account's conversation list, one entry.
PROBE_PATH = "/im/v2.1/conversations?account_id=batchrecall-probe&limit=1"


class YunxinAdapter(Adapter):
    vendor = Vendor.YUNXIN
    default_throttle_pause_s = THROTTLE_PAUSE_S

    def __init__(
        self,
        settings: LaneSettings,
        client: httpx.AsyncClient,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(settings, client)
        self._wall_clock = wall_clock
        self.checksum = ChecksumEvidence()

    def auth_headers(self) -> dict[str, str]:
        """Fresh for every request: CheckSum = sha1(AppSecret + Nonce + CurTime), lower-case hex."""
        nonce = uuid.uuid4().hex
        cur_time = str(int(self._wall_clock()))
        digest = hashlib.sha1(
            (self.settings.secret("app_secret") + nonce + cur_time).encode(), usedforsecurity=False
        ).hexdigest()
        return {
            "AppKey": self.settings.credentials["app_key"],
            "Nonce": nonce,
            "CurTime": cur_time,
            "CheckSum": digest,
            "Accept": "application/json",
            "Content-Type": "application/json",  # v2 APIs speak JSON (vendors.md §2.1)
        }

    async def send(self, call: Call) -> list[ItemOutcome]:
        response = await self.request(
            "DELETE", self.url(self._path(call)), headers=self.auth_headers()
        )
        answer = json_body(response)
        if response.status_code != 200:
            self._http_failure(response, answer)
        code = answer.get("code")
        message = _message(answer)
        if code == SUCCESS and not isinstance(code, bool):
            if call.op is Op.DELETE_CONVERSATION:
                return _batch_outcomes(call, answer)
            return outcomes_for(
                call, ItemOutcome(status=Status.OK, http_status=200, vendor_code="200")
            )
        return await self._refused(call, response, code, message)

    async def _probe(self) -> ProbeAnswer:
        try:
            response = await self.request("GET", self.url(PROBE_PATH), headers=self.auth_headers())
        except CallError:
            return None, ""
        answer = json_body(response)
        code = answer.get("code")
        if response.status_code != 200 or not isinstance(code, int) or isinstance(code, bool):
            return None, ""
        return code, _message(answer)

    def _path(self, call: Call) -> str:
        item = call.items[0]
        params = item.params
        if call.op is Op.DELETE_CONVERSATION:
            # Each id URL-encoded, then joined by commas (vendors.md §2.7).
            ids = ",".join(_segment(str(i.params["conversation_id"])) for i in call.items)
            clear = "true" if params.get("clear_message") else "false"
            return (
                "/im/v2/conversations/actions/conversation_ids"
                f"?conversation_ids={ids}&clear_message={clear}"
            )
        conversation = _segment(str(params["conversation_id"]))
        if call.op is Op.CLEAR_HISTORY:
            return f"/im/v2/conversations/{conversation}/messages?type={int(params['type'])}"
        return (
            f"/im/v2/conversations/{conversation}/messages/"
            f"{_segment(str(params['message_server_id']))}?{_message_query(item)}"
        )

    def _http_failure(self, response: httpx.Response, answer: dict[str, Any]) -> None:
        # The IM domains answer HTTP 200 for every API outcome; anything else is the gateway.
        text = str(answer.get("msg") or f"HTTP {response.status_code}")
        if response.status_code == 429:
            raise ThrottledError(
                ErrorCode.RATE_LIMITED,
                text,
                http_status=429,
                retry_after=max(
                    THROTTLE_PAUSE_S, retry_after(response, now=self._wall_clock()) or 0.0
                ),
            )
        if response.status_code in (401, 403):
            raise LaneFatalError(ErrorCode.AUTH_FAILED, text, http_status=response.status_code)
        if response.status_code >= 500 or response.status_code == 408:
            server_error(response, text)
        raise TransientCallError(
            ErrorCode.VENDOR_UNAVAILABLE, text, http_status=response.status_code
        )

    async def _bad_parameter_or_checksum(
        self, call: Call, message: str, details: dict[str, Any]
    ) -> None:
        """Raise what a 414 means, as far as the evidence tells (see yunxin_checksum); return
        when it is this call's own bad parameter."""
        text = message or "code 414"
        verdict = await self.checksum.refused(message, self._probe)
        if verdict is Verdict.CREDENTIALS:
            raise LaneFatalError(
                ErrorCode.AUTH_FAILED,
                f"{text} (the request's signature is refused: check app_key, app_secret and "
                "the clock)",
                **details,
            )
        if verdict is Verdict.UNDECIDED:
            # Sent again later, when a probe can tell a signature failure from a bad row.
            raise TransientCallError(ErrorCode.AUTH_FAILED, text, **details)
        if len(call.items) > 1:
            raise SplitCallError(ErrorCode.BATCH_REJECTED, text, **details)

    async def _refused(
        self, call: Call, response: httpx.Response, code: Any, message: str
    ) -> list[ItemOutcome]:
        vendor_code = "" if code is None else str(code)
        details: dict[str, Any] = {"http_status": response.status_code, "vendor_code": vendor_code}
        if code == 416:
            raise ThrottledError(
                ErrorCode.RATE_LIMITED,
                message or "throttled",
                retry_after=max(
                    THROTTLE_PAUSE_S, retry_after(response, now=self._wall_clock()) or 0.0
                ),
                **details,
            )
        if code == BAD_PARAMETER:
            await self._bad_parameter_or_checksum(call, message, details)
        if (
            not isinstance(code, int)
            or isinstance(code, bool)
            or (500 <= code < 600 and code not in _ITEM_CODES)
        ):
            raise TransientCallError(
                ErrorCode.VENDOR_UNAVAILABLE, message or "unreadable answer", **details
            )
        if len(call.items) > 1 and code == 419:
            raise SplitCallError(ErrorCode.BATCH_REJECTED, message, **details)
        return outcomes_for(call, _coded_outcome(code, message, details))


def _message(answer: dict[str, Any]) -> str:
    # v2 bodies say `msg`; v1 bodies, still quoted in the docs, `desc` (vendors.md §2.3).
    return str(answer.get("msg") or answer.get("desc") or "")


def _coded_outcome(code: int, message: str, details: dict[str, Any]) -> ItemOutcome:
    """A refusal's outcome; a code the documents do not name may have acted: unknown."""
    known = _ITEM_CODES.get(code)
    if known is None:
        text = f"unrecognised answer code {code}" + (f": {message}" if message else "")
        return ItemOutcome(
            status=Status.UNKNOWN, error=ErrorCode.VENDOR_ERROR, message=text, **details
        )
    status, error = known
    return ItemOutcome(status=status, error=error, message=message, **details)


def _segment(value: str) -> str:
    return quote(value, safe="")


def _message_query(item: Item) -> str:
    params = item.params
    query = [f"type={int(params['type'])}"]
    if "description" in params:
        query.append(f"description={quote(str(params['description']), safe='')}")
    if "check_team_member_valid" in params:
        # Seed 003: whether the team membership is checked (default true).
        query.append(f"check_team_member_valid={str(params['check_team_member_valid']).lower()}")
    if "ignore_revoke_time" in params:
        # The API page's own spelling (seed 003); the SDKs spell it `ignore_revoke_time`. Only
        # one goes: a server may refuse a parameter it does not know.
        query.append(f"ingore_revoke_time={int(params['ignore_revoke_time'])}")
    return "&".join(query)


def _batch_outcomes(call: Call, answer: dict[str, Any]) -> list[ItemOutcome]:
    """Per conversation from success_list / failed_list; one in neither is unconfirmed."""
    data = answer.get("data")
    data = data if isinstance(data, dict) else {}
    succeeded = {str(cid) for cid in data.get("success_list") or [] if isinstance(cid, str)}
    failed: dict[str, dict[str, Any]] = {}
    for entry in data.get("failed_list") or []:
        if isinstance(entry, dict) and "conversation_id" in entry:
            failed[str(entry["conversation_id"])] = entry
    outcomes = []
    for item in call.items:
        cid = str(item.params["conversation_id"])
        if cid in succeeded:
            outcomes.append(ItemOutcome(status=Status.OK, http_status=200, vendor_code="200"))
        elif cid in failed:
            entry = failed[cid]
            code = entry.get("error_code")
            details: dict[str, Any] = {"http_status": 200, "vendor_code": str(code)}
            message = str(entry.get("error_msg") or "")
            number = code if isinstance(code, int) and not isinstance(code, bool) else -1
            outcomes.append(_coded_outcome(number, message, details))
        else:
            outcomes.append(
                ItemOutcome(
                    status=Status.FAILED,
                    error=ErrorCode.VENDOR_UNAVAILABLE,
                    message="the answer did not mention this conversation",
                    http_status=200,
                    vendor_code="200",
                )
            )
    return outcomes
