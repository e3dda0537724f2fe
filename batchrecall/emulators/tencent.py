"""Tencent Cloud IM REST emulator: C2C and group recall, one-side delete, conversation delete.

Every answer is HTTP 200 with `{"ActionStatus","ErrorInfo","ErrorCode"}` (research
/vendors-tencent-rongcloud.md §T1.3); HTTP-level failures are the network's (plain text). Each
request must carry `sdkappid`, `identifier`, `usersig`, `random` and `contenttype=json` in its
query (§T1.1) and a UserSig the Go reference would accept (§T2.3). A body field an API does not
document is refused as a parameter error (inferred: it keeps the client honest).
"""

from __future__ import annotations

import json
import time
from typing import Any, ClassVar

from starlette.routing import Route

from batchrecall.emulators.common import DEFAULT_SETTINGS, Clock, EmulatorSettings
from batchrecall.emulators.faults import Fault, FaultKind
from batchrecall.emulators.tencent_export import GET_HISTORY, HISTORY_FIELDS, TencentExport
from batchrecall.emulators.tencent_state import (
    DEFAULT_IDENTIFIER,
    DEFAULT_SDKAPPID,
    DEFAULT_SECRET_KEY,
    OK,
    TencentState,
)
from batchrecall.emulators.tencent_usersig import SigCheck, check_usersig
from batchrecall.emulators.wire import Answer, Incoming, Reject, VendorEmulator, retry_after_header

C2C_RECALL = "/v4/openim/admin_msgwithdraw"
GROUP_RECALL = "/v4/group_open_http_svc/group_msg_recall"
C2C_DELETE = "/v4/openim/delete_c2c_msg_ramble"
CONVERSATION_DELETE = "/v4/recentcontact/delete"
ROAM_MSGS = "/v4/openim/admin_getroammsg"
GROUP_MSGS = "/v4/group_open_http_svc/group_msg_get_simple"
# admin_getroammsg: "若请求时间段内的消息总大小超过应答包体大小限制(目前为13K)时,则需要续拉".
ROAM_ANSWER_BYTES = 13 * 1024
GROUP_MSGS_LIMIT = 20  # "目前一次请求最多返回20条历史消息"
CONTACTS = "/v4/recentcontact/get_list"
CONTACTS_PAGE = 100  # conversations a page: not documented (inferred)
_CURSOR = ("TimeStamp", "StartIndex", "TopTimeStamp", "TopStartIndex")
GROUP_RECALL_LIMIT = 10  # "一次请求最多可以撤回10条消息 seq" (§T3.2)
C2C_DELETE_LIMIT = 30  # "一次最多删除30条消息" (§T3.4)
RANDOM_MAX = 4294967295  # "取值范围0 - 4294967295" (§T1.1)

# Common codes (§T1.5).
URL_ERROR = 60002  # "HTTP 解析错误 ,请检查 HTTP 请求 URL 格式"
NEEDS_ADMIN = 60010
NO_SDKAPPID = 60012
UNKNOWN_SDKAPPID = 70020
THROTTLED = 60007
_THROTTLED_INFO = "REST 接口调用频率超过限制,请降低请求频率。"
INTERNAL = 91000  # "服务内部错误,请重试"
# Each API's parameter-error code: admin_msgwithdraw's table (90001 "JSON 格式解析失败"), the
# group table's 10004 "参数非法", the recent-contact table's 50002 "请求参数错误"; for
# delete_c2c_msg_ramble, whose table is not in the copy read, 90001 as its sibling (inferred).
_BAD_PARAMETER = {
    C2C_RECALL: 90001,
    C2C_DELETE: 90001,
    ROAM_MSGS: 90001,
    GROUP_RECALL: 10004,
    GROUP_MSGS: 10004,
}
_BAD_PARAMETER_DEFAULT = 50002
_FIELDS = {
    C2C_RECALL: {"From_Account", "To_Account", "MsgKey"},
    GROUP_RECALL: {"GroupId", "MsgSeqList", "Reason", "TopicId"},
    C2C_DELETE: {"Operator_Account", "Peer_Account", "MsgKeyList"},
    CONVERSATION_DELETE: {"From_Account", "Type", "To_Account", "ToGroupid", "ClearRamble"},
    ROAM_MSGS: {"Operator_Account", "Peer_Account", "MaxCnt", "MinTime", "MaxTime", "LastMsgKey"},
    GROUP_MSGS: {"GroupId", "ReqMsgNumber", "ReqMsgSeq", "WithRecalledMsg", "TopicId"},
    CONTACTS: {"From_Account", "AssistFlags", *_CURSOR},
    GET_HISTORY: set(HISTORY_FIELDS),
}


