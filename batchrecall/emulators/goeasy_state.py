"""GoEasy's server-side state: app keys, messages by conversation and timestamp, the counter."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from batchrecall.emulators.common import Clock, EmulatorSettings, SlidingWindow

DEFAULT_COMMON_KEY = "BC-emulator-common-key"
DEFAULT_REST_KEY = "BR-emulator-rest-key"

ConversationKey = tuple[str, str] | tuple[str, str, str]
"""("group", group_id) or ("private", user, user) with the two users sorted."""


def conversation_key(
    *, user_a: str | None = None, user_b: str | None = None, group_id: str | None = None
) -> ConversationKey:
    """The conversation a pair of users or a group names; the pair is unordered (the doc:
    "不区分发送方和接收方")."""
    if group_id is not None and user_a is None and user_b is None:
        return ("group", group_id)
    if group_id is None and user_a is not None and user_b is not None:
        first, second = sorted((user_a, user_b))
        return ("private", first, second)
    raise ValueError("name a conversation by user_a and user_b, or by group_id alone")


@dataclass(slots=True, kw_only=True)
class _Message:
    sent_at: float
    sender: str = ""
    recalled: bool = False


class GoEasyState:
    """One GoEasy app: its messages (known by conversation + timestamp) and its rate counter."""

    def __init__(self, settings: EmulatorSettings, *, clock: Clock, appkeys: Iterable[str]) -> None:
        self.clock = clock
        self.recall_window_s = settings.goeasy_recall_window_s
        self.appkeys = frozenset(appkeys)
        self._window = SlidingWindow.per_second(settings.rate)
        self._messages: dict[tuple[ConversationKey, int], _Message] = {}

    def add_message(
        self,
        timestamp: int,
        *,
        user_a: str | None = None,
        user_b: str | None = None,
        group_id: str | None = None,
        sent_at: float | None = None,
        sender: str = "",
    ) -> None:
        """Stores a message; it was sent at its timestamp unless `sent_at` (epoch s) says else
        (seeding a job's old timestamps as recent), by `sender` (default: user_a, or a
        group's `member`)."""
        key = conversation_key(user_a=user_a, user_b=user_b, group_id=group_id)
        when = timestamp / 1000 if sent_at is None else sent_at
        who = sender or user_a or "member"
        self._messages[(key, timestamp)] = _Message(sent_at=when, sender=who)

    def history(
        self, conversation: ConversationKey, before_ms: int, limit: int
    ) -> list[dict[str, Any]]:
        """The conversation's messages with a timestamp before `before_ms`, newest first, at most
        `limit`; a recalled one is flagged `recalled` (GoEasy's history keeps it)."""
        stamps = sorted(
            (stamp for key, stamp in self._messages if key == conversation and stamp < before_ms),
            reverse=True,
        )[:limit]
        answer = []
        for stamp in stamps:
            message = self._messages[(conversation, stamp)]
            entry: dict[str, Any] = {
                "type": "text",
                "messageId": f"{stamp:032x}"[-32:],
                "timestamp": stamp,
                "senderId": message.sender,
                "payload": {"text": ""},
            }
            if message.recalled:
                entry["recalled"] = True
            answer.append(entry)
        return answer

    def is_recalled(
        self,
        timestamp: int,
        *,
        user_a: str | None = None,
        user_b: str | None = None,
        group_id: str | None = None,
    ) -> bool:
        """Whether that message was recalled (False for an unknown one)."""
        message = self._find(timestamp, user_a, user_b, group_id)
        return message is not None and message.recalled

    def message_exists(
        self,
        timestamp: int,
        *,
        user_a: str | None = None,
        user_b: str | None = None,
        group_id: str | None = None,
    ) -> bool:
        """Whether that message is stored and not recalled."""
        message = self._find(timestamp, user_a, user_b, group_id)
        return message is not None and not message.recalled

    def _find(
        self, timestamp: int, user_a: str | None, user_b: str | None, group_id: str | None
    ) -> _Message | None:
        key = conversation_key(user_a=user_a, user_b=user_b, group_id=group_id)
        return self._messages.get((key, timestamp))

    def accepts(self, appkey: object) -> bool:
        """Whether `appkey` is one of the app's common or rest keys."""
        return isinstance(appkey, str) and appkey in self.appkeys

    def admit(self) -> bool:
        """Counts one call against the app's sliding window."""
        return self._window.admit(self.clock())

    def recall(self, conversation: ConversationKey, timestamps: Sequence[int]) -> str | None:
        """Recalls every message of the call, or none: None when done, else the refusal.

        The doc shows one answer for the whole call. Inferred: a call naming a message that is
        unknown, already recalled or past the recall window recalls nothing and is refused.
        """
        now = self.clock()
        messages = []
        for timestamp in timestamps:
            message = self._messages.get((conversation, timestamp))
            if message is None or message.recalled:
                return f"message not found: {timestamp}"
            if now - message.sent_at > self.recall_window_s:
                return f"recall time limit exceeded: {timestamp}"
            messages.append(message)
        for message in messages:
            message.recalled = True
        return None
