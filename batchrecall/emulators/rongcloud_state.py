"""RongCloud's server-side state: credentials, messages, conversations' histories, the counter.

Sources: research/vendors-tencent-rongcloud.md Part R. Written from the document alone: no
constant here comes from the adapter.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from batchrecall.emulators.common import Clock, EmulatorSettings, SlidingWindow

DEFAULT_APP_KEY = "emulatorrongcloudkey"
DEFAULT_APP_SECRET = "emulatorrongsecret"

NONCE_MAX = 18  # §R1.1, the newer signature page: Nonce "不超过 18 个字符"
# A Timestamp of this many digits or more is read as milliseconds (the page's 13-digit
# example), a shorter one as seconds (what the official SDKs send, §R1.2).
MS_DIGITS = 12

# Body codes of the status-code table (§R4), each with its HTTP status.
OK = 200
SERVER_ERROR = 1000
KEY_MISMATCH = 1001  # "App Key 与 App Secret 不匹配", 401
BAD_PARAMETER = 1002  # "参数错误", 400
NO_POST_DATA = 1003  # "无 POST 数据", 400
BAD_SIGNATURE = 1004  # "验证签名错误", 401
TOO_LONG = 1005  # "参数长度超限", 400
THROTTLED = 1008  # "调用频率超限", 429
NOT_ENABLED = 1009  # "服务未开通", 430
NOT_THERE = 1015  # "删除的数据不存在", 200: this emulator's answer for a missing message (inferred)
HTTP_STATUS: dict[int, int] = {
    OK: 200,
    SERVER_ERROR: 500,
    KEY_MISMATCH: 401,
    BAD_PARAMETER: 400,
    NO_POST_DATA: 400,
    BAD_SIGNATURE: 401,
    TOO_LONG: 400,
    THROTTLED: 429,
    NOT_ENABLED: 430,
    NOT_THERE: 200,
}
WORDS: dict[int, str] = {
    SERVER_ERROR: "服务内部错误",
    KEY_MISMATCH: "App Key 与 App Secret 不匹配",
    BAD_PARAMETER: "参数错误",
    NO_POST_DATA: "无 POST 数据",
    # The official Java SDK's text for 1004 (§R2).
    BAD_SIGNATURE: "签名错误, 请排查 Appkey、Secret 是否正确",
    TOO_LONG: "参数长度超限",
    THROTTLED: "调用频率超限,每秒钟限制 100 次",
    NOT_ENABLED: "未开通该服务,请到开发者管理后台开通或提交工单申请。",
    NOT_THERE: "删除的数据不存在",
}

PRIVATE = 1  # conversationType 1: one-to-one

Answer = tuple[int, str]
"""A body code and its words."""


@dataclass(slots=True, kw_only=True)
class _Message:
    uid: str
    sender: str
    conversation_type: int
    target_id: str
    sent_ms: int
    bus_channel: str | None = None
    recalled: bool = False
    deleted: bool = False
    """Recalled with isDelete=1: gone without a recall notice."""
    cleared: bool = False


class RongCloudState:
    """One RongCloud app: its messages by messageUID, conversations, and the call counter."""

    def __init__(
        self,
        settings: EmulatorSettings,
        *,
        clock: Clock,
        app_key: str = DEFAULT_APP_KEY,
        app_secret: str = DEFAULT_APP_SECRET,
    ) -> None:
        self.clock = clock
        self.app_key = app_key
        self.app_secret = app_secret
        self._window = SlidingWindow.per_second(settings.rate)
        self._messages: dict[str, _Message] = {}
        self._conversations: set[tuple[str, int, str]] = set()
        self._by_conversation: dict[tuple[int, str, str], list[_Message]] = {}
        self.timestamp_units: tuple[str, ...] = ("s", "ms")
        """The Timestamp units accepted: both, since the documents say ms and the official SDKs
        send seconds (§R1.3); one alone plays a server that reads only that one."""
        self.timestamp_window_s: float | None = None
        """No freshness window is documented (§R1.3, not found): None accepts any time; a
        number plays a server that refuses a Timestamp this far from its clock."""
        self.recall_enabled = True
        """False: the app has not the service, every call answers 1009 (430)."""

    # Seeding and queries.

    def add_message(
        self,
        uid: str,
        *,
        sender: str,
        conversation_type: int,
        target_id: str,
        sent_ms: int | None = None,
        bus_channel: str | None = None,
    ) -> None:
        """Stores a message `sender` sent in the conversation (type, target), `sent_ms`
        (default now)."""
        when = round(self.clock() * 1000) if sent_ms is None else sent_ms
        message = _Message(
            uid=uid,
            sender=sender,
            conversation_type=conversation_type,
            target_id=target_id,
            sent_ms=when,
            bus_channel=bus_channel,
        )
        self._messages[uid] = message
        key = _key(sender, conversation_type, target_id)
        self._by_conversation.setdefault(key, []).append(message)
        self._conversations.add((sender, conversation_type, target_id))
        if conversation_type == PRIVATE:
            self._conversations.add((target_id, conversation_type, sender))

    def sent_messages(self) -> list[_Message]:
        """Every message sent, recalled or not (the history log records what was sent)."""
        return list(self._messages.values())

    def add_conversation(self, user: str, conversation_type: int, target_id: str) -> None:
        """A conversation `user` has a history in."""
        self._conversations.add((user, conversation_type, target_id))

    def is_recalled(self, uid: str) -> bool:
        message = self._messages.get(uid)
        return message is not None and message.recalled

    def is_deleted(self, uid: str) -> bool:
        """Recalled with isDelete=1 (no notice left)."""
        message = self._messages.get(uid)
        return message is not None and message.deleted

    def is_cleared(self, uid: str) -> bool:
        """Whether the message went with its conversation's history."""
        message = self._messages.get(uid)
        return message is not None and message.cleared

    # Authentication and rate.

    def authenticate(self, app_key: str, nonce: str, stamp: str, signature: str) -> Answer | None:
        """Checks the four signature headers: None when they pass, else the refusal."""
        if app_key != self.app_key:
            return KEY_MISMATCH, WORDS[KEY_MISMATCH]
        if not nonce or len(nonce) > NONCE_MAX:
            return BAD_SIGNATURE, f"Nonce: 1 to {NONCE_MAX} characters"
        if not (stamp.isascii() and stamp.isdigit()):
            return BAD_SIGNATURE, "Timestamp: digits expected"
        unit = "ms" if len(stamp) >= MS_DIGITS else "s"
        if unit not in self.timestamp_units:
            return BAD_SIGNATURE, f"Timestamp: {' or '.join(self.timestamp_units)} expected"
        seconds = int(stamp) / 1000 if unit == "ms" else int(stamp)
        window = self.timestamp_window_s
        if window is not None and abs(self.clock() - seconds) > window:
            return BAD_SIGNATURE, "Timestamp expired"
        expected = hashlib.sha1((self.app_secret + nonce + stamp).encode()).hexdigest()
        # Hex compared in any case (§R1.3: the SDKs send lower case; inferred).
        if signature.lower() != expected:
            return BAD_SIGNATURE, WORDS[BAD_SIGNATURE]
        return None

    def admit(self) -> bool:
        """Counts one call against the app's rate ("每秒钟限 100 次")."""
        return self._window.admit(self.clock())

    # Operations.

    def recall(
        self,
        uid: str,
        *,
        sender: str,
        conversation_type: int,
        target_id: str,
        bus_channel: str | None,
        is_delete: bool,
    ) -> Answer:
        """Recalls a message. No time limit is documented for the server API (§R2)."""
        message = self._messages.get(uid)
        if message is None or message.recalled or message.cleared:
            return NOT_THERE, WORDS[NOT_THERE]
        where = (message.sender, message.conversation_type, message.target_id)
        if where != (sender, conversation_type, target_id):
            # Inferred: a message named with another sender or conversation is a bad parameter.
            return BAD_PARAMETER, "messageUID does not match fromUserId, conversationType, targetId"
        if message.bus_channel != bus_channel:
            # §R2: busChannel "must match whether the original had a channel".
            return BAD_PARAMETER, "busChannel does not match the message's"
        message.recalled = True
        message.deleted = is_delete
        return OK, ""

    def clean_history(
        self, user: str, conversation_type: int, target_id: str, before_ms: int | None
    ) -> Answer:
        """Cleans `user`'s history of the conversation, all of it or what was sent before
        `before_ms` (§R3). An unknown conversation is answered as not there (inferred)."""
        if (user, conversation_type, target_id) not in self._conversations:
            return NOT_THERE, WORDS[NOT_THERE]
        for message in self._by_conversation.get(_key(user, conversation_type, target_id), []):
            if before_ms is None or message.sent_ms < before_ms:
                message.cleared = True
        return OK, ""


def _key(user: str, kind: int, target_id: str) -> tuple[int, str, str]:
    """A one-to-one conversation holds both parties' messages; any other, its target's."""
    if kind == PRIVATE:
        return kind, min(user, target_id), max(user, target_id)
    return kind, "", target_id
