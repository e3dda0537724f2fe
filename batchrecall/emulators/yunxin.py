"""NetEase Yunxin IM v2 emulator: recall/delete a message, clear history, delete conversations,
and list an account's conversations (read only).

Sources: seed 003 (the recall/delete page) and vendors.md §2; the conversation list from the
server SDK (research/history-apis.md §4). Every API answer is HTTP 200 with the outcome in the
body `{"code","msg","data"}` (vendors.md §2.3); HTTP-level failures are the gateway's (plain
text). A query parameter an endpoint does not document is refused with 414 (`strict_params`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar
from urllib.parse import unquote

from starlette.routing import Route

from batchrecall.emulators.common import DEFAULT_SETTINGS, Clock, EmulatorSettings
from batchrecall.emulators.faults import Fault, FaultKind
from batchrecall.emulators.wire import (
    Answer,
    Incoming,
    Reject,
    VendorEmulator,
    retry_after_header,
)
from batchrecall.emulators.yunxin_state import (
    BAD_PARAMETER,
    DEFAULT_APP_KEY,
    DEFAULT_APP_SECRET,
    DELETE,
    NOT_FOUND,
    OK,
    ONE_WAY,
    SUPER_TEAM,
    YunxinState,
    is_digits,
    parse_conversation_id,
)

BATCH_DELETE_LIMIT = 100  # vendors.md §2.7: at most 100 conversations a call
DESCRIPTION_MAX = 128  # seed 003: description "长度上限 128 位字符"
# Inferred: which code answers more than 100 ids; 419 is "数量超过上限" in the status-code table.
TOO_MANY = 419
THROTTLED = 416
_THROTTLED_MSG = "Too many requests within a short period of time"  # status-code table: 416
_AUTH_HEADERS = ("AppKey", "Nonce", "CurTime", "CheckSum")
# Seed 003: the query parameters of 撤回/删除消息 (the skip-the-window flag: revoke_flag_names).
_REMOVE_PARAMS = (
    "type",
    "description",
    "push_content",
    "push_payload",
    "route_environment",
    "attach",
    "check_team_member_valid",
)
T = TypeVar("T")
LIST_LIMIT = 100  # conversation list: at most 100 a page (SDK, research/history-apis.md)
PAGE_LIMIT = 100  # history and search: limit at most 100 (research/history-apis.md §4.1, §4.2)
SEARCH_SENDERS = 5  # search_messages: sender_account_ids at most 5 (§4.2)
# research/history-apis.md §4.2 (DOC + SDK SearchMessagesRequestV2).
_SEARCH_PARAMS = (
    "operator_id",
    "conversation_id",
    "sender_account_ids",
    "message_types",
    "message_sub_types",
    "start_time",
    "time_period",
    "keyword_list",
    "keyword_match_type",
    "page_token",
    "limit",
    "direction",
)
# §4.1 (DOC v2 page + SDK QueryMessagesByPageRequestV2).
_HISTORY_PARAMS = (
    "begin_time",
    "end_time",
    "page_token",
    "limit",
    "descending",
    "message_type",
    "check_team_valid",
    "include_no_sense_msg",
)


class YunxinEmulator(VendorEmulator):
    """One Yunxin app over HTTP, serving the v2 paths (`/im/v2/...`) at its root."""

    vendor = "yunxin"
    random_faults: ClassVar[tuple[FaultKind, ...]] = ("http_502", "code_500")

    def __init__(
        self,
        settings: EmulatorSettings = DEFAULT_SETTINGS,
        *,
        clock: Clock = time.time,
        app_key: str = DEFAULT_APP_KEY,
        app_secret: str = DEFAULT_APP_SECRET,
    ) -> None:
        self.state = YunxinState(settings, clock=clock, app_key=app_key, app_secret=app_secret)
        super().__init__(settings, clock)

    def _routes(self) -> list[Route]:
        base = "/im/v2/conversations"
        one = f"{base}/{{conversation_id}}"
        return [
            self._route("/im/v2.1/conversations", "GET", self._list_conversations, _no_items),
            self._route(
                "/im/v2.1/messages/actions/search_messages", "GET", self._search, _no_items
            ),
            self._route(
                "/im/v2.1/conversations/{conversation_id}/messages",
                "GET",
                self._history_v21,
                _conversation,
            ),
            self._route(f"{one}/messages", "GET", self._history, _conversation),
            # First, so that it is never read as a conversation id.
            self._route(f"{base}/actions/conversation_ids", "DELETE", self._delete_many, _ids),
            self._route(f"{one}/messages/{{message_server_id}}", "DELETE", self._remove, _msg_id),
            self._route(f"{one}/messages", "DELETE", self._clear_history, _conversation),
            self._route(one, "DELETE", self._delete_one, _conversation),
        ]

    # Route handlers.

    def _remove(self, incoming: Incoming) -> Answer:
        """Recall (type 1 one-way, 2 two-way) or delete (type 3) one message (seed 003)."""
        self._gate(incoming)
        conversation_id = incoming.path_params["conversation_id"]
        conversation_type = _conversation_type(conversation_id)
        message_server_id = incoming.path_params["message_server_id"]
        if not is_digits(message_server_id):
            raise _reject(BAD_PARAMETER, "message_server_id invalid: an integer expected")
        query = incoming.query
        self._known_params(query, (*_REMOVE_PARAMS, *self.state.revoke_flag_names))
        op = int(_choice(query, "type", ("1", "2", "3")))
        ignore_revoke_time = _ignore_revoke_time(query, self.state.revoke_flag_names)
        check = _choice(query, "check_team_member_valid", ("true", "false"), "true") == "true"
        if len(query.get("description", "")) > DESCRIPTION_MAX:
            raise _reject(BAD_PARAMETER, f"description too long (at most {DESCRIPTION_MAX})")
        if op in (ONE_WAY, DELETE) and conversation_type == SUPER_TEAM:
            # Seed 003: types 1 and 3 support P2P and advanced team messages only.
            raise _reject(BAD_PARAMETER, "type 1 and 3 support p2p and advanced team only")
        code, msg = self.state.remove_message(
            conversation_id,
            message_server_id,
            op=op,
            ignore_revoke_time=ignore_revoke_time,
            check_team_member=check,
        )
        return _answer(code, msg)

    def _clear_history(self, incoming: Incoming) -> Answer:
        """Delete the conversation's roaming (1), history (2) or both (3) messages."""
        self._gate(incoming)
        conversation_id = incoming.path_params["conversation_id"]
        _conversation_type(conversation_id)
        self._known_params(incoming.query, ("type",))
        kind = int(_choice(incoming.query, "type", ("1", "2", "3")))
        if not self.state.clear_history(conversation_id, kind):
            return _answer(NOT_FOUND, "conversation not found")
        return _answer(OK)

    def _delete_one(self, incoming: Incoming) -> Answer:
        """Delete one conversation (`?clear_message=` also deletes its messages)."""
        self._gate(incoming)
        conversation_id = incoming.path_params["conversation_id"]
        _conversation_type(conversation_id)
        self._known_params(incoming.query, ("clear_message",))
        clear_message = _clear_message(incoming.query)
        if not self.state.delete_conversation(conversation_id, clear_message=clear_message):
            return _answer(NOT_FOUND, "conversation not found")
        return _answer(OK)

    def _delete_many(self, incoming: Incoming) -> Answer:
        """Delete up to 100 conversations; unknown ones are reported in `failed_list`."""
        self._gate(incoming)
        self._known_params(incoming.query, ("conversation_ids", "clear_message"))
        conversation_ids = _batch_ids(incoming.query)
        if not conversation_ids:
            raise _reject(BAD_PARAMETER, "conversation_ids missing")
        if len(conversation_ids) > BATCH_DELETE_LIMIT:
            raise _reject(TOO_MANY, "数量超过上限")
        for conversation_id in conversation_ids:
            _conversation_type(conversation_id)
        clear_message = _clear_message(incoming.query)
        succeeded: list[str] = []
        failed: list[dict[str, Any]] = []
        for conversation_id in conversation_ids:
            if self.state.delete_conversation(conversation_id, clear_message=clear_message):
                succeeded.append(conversation_id)
            else:
                failed.append(
                    {
                        "conversation_id": conversation_id,
                        "error_code": NOT_FOUND,
                        "error_msg": "conversation not found",
                    }
                )
        return _answer(OK, data={"success_list": succeeded, "failed_list": failed})

    def _list_conversations(self, incoming: Incoming) -> Answer:
        """One account's conversations, a page at a time (read only; SDK
        `GET /im/v2.1/conversations?account_id&page_token&limit`)."""
        self._gate(incoming)
        query = incoming.query
        self._known_params(query, ("account_id", "page_token", "limit"))
        account = query.get("account_id", "")
        if not account:
            raise _reject(BAD_PARAMETER, "account_id missing")
        limit = query.get("limit", "")
        if not is_digits(limit) or not 1 <= int(limit) <= LIST_LIMIT:
            raise _reject(BAD_PARAMETER, f"limit invalid: 1 to {LIST_LIMIT} expected")
        owned = self.state.conversations_of(account)
        page, data = _paged(owned, query.get("page_token", ""), int(limit))
        data["items"] = [self._conversation_item(cid) for cid in page]
        return _answer(OK, data=data)

    def _conversation_item(self, conversation_id: str) -> dict[str, Any]:
        """A conversation as the list answers it (SDK GetConversationResponseV2): its last
        message and update time when it has a message left."""
        item: dict[str, Any] = {"conversation_id": conversation_id}
        last = self.state.last_message(conversation_id)
        if last is not None:
            item["last_message"] = last
            item["update_time"] = last["create_time"]
        return item

    def _search(self, incoming: Incoming) -> Answer:
        """检索历史消息: the senders' messages in the operator's conversations, sent in
        [start_time, start_time + time_period), newest first, a page at a time."""
        self._gate(incoming)
        query = incoming.query
        self._known_params(query, _SEARCH_PARAMS)
        operator = query.get("operator_id", "")
        if not operator:
            raise _reject(BAD_PARAMETER, "operator_id missing")
        senders = [s for s in query.get("sender_account_ids", "").split(",") if s]
        if len(senders) > SEARCH_SENDERS:
            raise _reject(BAD_PARAMETER, f"sender_account_ids: at most {SEARCH_SENDERS}")
        start, period = query.get("start_time", ""), query.get("time_period", "")
        if not is_digits(start) or not is_digits(period) or int(period) == 0:
            raise _reject(BAD_PARAMETER, "start_time and time_period: ms expected")
        limit = _limit(query)
        if "conversation_id" in query:
            _conversation_type(query["conversation_id"])
        if not self.state.knows_account(operator):
            return _answer(NOT_FOUND, "account not found")
        found = self.state.search(operator, set(senders), int(start), int(start) + int(period))
        if "conversation_id" in query:
            wanted = {
                m.conversation_id for m in self.state.history(query["conversation_id"], 0, 2**62)
            }
            found = [m for m in found if m.conversation_id in wanted]
        page, data = _paged(found, query.get("page_token", ""), limit)
        data["items"] = [m.item() for m in page]
        data["count"] = len(found)
        return _answer(OK, data=data)

    def _history_v21(self, incoming: Incoming) -> Answer:
        if not self.state.history_v21:
            return Answer(status=404, body="Not Found")
        return self._history(incoming)

    def _history(self, incoming: Incoming) -> Answer:
        """分页查询历史消息: a conversation's messages in [begin_time, end_time]."""
        self._gate(incoming)
        conversation_id = incoming.path_params["conversation_id"]
        _conversation_type(conversation_id)
        query = incoming.query
        self._known_params(query, _HISTORY_PARAMS)
        begin, end = query.get("begin_time", ""), query.get("end_time", "")
        if not is_digits(begin) or not is_digits(end) or int(begin) >= int(end):
            raise _reject(BAD_PARAMETER, "bad time")
        limit = _limit(query)
        found = self.state.history(conversation_id, int(begin), int(end))
        page, data = _paged(found, query.get("page_token", ""), limit)
        data["items"] = [m.item() for m in page]
        return _answer(OK, data=data)

    # Checks shared by the routes.

    def _known_params(self, query: Mapping[str, str], known: tuple[str, ...]) -> None:
        """In strict mode, a parameter the endpoint does not document is refused (414)."""
        if not self.state.strict_params:
            return
        unknown = sorted(name for name in query if name not in known)
        if unknown:
            raise _reject(BAD_PARAMETER, f"unknown parameter: {', '.join(unknown)}")

    def _gate(self, incoming: Incoming) -> None:
        """The signature headers (414 on any failure), then the rate (416)."""
        values = []
        for name in _AUTH_HEADERS:
            value = incoming.headers.get(name)
            if not value:
                raise _reject(BAD_PARAMETER, f"{name.lower()} missing: {name} header required")
            values.append(value)
        app_key, nonce, cur_time, checksum = values
        refusal = self.state.authenticate(app_key, nonce, cur_time, checksum)
        if refusal is not None:
            raise _reject(BAD_PARAMETER, refusal)
        if not self.state.admit():
            raise _reject(THROTTLED, _THROTTLED_MSG)

    def _fault_answer(self, fault: Fault) -> Answer:
        if fault.kind == "code_500":
            return _answer(500, "server error")
        if fault.kind == "throttle":
            return _answer(THROTTLED, _THROTTLED_MSG, headers=retry_after_header(fault))
        status = int(fault.kind.removeprefix("http_"))
        reasons = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
        return Answer(status=status, body=reasons[status])


