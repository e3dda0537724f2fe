"""Tencent Cloud IM adapter: one-to-one and group recall, one-side delete, conversation delete.

Every request is a POST of JSON to `{base_url}/v4/{service}/{command}` with the app admin's
identity in the query: `sdkappid`, `identifier`, `usersig` (built here, research §T2), `random`
(a fresh 32-bit number per request) and `contenttype=json` (research/vendors-tencent-rongcloud.md
§T1.1). The answers are read in `tencent_answers`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from batchrecall.config import LaneSettings
from batchrecall.errors import (
    ErrorCode,
    PermanentCallError,
    SplitCallError,
    TokenRejectedError,
    TransientCallError,
)
from batchrecall.models import Call, ItemOutcome, Op, Status, Vendor
from batchrecall.redact import register_secret
from batchrecall.vendors.base import Adapter, outcomes_for, retry_after
from batchrecall.vendors.easemob_tokens import AppTokens
from batchrecall.vendors.tencent_answers import (
    call_level,
    envelope,
    per_seq,
    refused,
    succeeded,
    unconfirmed,
)
from batchrecall.vendors.tencent_usersig import build_usersig

C2C_RECALL = "/v4/openim/admin_msgwithdraw"  # §T3.1: one MsgKey a call
GROUP_RECALL = "/v4/group_open_http_svc/group_msg_recall"  # §T3.2: at most 10 seqs a call
C2C_DELETE = "/v4/openim/delete_c2c_msg_ramble"  # §T3.4: at most 30 MsgKeys a call, one side
CONVERSATION_DELETE = "/v4/recentcontact/delete"  # §T3.6: one conversation a call
# The vendor advises a UserSig lifetime of no less than 24 hours (70001's text, §T1.5); each is
# built afresh at half its lifetime.
USERSIG_LIFETIME_S = 24 * 3600
# No throttle answer says how long to wait; the limits are per second (§T1.4).
THROTTLE_PAUSE_S = 1.0
_RANDOM_RANGE = 2**32  # "32位无符号整数随机数,取值范围0 - 4294967295"
_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class TencentAdapter(Adapter):
    vendor = Vendor.TENCENT
    default_throttle_pause_s = THROTTLE_PAUSE_S

    def __init__(
        self,
        settings: LaneSettings,
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        random: Callable[[], int] = lambda: secrets.randbelow(_RANDOM_RANGE),
    ) -> None:
        super().__init__(settings, client)
        self._wall_clock = wall_clock
        self._random = random
        self._sdkappid = int(settings.credentials["sdkappid"])
        self._identifier = settings.credentials["identifier"]
        self._usersigs = AppTokens(self._new_usersig, clock=clock)

    async def prepare(self) -> None:
        await self._usersigs.current()

    async def refresh_auth(self, token_generation: int) -> None:
        await self._usersigs.drop(token_generation)

    async def _new_usersig(self) -> tuple[str, float]:
        usersig = build_usersig(
            sdkappid=self._sdkappid,
            identifier=self._identifier,
            secret_key=self.settings.secret("secret_key"),
            issued_at=int(self._wall_clock()),
            expire_s=USERSIG_LIFETIME_S,
        )
        register_secret(usersig)
        return usersig, float(USERSIG_LIFETIME_S)

    def query(self, usersig: str) -> str:
        """The common query string, in the documented order."""
        return (
            f"sdkappid={self._sdkappid}&identifier={quote(self._identifier, safe='')}"
            f"&usersig={usersig}&random={self._random()}&contenttype=json"
        )

    async def _post(self, path: str, body: dict[str, Any]) -> tuple[httpx.Response, int]:
        """POST the JSON body with the lane's current UserSig; the answer and the UserSig's
        generation (for `refresh_auth`)."""
        usersig, generation = await self._usersigs.current()
        response = await self.request(
            "POST",
            f"{self.url(path)}?{self.query(usersig)}",
            content=orjson.dumps(body),
            headers=_HEADERS,
        )
        return response, generation

    async def read_only(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """A history call (`collect`): the answer on success; a UserSig refused as expired is
        built anew once; any refusal raises the CallError it means."""
        for renewed in (False, True):
            response, generation = await self._post(path, body)
            now = self._wall_clock()
            answer, code, info = envelope(response, now)
            if succeeded(answer, code):
                return answer
            if code is None:
                raise TransientCallError(
                    ErrorCode.VENDOR_UNAVAILABLE, "unreadable answer", http_status=200
                )
            details: dict[str, Any] = {"http_status": 200, "vendor_code": str(code)}
            text = info or f"ErrorCode {code}"
            try:
                call_level(
                    code, text, details, generation=generation, retry_wait=retry_after(response)
                )
            except TokenRejectedError:
                if renewed:
                    raise
                await self.refresh_auth(generation)
                continue
            raise PermanentCallError(ErrorCode.BAD_REQUEST, text, **details)
        raise AssertionError("unreachable")  # pragma: no cover

    async def send(self, call: Call) -> list[ItemOutcome]:
        path, body = _request(call)
        response, generation = await self._post(path, body)
        now = self._wall_clock()
        answer, code, info = envelope(response, now)
        verdict = succeeded(answer, code)
        if verdict is None:
            text = f"unconfirmed answer: ActionStatus={answer.get('ActionStatus')!r}"
            return unconfirmed(call, text + (f", {info}" if info else ""), code)
        if verdict and path == GROUP_RECALL:
            return per_seq(call, answer)
        if verdict:
            return outcomes_for(
                call, ItemOutcome(status=Status.OK, http_status=200, vendor_code="0")
            )
        assert code is not None  # a refusal has a code
        wait = retry_after(response, now=now)
        return refused(call, code, info, generation=generation, retry_wait=wait)


def _request(call: Call) -> tuple[str, dict[str, Any]]:
    """The path and JSON body of the call."""
    first = call.items[0].params
    if call.op is Op.DELETE_CONVERSATION:
        group = "ToGroupid" in first
        body: dict[str, Any] = {"From_Account": first["From_Account"], "Type": 2 if group else 1}
        if group:
            body["ToGroupid"] = first["ToGroupid"]  # the documented spelling, lower-case "id"
        else:
            body["To_Account"] = first["To_Account"]
        body["ClearRamble"] = int(first.get("ClearRamble", 0))
        return CONVERSATION_DELETE, body
    if call.op is Op.DELETE_MESSAGE:
        return C2C_DELETE, {
            "Operator_Account": first["Operator_Account"],
            "Peer_Account": first["Peer_Account"],
            "MsgKeyList": [item.params["MsgKey"] for item in call.items],
        }
    if "GroupId" in first:
        body = {
            "GroupId": first["GroupId"],
            "MsgSeqList": [{"MsgSeq": int(item.params["MsgSeq"])} for item in call.items],
        }
        if "Reason" in first:
            body["Reason"] = first["Reason"]
        return GROUP_RECALL, body
    if len(call.items) > 1:
        # Never planned so (each one-to-one recall has a batch key of its own): one a call.
        raise SplitCallError(
            ErrorCode.BATCH_REJECTED,
            "admin_msgwithdraw recalls one message a call",
            delivered=False,
        )
    return C2C_RECALL, {
        "From_Account": first["From_Account"],
        "To_Account": first["To_Account"],
        "MsgKey": first["MsgKey"],
    }
