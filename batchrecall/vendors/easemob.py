"""Easemob (Agora Chat) adapter: app token, batch/single recall, one-way conversation delete."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any, NoReturn
from urllib.parse import quote

import httpx
import orjson

from batchrecall.config import LaneSettings
from batchrecall.errors import (
    ErrorCode,
    LaneFatalError,
    SplitCallError,
    ThrottledError,
    TransientCallError,
)
from batchrecall.models import USER_PACING_PERIOD_S, Call, Item, ItemOutcome, Op, Status, Vendor
from batchrecall.redact import register_secret
from batchrecall.vendors.agora_token import MAX_SALT, build_chat_app_token
from batchrecall.vendors.base import NO_ITEMS, Adapter, json_body, retry_after, server_error
from batchrecall.vendors.easemob_answers import (
    description,
    entries,
    is_easemob_error,
    per_message,
    raise_for_status,
    refusal_outcome,
    refused_message,
)
from batchrecall.vendors.easemob_tokens import AppTokens

_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class EasemobAdapter(Adapter):
    vendor = Vendor.EASEMOB

    def __init__(
        self,
        settings: LaneSettings,
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(settings, client)
        self._wall_clock = wall_clock
        self._user_refusals: dict[str, int] = {}
        """Usernames whose deletes got 429 since their last answered one, and how often."""
        self._prefix = "/{}/{}".format(
            quote(settings.credentials["org_name"], safe=""),
            quote(settings.credentials["app_name"], safe=""),
        )
        self._batch = settings.batch_recall
        issue = self._agora_token if settings.auth == "agora" else self._fetch_token
        self._tokens = AppTokens(issue, clock=clock)

    def _user_refused(self, username: str, response: httpx.Response, answer: Any) -> NoReturn:
        """A conversation delete's 429. Easemob answers its app key's limit and a user's own
        window (5 calls a minute, counted with the user's client calls) alike. The first
        refusal is taken as the app's limit (SPEC §4: the whole lane pauses and slows); the
        same user refused again after that is their own window, and only their deletes wait
        (Retry-After, else a minute)."""
        refusals = self._user_refusals.get(username, 0) + 1
        self._user_refusals[username] = refusals
        wait = retry_after(response, now=self._wall_clock())
        if refusals == 1:
            raise ThrottledError(
                ErrorCode.RATE_LIMITED,
                description(answer),
                retry_after=wait,
                http_status=429,
                vendor_code="reach_limit",
            )
        raise TransientCallError(
            ErrorCode.RATE_LIMITED,
            description(answer),
            retry_after=USER_PACING_PERIOD_S if wait is None else wait,
            http_status=429,
            vendor_code="reach_limit",
        )

    def max_items(self, op: Op) -> int:
        # After a batch_recall 404/405 the lane recalls one message a call, whatever it planned.
        return 1 if op is Op.RECALL and not self._batch else self.spec.op(op).max_items

    async def send(self, call: Call) -> list[ItemOutcome]:
        if call.op is Op.RECALL and not self._batch and len(call.items) > 1:
            # Planned as a batch before batch_recall turned out to be unavailable: split it
            # into single msg_recall calls without sending it.
            raise SplitCallError(
                ErrorCode.BATCH_REJECTED,
                "batch_recall is not available here; recalling one message per call",
                delivered=False,
            )
        token, generation = await self._tokens.current()
        headers = {**_JSON_HEADERS, "Authorization": f"Bearer {token}"}
        if call.op is Op.DELETE_CONVERSATION:
            return await self._delete_conversation(call, headers, generation)
        if self._batch:
            return await self._batch_recall(call, headers, generation)
        return await self._single_recall(call, headers, generation)

    async def prepare(self) -> None:
        await self._tokens.current()

    async def bearer(self) -> tuple[dict[str, str], int]:
        """The headers of an app-token request (`collect`'s history calls) and the token's
        generation, for `refresh_auth` after a 401."""
        token, generation = await self._tokens.current()
        return {"Accept": "application/json", "Authorization": f"Bearer {token}"}, generation

    @property
    def app_path(self) -> str:
        """`/{org}/{app}`, each part URL-encoded."""
        return self._prefix

    async def refresh_auth(self, token_generation: int) -> None:
        await self._tokens.drop(token_generation)

    # -- token -------------------------------------------------------------------------------

    async def _agora_token(self) -> tuple[str, float]:
        """Agora Chat: an app token built here from the App ID and App Certificate."""
        lifetime = self.settings.token_lifetime_s
        token = build_chat_app_token(
            self.settings.credentials["app_id"],
            self.settings.secret("app_certificate"),
            issued_at=int(self._wall_clock()),
            expire_s=lifetime,
            salt=secrets.randbelow(MAX_SALT) + 1,
        )
        register_secret(token)
        return token, float(lifetime)

    async def _fetch_token(self) -> tuple[str, float]:
        body = {
            "grant_type": "client_credentials",
            "client_id": self.settings.credentials["client_id"],
            "client_secret": self.settings.secret("client_secret"),
        }
        response = await self.request(
            "POST",
            self.url(f"{self._prefix}/token"),
            content=orjson.dumps(body),
            headers=_JSON_HEADERS,
            extensions=NO_ITEMS,
        )
        answer = json_body(response)
        token = answer.get("access_token")
        if response.status_code == 200 and isinstance(token, str) and token:
            register_secret(token)
            expires_in = answer.get("expires_in")
            # 0 means it never expires; an answer without a lifetime is renewed within the hour.
            return token, float(expires_in) if isinstance(expires_in, int | float) else 3600.0
        if response.status_code == 429 and answer.get("error") == "resource_limited":
            # The plan's quota, as on any call: the same lane-stopping code.
            raise LaneFatalError(
                ErrorCode.QUOTA_EXHAUSTED,
                description(answer),
                http_status=429,
                vendor_code="resource_limited",
            )
        if response.status_code == 429:
            raise ThrottledError(
                ErrorCode.RATE_LIMITED,
                description(answer) or "token endpoint throttled",
                http_status=429,
                vendor_code=str(answer.get("error", "")),
                retry_after=retry_after(response, now=self._wall_clock()),
            )
        if response.status_code >= 500:
            server_error(response, description(answer), str(answer.get("error", "")))
        raise LaneFatalError(
            ErrorCode.AUTH_FAILED,
            f"token request refused: {description(answer) or response.status_code}",
            http_status=response.status_code,
            vendor_code=str(answer.get("error", "")),
        )

    # -- calls -------------------------------------------------------------------------------

    async def _batch_recall(
        self, call: Call, headers: dict[str, str], generation: int
    ) -> list[ItemOutcome]:
        body = {"msgs": [_recall_fields(item) for item in call.items]}
        response = await self.request(
            "POST",
            self.url(f"{self._prefix}/messages/batch_recall"),
            content=orjson.dumps(body),
            headers=headers,
        )
        answer = json_body(response)
        if entries(answer):
            # Per-message results, whatever the HTTP status: the documented failure answer is
            # `{"msgs":[{"msg_id", "recalled": "not_found msg"}]}` (seed 000).
            return per_message(call, response, answer)
        if response.status_code in (404, 405) and not is_easemob_error(answer):
            # Clusters without batch_recall: send one msg_recall per message from now on.
            self._batch = False
            text = "batch_recall is not available here; recalling one message per call"
            if len(call.items) == 1:
                # Nothing to split: the same call goes again, now as a msg_recall. A transient
                # code, so that a run ending before it does leaves it to --resume.
                raise TransientCallError(
                    ErrorCode.VENDOR_UNAVAILABLE,
                    text,
                    http_status=response.status_code,
                    vendor_code=str(answer.get("error", "")),
                    retry_after=0.0,
                )
            raise SplitCallError(ErrorCode.BATCH_REJECTED, text, http_status=response.status_code)
        if response.status_code != 200:
            if answer.get("error") == "message_recall_error" and len(call.items) > 1:
                # One message refused the whole batch: one call each finds which (vendors.md §1.5).
                raise SplitCallError(
                    ErrorCode.BATCH_REJECTED,
                    description(answer),
                    http_status=response.status_code,
                    vendor_code="message_recall_error",
                )
            if len(call.items) == 1:
                return refused_message(response, answer, generation, self._wall_clock())
            raise_for_status(response, answer, generation, self._wall_clock(), len(call.items))
        return per_message(call, response, answer)

    async def _single_recall(
        self, call: Call, headers: dict[str, str], generation: int
    ) -> list[ItemOutcome]:
        (item,) = call.items
        response = await self.request(
            "POST",
            self.url(f"{self._prefix}/messages/msg_recall"),
            content=orjson.dumps(_recall_fields(item)),
            headers=headers,
        )
        answer = json_body(response)
        if response.status_code != 200 and not entries(answer):
            return refused_message(response, answer, generation, self._wall_clock())
        return per_message(call, response, answer)

    async def _delete_conversation(
        self, call: Call, headers: dict[str, str], generation: int
    ) -> list[ItemOutcome]:
        (item,) = call.items
        params = item.params
        username = quote(str(params["username"]), safe="")
        body = {
            "channel": params["channel"],
            "type": params["type"],
            "delete_roam": params["delete_roam"],
        }
        # httpx sends a DELETE body only through request(..., content=...).
        response = await self.request(
            "DELETE",
            self.url(f"{self._prefix}/users/{username}/user_channel"),
            content=orjson.dumps(body),
            headers=headers,
        )
        answer = json_body(response)
        if response.status_code == 404 and answer.get("error") == "service_resource_not_found":
            return [refusal_outcome(Status.NOT_FOUND, ErrorCode.NOT_FOUND, response, answer)]
        if response.status_code == 429 and answer.get("error") == "reach_limit":
            self._user_refused(username, response, answer)
        self._user_refusals.pop(username, None)
        if response.status_code != 200:
            raise_for_status(response, answer, generation, self._wall_clock())
        data = answer.get("data")
        result = data.get("result") if isinstance(data, dict) else None
        if result == "ok":
            return [ItemOutcome(status=Status.OK, http_status=200)]
        # Undocumented (a failure answers an error status instead): not done, and not the
        # vendor's verdict either; --resume sends it again.
        return [
            ItemOutcome(
                status=Status.UNKNOWN,
                error=ErrorCode.VENDOR_ERROR,
                message=f"unconfirmed answer: data.result={result!r}",
                http_status=200,
            )
        ]


def _recall_fields(item: Item) -> dict[str, Any]:
    params = item.params
    fields: dict[str, Any] = {
        "msg_id": params["msg_id"],
        "to": params["to"],
        "chat_type": params["chat_type"],
        # Always explicit: the newest page marks `force` required (vendors.md §1.4).
        "force": bool(params.get("force", False)),
    }
    for optional in ("from", "sync_device"):
        if optional in params:
            fields[optional] = params[optional]
    return fields