class TencentEmulator(VendorEmulator):
    """One Tencent IM app over HTTP, serving `/v4/...` at its root."""

    vendor = "tencent"
    random_faults: ClassVar[tuple[FaultKind, ...]] = ("http_502", "code_500")

    def __init__(
        self,
        settings: EmulatorSettings = DEFAULT_SETTINGS,
        *,
        clock: Clock = time.time,
        sdkappid: int = DEFAULT_SDKAPPID,
        identifier: str = DEFAULT_IDENTIFIER,
        secret_key: str = DEFAULT_SECRET_KEY,
    ) -> None:
        self.state = TencentState(
            settings, clock=clock, sdkappid=sdkappid, identifier=identifier, secret_key=secret_key
        )
        self.export = TencentExport(self)
        super().__init__(settings, clock)

    def _routes(self) -> list[Route]:
        return [
            *self.export.routes(self._route, _no_items),
            self._route(C2C_RECALL, "POST", self._recall_c2c, _msg_key),
            self._route(GROUP_RECALL, "POST", self._recall_group, _seqs),
            self._route(C2C_DELETE, "POST", self._delete_c2c, _msg_keys),
            self._route(CONVERSATION_DELETE, "POST", self._delete_conversation, _conversation),
            self._route(ROAM_MSGS, "POST", self._roam_messages, _no_items),
            self._route(GROUP_MSGS, "POST", self._group_messages, _no_items),
            self._route(CONTACTS, "POST", self._contacts, _no_items),
        ]

    # Route handlers.

    def _recall_c2c(self, incoming: Incoming) -> Answer:
        body = self._gate(incoming, C2C_RECALL)
        # admin_msgwithdraw's table: 90008 From_Account, 90003 To_Account, 90054 MsgKey.
        sender = _account(body, "From_Account", 90008)
        receiver = _account(body, "To_Account", 90003)
        msg_key = body.get("MsgKey")
        if not isinstance(msg_key, str) or not msg_key:
            raise _reject(90054, "撤回请求中的 MsgKey 不合法")
        code = self.state.recall_c2c(sender, receiver, msg_key)
        return _answer(code, _C2C_INFO.get(code, ""))

    def _recall_group(self, incoming: Incoming) -> Answer:
        body = self._gate(incoming, GROUP_RECALL)
        group_id = body.get("GroupId")
        if not isinstance(group_id, str) or not group_id:
            raise _reject(10015, "群组 ID 非法,请检查群组 ID 是否填写正确")
        entries = body.get("MsgSeqList")
        if not isinstance(entries, list) or not entries:
            raise _reject(10004, "MsgSeqList: a list of {MsgSeq} expected")
        if len(entries) > GROUP_RECALL_LIMIT:
            # Which code answers more than 10 seqs is not documented: "参数非法" (inferred).
            raise _reject(10004, f"MsgSeqList: at most {GROUP_RECALL_LIMIT} seqs a request")
        seqs = []
        for entry in entries:
            seq = entry.get("MsgSeq") if isinstance(entry, dict) else None
            if not isinstance(seq, int) or isinstance(seq, bool) or set(entry) != {"MsgSeq"}:
                raise _reject(10004, "MsgSeqList: each entry is {MsgSeq: integer}")
            seqs.append(seq)
        if "Reason" in body and not isinstance(body["Reason"], str):
            raise _reject(10004, "Reason: a string expected")
        result = self.state.recall_group(group_id, seqs)
        if isinstance(result, int):
            return _answer(result, "群组不存在,或者曾经存在过,但是目前已经被解散")
        recall_list = [{"MsgSeq": seq, "RetCode": ret} for seq, ret in result]
        return _answer(OK, extra={"RecallRetList": recall_list})

    def _delete_c2c(self, incoming: Incoming) -> Answer:
        body = self._gate(incoming, C2C_DELETE)
        operator = _account(body, "Operator_Account", 90001)
        peer = _account(body, "Peer_Account", 90001)
        keys = body.get("MsgKeyList")
        if (
            not isinstance(keys, list)
            or not keys
            or not all(isinstance(k, str) and k for k in keys)
        ):
            raise _reject(90001, "MsgKeyList: a list of MsgKey strings expected")
        if len(keys) > C2C_DELETE_LIMIT:
            raise _reject(90001, f"MsgKeyList: at most {C2C_DELETE_LIMIT} keys a request")
        code = self.state.delete_c2c(operator, peer, keys)
        return _answer(code, _C2C_INFO.get(code, ""))

    def _delete_conversation(self, incoming: Incoming) -> Answer:
        body = self._gate(incoming, CONVERSATION_DELETE)
        owner = _account(body, "From_Account", 50002)
        kind = body.get("Type")
        if kind not in (1, 2) or isinstance(kind, bool):
            raise _reject(50002, "Type: 1 (C2C) or 2 (group) expected")
        name = "To_Account" if kind == 1 else "ToGroupid"
        other = body.get(name)
        wrong = "ToGroupid" if kind == 1 else "To_Account"
        if not isinstance(other, str) or not other or wrong in body:
            raise _reject(50002, f"Type {kind} takes {name}")
        clear = body.get("ClearRamble", 0)
        if clear not in (0, 1) or isinstance(clear, bool):
            raise _reject(50002, "ClearRamble: 0 or 1 expected")
        code = self.state.delete_conversation(owner, kind, other, clear=clear == 1)
        info = "请求的 UserID 没有导入腾讯云移动通信后台" if code != OK else ""
        return _answer(code, info, extra={"ErrorDisplay": ""})

    def _roam_messages(self, incoming: Incoming) -> Answer:
        """admin_getroammsg: the pair's messages in [MinTime, MaxTime], newest first, an answer
        of at most 13 KB; `LastMsgKey` continues after that message (research/history-apis
        §5)."""
        body = self._gate(incoming, ROAM_MSGS)
        operator = _account(body, "Operator_Account", 90001)
        peer = _account(body, "Peer_Account", 90001)
        numbers = [body.get(name) for name in ("MaxCnt", "MinTime", "MaxTime")]
        counts = [n for n in numbers if isinstance(n, int) and not isinstance(n, bool) and n >= 0]
        if len(counts) != len(numbers):
            raise _reject(90001, "MaxCnt, MinTime and MaxTime: integers expected")
        max_count, min_s, max_s = counts
        listed = self.state.roaming(operator, peer, min_s, max_s)
        last_key = body.get("LastMsgKey")
        if isinstance(last_key, str) and last_key:
            keys = [key for key, _ in listed]
            listed = listed[keys.index(last_key) + 1 :] if last_key in keys else []
        page: list[dict[str, Any]] = []
        size = 0
        for _, entry in listed[: max(max_count, 1)]:
            size += len(json.dumps(entry, ensure_ascii=False).encode())
            if page and size > ROAM_ANSWER_BYTES:
                break
            page.append(entry)
        complete = len(page) == len(listed)
        extra: dict[str, Any] = {
            "Complete": 1 if complete else 0,
            "MsgCnt": len(page),
            "LastMsgTime": page[-1]["MsgTimeStamp"] if page else 0,
            "LastMsgKey": page[-1]["MsgKey"] if page else "",
            "MsgList": page,
        }
        return _answer(OK, extra=extra)

    def _group_messages(self, incoming: Incoming) -> Answer:
        """group_msg_get_simple: at most 20 messages at or below ReqMsgSeq, newest first."""
        body = self._gate(incoming, GROUP_MSGS)
        group_id = body.get("GroupId")
        if not isinstance(group_id, str) or not group_id:
            raise _reject(10015, "群组 ID 非法,请检查群组 ID 是否填写正确")
        number = body.get("ReqMsgNumber")
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            raise _reject(10004, "ReqMsgNumber: a positive integer expected")
        below = body.get("ReqMsgSeq")
        if below is not None and (not isinstance(below, int) or isinstance(below, bool)):
            raise _reject(10004, "ReqMsgSeq: an integer expected")
        messages = self.state.group_messages(group_id, below)
        if messages is None:
            return _answer(10010, "群组不存在,或者曾经存在过,但是目前已经被解散")
        page = messages[: min(number, GROUP_MSGS_LIMIT)]
        extra = {
            "GroupId": group_id,
            "IsFinished": 1 if len(page) == len(messages) else 0,
            "RspMsgList": page,
        }
        return _answer(OK, extra=extra)

    def _contacts(self, incoming: Incoming) -> Answer:
        """recentcontact/get_list: an account's conversations, a page at a time; every field
        of the request is required (tencentcloud.com/document/product/1047/43087)."""
        body = self._gate(incoming, CONTACTS)
        owner = _account(body, "From_Account", 50002)
        values = [body.get(name) for name in (*_CURSOR, "AssistFlags")]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
            raise _reject(50002, f"{', '.join((*_CURSOR, 'AssistFlags'))}: integers required")
        if owner not in self.state.accounts:
            return _answer(
                50001, "请求的 UserID 没有导入腾讯云移动通信后台", extra={"ErrorDisplay": ""}
            )
        items = self.state.conversation_list(owner)
        start = int(body["StartIndex"])
        page = items[start : start + CONTACTS_PAGE]
        done = start + len(page) >= len(items)
        stamp = int(self.clock())
        extra = {
            "SessionItem": page,
            "CompleteFlag": 1 if done else 0,
            "TimeStamp": stamp,
            "StartIndex": 0 if done else start + len(page),
            "TopTimeStamp": stamp,
            "TopStartIndex": 0,
            "ErrorDisplay": "",
        }
        return _answer(OK, extra=extra)

    # Checks every request passes first.

    def _gate(self, incoming: Incoming, api: str) -> dict[str, Any]:
        """The query (identity, UserSig), the API's rate, then the body: the JSON object."""
        self._check_query(incoming.query)
        if not self.state.admit(api):
            raise _reject(THROTTLED, _THROTTLED_INFO)
        body = incoming.body
        bad = _BAD_PARAMETER.get(api, _BAD_PARAMETER_DEFAULT)
        if not incoming.json_ok or not isinstance(body, dict):
            # "POST 包体不能为空 … 也需要携带一个空的 JSON 对象" (§T1.1).
            raise _reject(bad, "Fail to Parse json data of body, Please check it")
        unknown = sorted(set(body) - _FIELDS[api])
        if unknown:
            raise _reject(bad, f"unknown field: {', '.join(unknown)}")
        return body

    def _check_query(self, query: Any) -> None:
        state = self.state
        sdkappid = query.get("sdkappid")
        if not sdkappid:
            raise _reject(NO_SDKAPPID, "REST 接口需要带 SDKAppID")
        for name in ("identifier", "usersig", "random", "contenttype"):
            if not query.get(name):
                raise _reject(URL_ERROR, f"HTTP 解析错误: {name} missing")
        if query["contenttype"] != "json":
            raise _reject(URL_ERROR, "HTTP 解析错误: contenttype must be json")
        random = query["random"]
        if not (random.isascii() and random.isdigit()) or int(random) > RANDOM_MAX:
            raise _reject(URL_ERROR, "HTTP 解析错误: random is a 32-bit unsigned integer")
        if not (sdkappid.isascii() and sdkappid.isdigit()) or int(sdkappid) != state.sdkappid:
            raise _reject(UNKNOWN_SDKAPPID, "SDKAppID 不存在,UserSig 验证失败")
        verdict = check_usersig(
            query["usersig"],
            sdkappid=state.sdkappid,
            identifier=query["identifier"],
            secret_key=state.secret_key,
            now=self.clock(),
        )
        if verdict is not SigCheck.OK:
            raise _reject(verdict.value, _SIG_INFO[verdict])
        if query["identifier"] not in state.admins:
            raise _reject(NEEDS_ADMIN, "请求需要 App 管理员权限。")

    def _fault_answer(self, fault: Fault) -> Answer:
        if fault.kind == "code_500":
            return _answer(INTERNAL, "服务内部错误,请重试")
        if fault.kind == "throttle":
            # Tencent documents no Retry-After; a scripted one is sent to rehearse it.
            return _answer(THROTTLED, _THROTTLED_INFO, headers=retry_after_header(fault))
        status = int(fault.kind.removeprefix("http_"))
        reasons = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
        return Answer(status=status, body=reasons[status])


