"""Easemob's server-side state: credentials, tokens, messages, conversations and counters."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Literal

from batchrecall.emulators.agora_token import PREFIX as AGORA_TOKEN_PREFIX
from batchrecall.emulators.agora_token import check_chat_app_token
from batchrecall.emulators.common import Clock, EmulatorSettings, SlidingWindow
from batchrecall.emulators.easemob_export import EXPORT_CALLS_PER_MINUTE, ExportLog

DEFAULT_ORG = "demo-org"
DEFAULT_APP = "demo-app"
DEFAULT_CLIENT_ID = "YXA6emulator-client-id"
DEFAULT_CLIENT_SECRET = "YXA6emulator-client-secret"
DEFAULT_TOKEN_TTL_S = 7200.0

# Per-message recall outcomes, as the doc spells them (message_recall_single.md error table).
RECALLED = "yes"
NOT_FOUND = "not_found msg"
EXCEEDED = "exceed recall time limit"
NO_RECIPIENT = "can't find msg to"

CHAT_TYPES = frozenset({"chat", "groupchat", "chatroom"})
CHANNEL_TYPES = frozenset({"chat", "groupchat"})  # user_channel: "目前支持单聊会话和群组会话"

TOKEN_PREFIX = "YWMt"  # the doc's app tokens all start so (easemob_app_token.md example)
TOKEN_RATE = 300  # limitationapi.md: POST /token 300 calls/s/App Key
USER_CHANNEL_PER_USER = 5  # limitationapi.md: user_channel 5 calls/min per user ID
STORAGE_S = 7 * 86400.0  # seed 000: "在服务器上的存储时长为 7 天" (the doc's example)

RateApi = Literal["msg_recall", "batch_recall", "user_channel"]
TokenStatus = Literal["ok", "expired", "unknown"]
Wording = Literal["easemob", "agora"]
FailureShape = Literal["error", "msgs"]
BatchRefusal = Literal["whole_call", "per_message"]


@dataclass(slots=True, kw_only=True)
class _Message:
    sender: str
    to: str
    chat_type: str
    sent_at: float
    recalled: bool = False


class EasemobState:
    """One Easemob app: what exists, what was recalled or deleted, and the rate counters."""

    def __init__(
        self,
        settings: EmulatorSettings,
        *,
        clock: Clock,
        org_name: str = DEFAULT_ORG,
        app_name: str = DEFAULT_APP,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        token_ttl_s: float = DEFAULT_TOKEN_TTL_S,
    ) -> None:
        self.clock = clock
        self.recall_window_s = settings.recall_window_s
        self.org_name = org_name
        self.app_name = app_name
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_ttl_s = token_ttl_s
        self.application = str(uuid.uuid5(uuid.NAMESPACE_URL, f"easemob:{org_name}/{app_name}"))
        self.batch_recall_enabled = True
        """False: batch_recall answers 404, as on a cluster without it."""
        self.recall_service_enabled = True
        """False: recall answers 403 forbidden_op "message recall service is unopened"."""
        self.quota_exhausted = False
        """True: every API call answers 429 resource_limited (community edition limit)."""
        self.storage_s = STORAGE_S
        """The server storage period: older messages are gone unless recalled with force."""
        self.wording: Wording = "easemob"
        """"agora": Agora Chat's texts (`can't find message to`, `exceed call time limit`,
        "...API limit.") where Easemob's differ (vendors.md §1.3, §1.6)."""
        self.recall_failure_shape: FailureShape = "error"
        """How a refused recall is answered: "error", the error table's body; "msgs", the
        per-message body `{"msgs":[{"msg_id","recalled"}]}` of seed 000 (its HTTP status is
        not documented: 400 for a recipient not found, else 403, as in the error table)."""
        self.batch_refusal: BatchRefusal = "whole_call"
        """How a batch with a refused message is answered: "whole_call" (the default), as the
        batch page says (its errors are the single recall's table): the first refused message's
        error for the whole call, and none of the batch recalled (inferred: the page does not
        say whether the others were); "per_message", HTTP 200 with each message's `recalled`
        (undocumented)."""
        self.agora_app_id: str | None = None
        self.agora_app_certificate: str | None = None
        """Set both to take Agora Chat app tokens (AccessToken2) built from them."""
        self.export = ExportLog()
        """The hourly history export: the messages as sent (a recall does not change it)."""
        self._export_window = SlidingWindow(EXPORT_CALLS_PER_MINUTE, 60.0)
        self._messages: dict[str, _Message] = {}
        self._users: set[str] = set()
        self._conversations: set[tuple[str, str, str]] = set()
        self._roam_deleted: set[tuple[str, str, str]] = set()
        self._tokens: dict[str, float | None] = {}
        self._rate = settings.rate
        self._api_windows: dict[str, SlidingWindow] = {}
        self._token_window = SlidingWindow(TOKEN_RATE, 1.0)
        self._user_windows: dict[str, SlidingWindow] = {}

    # Seeding and queries.

    def add_user(self, username: str) -> None:
        """Registers a user."""
        self._users.add(username)

    def add_conversation(self, username: str, channel: str, type: str) -> None:
        """Gives `username` a server-side conversation with `channel` (`chat` or `groupchat`)."""
        self._users.add(username)
        self._conversations.add((username, channel, type))

    def add_message(
        self,
        msg_id: str,
        *,
        sender: str,
        to: str,
        chat_type: str,
        sent_at: float | None = None,
    ) -> None:
        """Stores a message sent at `sent_at` (epoch seconds; default now)."""
        when = self.clock() if sent_at is None else sent_at
        self._messages[msg_id] = _Message(sender=sender, to=to, chat_type=chat_type, sent_at=when)
        self.export.record(msg_id, sender=sender, to=to, chat_type=chat_type, sent_at=when)
        self._users.add(sender)
        if chat_type == "chat":
            self._users.add(to)

    def is_recalled(self, msg_id: str) -> bool:
        """Whether the message was recalled (False for an unknown one)."""
        message = self._messages.get(msg_id)
        return message is not None and message.recalled

    def message_exists(self, msg_id: str) -> bool:
        """Whether the message is stored and not recalled."""
        message = self._messages.get(msg_id)
        return message is not None and not message.recalled

    def user_exists(self, username: str) -> bool:
        """Whether the user is registered."""
        return username in self._users

    def conversation_exists(self, username: str, channel: str, type: str) -> bool:
        """Whether `username` still has the conversation on the server."""
        return (username, channel, type) in self._conversations

    def roam_deleted(self, username: str, channel: str, type: str) -> bool:
        """Whether a conversation delete also deleted its roaming messages."""
        return (username, channel, type) in self._roam_deleted

    # Tokens.

    def credentials_error(self, client_id: str, client_secret: str) -> str | None:
        """The doc's `invalid_grant` description for wrong credentials, else None."""
        if client_id != self.client_id:
            return "client_id does not match"
        if client_secret != self.client_secret:
            return "client_secret does not match"
        return None

    def issue_token(self, ttl_s: float | None) -> tuple[str, float]:
        """A new app token and its lifetime in seconds (0: it never expires)."""
        ttl = self.token_ttl_s if ttl_s is None else ttl_s
        token = TOKEN_PREFIX + secrets.token_urlsafe(48)
        self._tokens[token] = None if ttl == 0 else self.clock() + ttl
        return token, ttl

    def token_status(self, token: str) -> TokenStatus:
        """Whether `token` is valid now, expired, or was never issued here."""
        if token.startswith(AGORA_TOKEN_PREFIX) and self.agora_app_certificate is not None:
            check = check_chat_app_token(
                token,
                app_id=self.agora_app_id or "",
                app_certificate=self.agora_app_certificate,
                now=self.clock(),
            )
            return "unknown" if check == "invalid" else check
        if token not in self._tokens:
            return "unknown"
        expires_at = self._tokens[token]
        if expires_at is not None and self.clock() >= expires_at:
            return "expired"
        return "ok"

    def issued_tokens(self) -> list[str]:
        """Every token issued so far (tests check that none leaks into any output)."""
        return list(self._tokens)

    def expire_tokens(self) -> None:
        """Makes every token issued so far expired (a forced 401 for tests)."""
        now = self.clock()
        for token in self._tokens:
            self._tokens[token] = now

    # Rate limits.

    def admit_token_request(self) -> bool:
        """Counts a token request against the token endpoint's own limit."""
        return self._token_window.admit(self.clock())

    def admit(self, api: RateApi) -> bool:
        """Counts a call to `api` against its per-app sliding window (limits are per API)."""
        window = self._api_windows.get(api)
        if window is None:
            window = self._api_windows[api] = SlidingWindow.per_second(self._rate)
        return window.admit(self.clock())

    def admit_export(self) -> bool:
        """Counts one export call: at most 10 a minute per app key."""
        return self._export_window.admit(self.clock())

    def admit_user_channel(self, username: str) -> bool:
        """Counts a conversation delete against the user's 5-a-minute limit."""
        window = self._user_windows.get(username)
        if window is None:
            window = self._user_windows[username] = SlidingWindow(USER_CHANNEL_PER_USER, 60.0)
        return window.admit(self.clock())

    # Operations.

    def recall(
        self, msg_id: str, *, to: str, chat_type: str, force: bool, apply: bool = True
    ) -> str:
        """Recalls one message and says how it went, in the doc's words.

        Seed 000 (`force`): within the recall window it is recalled; past the storage period only
        with force (the receiver's copy); in between it is `exceed recall time limit` even with
        force. An unknown or already recalled message is `not_found msg`. Without `apply` it
        only says what a recall would answer.
        """
        message = self._messages.get(msg_id)
        if message is None or message.recalled:
            return NOT_FOUND
        if message.to != to or message.chat_type != chat_type:
            return NO_RECIPIENT
        age = self.clock() - message.sent_at
        if self.recall_window_s < age <= self.storage_s:
            return EXCEEDED
        if age > self.storage_s and not force:
            return NOT_FOUND
        if apply:
            message.recalled = True
        return RECALLED

    def delete_conversation(
        self,
        username: str,
        channel: str,
        type: str,
        *,
        delete_roam: bool,
    ) -> bool:
        """Removes the user's conversation; False for an unknown user.

        A known user without that conversation also succeeds (inferred: the doc lists no error
        for it, and the delete leaves the same state).
        """
        if username not in self._users:
            return False
        key = (username, channel, type)
        self._conversations.discard(key)
        if delete_roam:
            self._roam_deleted.add(key)
        return True