def _answer(
    code: int,
    msg: str = "success",
    *,
    data: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """HTTP 200 and the v2 body; `data` only on success (failures carry none)."""
    body: dict[str, Any] = {"code": code, "msg": msg}
    if code == OK:
        body["data"] = data or {}
    return Answer(status=200, body=body, code=code, headers=headers or {})


def _limit(query: Mapping[str, str]) -> int:
    limit = query.get("limit", "")
    if not is_digits(limit) or not 1 <= int(limit) <= PAGE_LIMIT:
        raise _reject(BAD_PARAMETER, f"limit invalid: 1 to {PAGE_LIMIT} expected")
    return int(limit)


def _paged(entries: list[T], token: str, limit: int) -> tuple[list[T], dict[str, Any]]:
    """One page from the offset `token` names (the first when empty), and its paging data."""
    start = int(token) if is_digits(token) else 0
    page = entries[start : start + limit]
    more = start + len(page) < len(entries)
    return page, {"has_more": more, "next_token": str(start + len(page)) if more else ""}


def _reject(code: int, msg: str) -> Reject:
    return Reject(_answer(code, msg))


def _conversation_type(conversation_id: str) -> int:
    parsed = parse_conversation_id(conversation_id)
    if parsed is None:
        raise _reject(BAD_PARAMETER, f"conversation_id invalid: {conversation_id}")
    return parsed[1]


def _choice(
    query: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str | None = None
) -> str:
    """A query parameter that must be one of `allowed` (required when there is no default)."""
    value = query.get(name, default)
    if value is None or value not in allowed:
        raise _reject(BAD_PARAMETER, f"{name} invalid: one of {', '.join(allowed)} expected")
    return value


def _ignore_revoke_time(query: Mapping[str, str], names: tuple[str, ...]) -> bool:
    """`ingore_revoke_time` (seed 003) or `ignore_revoke_time` (SDK spelling), whichever of
    `names` the server knows, each honoured alone: 0 or 1 only (seed 003:
    "传其他值均判定为非法参数")."""
    flags = [_choice(query, name, ("0", "1"), "0") for name in names]
    return "1" in flags


def _clear_message(query: Mapping[str, str]) -> bool:
    return _choice(query, "clear_message", ("true", "false"), "false") == "true"


def _batch_ids(query: Mapping[str, str]) -> list[str]:
    """The ids of `conversation_ids`: the value (decoded once already) split on commas, then
    each id decoded (the doc: URL-encoded ids separated by commas)."""
    raw = query.get("conversation_ids", "")
    return [unquote(part) for part in raw.split(",")] if raw else []


def _ids(incoming: Incoming) -> tuple[str, ...]:
    return tuple(_batch_ids(incoming.query))


def _no_items(incoming: Incoming) -> tuple[str, ...]:
    return ()


def _msg_id(incoming: Incoming) -> tuple[str, ...]:
    return (incoming.path_params.get("message_server_id", ""),)


def _conversation(incoming: Incoming) -> tuple[str, ...]:
    return (incoming.path_params.get("conversation_id", ""),)