_C2C_INFO = {
    20022: "该待撤回的消息不存在,请检查。",
    20023: "该消息已被撤回。",
}
_SIG_INFO = {
    SigCheck.UNDECODABLE: "解析失败。",
    SigCheck.SDKAPPID_MISMATCH: "请求中的 SDKAppID 与生成 UserSig 时使用的 SDKAppID 不一致。",
    SigCheck.IDENTIFIER_MISMATCH: "请求中的 UserID 与生成 UserSig 时使用的 UserID 不一致",
    SigCheck.EXPIRED: "UserSig 已过期。请重新生成。",
    SigCheck.SIG_MISMATCH: "UserSig 验证失败。",
}


def _answer(
    code: int,
    info: str = "",
    *,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """HTTP 200 and the envelope (§T1.3)."""
    body: dict[str, Any] = {
        "ActionStatus": "OK" if code == OK else "FAIL",
        "ErrorInfo": info,
        "ErrorCode": code,
        **(extra or {}),
    }
    return Answer(status=200, body=body, code=code, headers=headers or {})


def _reject(code: int, info: str) -> Reject:
    return Reject(_answer(code, info))


def _account(body: dict[str, Any], name: str, missing: int) -> str:
    """An account field: missing answers `missing`; not a string, 60015 "账号类型错误"."""
    value = body.get(name)
    if value is None or value == "":
        raise _reject(missing, f"{name} missing")
    if not isinstance(value, str):
        raise _reject(60015, "请求包体账号类型错误,请确认账号为字符串格式。")
    return value


def _body(incoming: Incoming) -> dict[str, Any]:
    return incoming.body if isinstance(incoming.body, dict) else {}


def _msg_key(incoming: Incoming) -> tuple[str, ...]:
    return (str(_body(incoming).get("MsgKey", "")),)


def _msg_keys(incoming: Incoming) -> tuple[str, ...]:
    keys = _body(incoming).get("MsgKeyList")
    return tuple(str(k) for k in keys) if isinstance(keys, list) else ()


def _seqs(incoming: Incoming) -> tuple[str, ...]:
    entries = _body(incoming).get("MsgSeqList")
    if not isinstance(entries, list):
        return ()
    return tuple(str(e.get("MsgSeq")) for e in entries if isinstance(e, dict))


def _no_items(incoming: Incoming) -> tuple[str, ...]:
    return ()


def _conversation(incoming: Incoming) -> tuple[str, ...]:
    body = _body(incoming)
    other = body.get("To_Account", body.get("ToGroupid", ""))
    return (f"{body.get('From_Account', '')}/{other}",)
