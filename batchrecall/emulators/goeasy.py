"""GoEasy IM REST emulator: admin recall (`POST /v2/im/history/recall`).

Source: seed 001 (the recall page) and vendors.md §3. The page documents the request, the limit
of 20 timestamps, the success body `{"code":200,"content":"OK"}` and the wrong-appkey body
`{"code":401,"content":"Unauthorized"}`; every other answer here is inferred, in the same shape.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from starlette.routing import Route

from batchrecall.emulators.common import DEFAULT_SETTINGS, Clock, EmulatorSettings
from batchrecall.emulators.faults import Fault, FaultKind
from batchrecall.emulators.goeasy_state import (
    DEFAULT_COMMON_KEY,
    DEFAULT_REST_KEY,
    ConversationKey,
    GoEasyState,
    conversation_key,
)
from batchrecall.emulators.wire import (
    Answer,
    Incoming,
    Reject,
    VendorEmulator,
    retry_after_header,
)

RECALL_LIMIT = 20  # seed 001: "每次最多撤回20条消息"
HISTORY_LIMIT = 30  # research/history-apis §2.1: limit default 10, at most 30 (v2)
HISTORY_DEFAULT_LIMIT = 10


class GoEasyEmulator(VendorEmulator):
    """One GoEasy app over HTTP; the common key and the rest key are accepted, nothing else."""

    vendor = "goeasy"
    random_faults: ClassVar[tuple[FaultKind, ...]] = ("http_500",)

    def __init__(
        self,
        settings: EmulatorSettings = DEFAULT_SETTINGS,
        *,
        clock: Clock = time.time,
        common_key: str = DEFAULT_COMMON_KEY,
        rest_key: str = DEFAULT_REST_KEY,
    ) -> None:
        self.common_key = common_key
        self.rest_key = rest_key
        self.state = GoEasyState(settings, clock=clock, appkeys=(common_key, rest_key))
        super().__init__(settings, clock)

    def _routes(self) -> list[Route]:
        return [
            self._route("/v2/im/history/recall", "POST", self._recall, _timestamp_items),
            self._route("/v2/im/history", "GET", self._history, _no_items),
        ]

    def _history(self, incoming: Incoming) -> Answer:
        """A conversation's messages before `lasttimestamp` (default now), newest first
        (research/history-apis §2.1; the answer `{"code":200,"content":[...]}`)."""
        query = incoming.query
        if not self.state.accepts(query.get("appkey")):
            raise _reject(401, "Unauthorized")
        if not self.state.admit():
            raise _reject(429, "Too many requests")
        conversation = _conversation({k: v for k, v in query.items() if k != "appkey"})
        limit_text = query.get("limit", str(HISTORY_DEFAULT_LIMIT))
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= HISTORY_LIMIT:
            raise _reject(400, f"limit must be 1 to {HISTORY_LIMIT}")
        before_text = query.get("lasttimestamp", "")
        now_ms = int(self.clock() * 1000) + 1
        before = int(before_text) if before_text.isdigit() else now_ms
        content = self.state.history(conversation, before, int(limit_text))
        body = {"code": 200, "content": content}
        return Answer(status=200, body=body, code=200)

    def _recall(self, incoming: Incoming) -> Answer:
        body = incoming.body
        if not incoming.json_ok or not isinstance(body, dict):
            raise _reject(400, "request body must be a JSON object")
        if not self.state.accepts(body.get("appkey")):
            raise _reject(401, "Unauthorized")  # seed 001: the documented failure example
        if not self.state.admit():
            raise _reject(429, "Too many requests")
        conversation = _conversation(body)
        timestamps = _timestamps(body)
        _check_recaller(body.get("recaller"))
        refusal = self.state.recall(conversation, timestamps)
        if refusal is not None:
            raise _reject(400, refusal)
        return _answer(200, "OK")

    def _fault_answer(self, fault: Fault) -> Answer:
        if fault.kind in ("http_500", "code_500"):
            return _answer(500, "Internal Server Error")
        if fault.kind == "http_502":
            return _answer(502, "Bad Gateway")
        if fault.kind == "http_503":
            return _answer(503, "Service Unavailable")
        return _answer(429, "Too many requests", retry_after_header(fault))


def _answer(code: int, content: str, headers: dict[str, str] | None = None) -> Answer:
    """GoEasy's REST body, `{"code","content"}`, with the same HTTP status as the code."""
    body = {"code": code, "content": content}
    return Answer(status=code, body=body, code=code, headers=headers or {})


def _reject(code: int, content: str) -> Reject:
    return Reject(_answer(code, content))


def _conversation(body: dict[str, Any]) -> ConversationKey:
    """The private pair or the group the call names (the doc: a pair, or groupId, not both)."""
    names = ("userAId", "userBId", "groupId")
    for name in names:
        value = body.get(name)
        if value is not None and (not isinstance(value, str) or not value):
            raise _reject(400, f"{name} must be a non-empty string")
    user_a, user_b, group_id = (body.get(name) for name in names)
    if group_id is not None and (user_a is not None or user_b is not None):
        raise _reject(400, "groupId must not be combined with userAId/userBId")
    if group_id is None and user_a is None and user_b is None:
        raise _reject(400, "userAId and userBId, or groupId, is required")
    if group_id is None and (user_a is None or user_b is None):
        raise _reject(400, "userAId and userBId must be given as a pair")
    return conversation_key(user_a=user_a, user_b=user_b, group_id=group_id)


def _timestamps(body: dict[str, Any]) -> list[int]:
    """The call's message timestamps: 1 to 20 distinct positive integers (milliseconds)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _reject(400, "messages must be a non-empty list of message timestamps")
    if len(messages) > RECALL_LIMIT:
        raise _reject(400, f"messages size can not exceed {RECALL_LIMIT}")
    if not all(_is_timestamp(value) for value in messages):
        raise _reject(400, "messages must hold message timestamps (integer milliseconds)")
    seen: set[int] = set()
    for timestamp in messages:
        if timestamp in seen:
            raise _reject(400, f"duplicate timestamp in messages: {timestamp}")
        seen.add(timestamp)
    return messages


def _check_recaller(recaller: Any) -> None:
    """`recaller` is optional; when given it is an object whose `id` is a string."""
    if recaller is None:
        return
    if not isinstance(recaller, dict) or not isinstance(recaller.get("id", ""), str):
        raise _reject(400, "recaller must be an object with a string id")


def _is_timestamp(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _timestamp_items(incoming: Incoming) -> tuple[str, ...]:
    body = incoming.body
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list):
        return ()
    return tuple(str(value) for value in messages if _is_timestamp(value))


def _no_items(incoming: Incoming) -> tuple[str, ...]:
    return ()
