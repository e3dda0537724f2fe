"""Easemob (环信) REST emulator: app tokens, message recall (single and batch), user_channel.

Sources: vendors.md §1 and the seed pages 000 (recall, `force`) and 002 (user_channel errors).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

from starlette.routing import Route

from batchrecall.emulators.agora_token import PREFIX as AGORA_TOKEN_PREFIX
from batchrecall.emulators.common import DEFAULT_SETTINGS, Clock, EmulatorSettings
from batchrecall.emulators.easemob_state import (
    CHANNEL_TYPES,
    CHAT_TYPES,
    DEFAULT_APP,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_ORG,
    DEFAULT_TOKEN_TTL_S,
    EXCEEDED,
    NO_RECIPIENT,
    RECALLED,
    TOKEN_PREFIX,
    EasemobState,
    RateApi,
)
from batchrecall.emulators.faults import Fault, FaultKind
from batchrecall.emulators.wire import (
    Answer,
    Incoming,
    Reject,
    VendorEmulator,
    retry_after_header,
)

BATCH_LIMIT = 30  # message_recall_batch.md: "每次最多可撤回 30 条消息"

# The `exception` field of the error envelope. Only forbidden_op's (seed 000) and the 401 one
# (vendors.md §1.2) are documented; the others are plausible class names (inferred).
_EXCEPTIONS = {
    "forbidden_op": "EasemobForbiddenOpException",
    "unauthorized": "org.apache.usergrid.rest.exceptions.SecurityException",
    "auth_bad_access_token": "org.apache.usergrid.rest.exceptions.SecurityException",
    "illegal_argument": "java.lang.IllegalArgumentException",
    "reach_limit": "EasemobTooManyRequestsException",
    "resource_limited": "EasemobResourceLimitedException",
}
_DEFAULT_EXCEPTION = "EasemobException"

_EXPIRED = "Unable to authenticate due to expired access token"  # error.md: expired or missing
_CORRUPT = "Unable to authenticate due to corrupt access token"  # error.md: malformed
_UNKNOWN_TOKEN = "Unable to authenticate"  # error.md: well-formed, not issued here
_INVALID_BODY = "Request body is invalid. Please check body is correct."  # seed 002
_REACH_LIMIT = "This request has reached api limit"  # error.md 429 reach_limit
_COMMUNITY_LIMIT = (  # error.md 429 resource_limited
    "You have exceeded the limit of the community edition, Please upgrade to the enterprise edition"
)
# Agora Chat's wording where it differs from Easemob's (vendors.md §1.3, §1.6).
_AGORA_WORDS = {
    NO_RECIPIENT: "can't find message to",
    EXCEEDED: "exceed call time limit",
    _REACH_LIMIT: "This request has reached API limit.",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class _RecallRequest:
    msg_id: str
    to: str
    chat_type: str
    sender: str
    force: bool


class EasemobEmulator(VendorEmulator):
    """One Easemob org/app over HTTP, with the paths at the app's root."""

    vendor = "easemob"
    random_faults: ClassVar[tuple[FaultKind, ...]] = ("http_500", "http_503")

    def __init__(
        self,
        settings: EmulatorSettings = DEFAULT_SETTINGS,
        *,
        clock: Clock = time.time,
        org_name: str = DEFAULT_ORG,
        app_name: str = DEFAULT_APP,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        token_ttl_s: float = DEFAULT_TOKEN_TTL_S,
    ) -> None:
        self.state = EasemobState(
            settings,
            clock=clock,
            org_name=org_name,
            app_name=app_name,
            client_id=client_id,
            client_secret=client_secret,
            token_ttl_s=token_ttl_s,
        )
        super().__init__(settings, clock)

    def _routes(self) -> list[Route]:
        base = "/{org}/{app}"
        return [
            self._route(f"{base}/token", "POST", self._token, lambda _: ()),
            self._route(f"{base}/messages/msg_recall", "POST", self._msg_recall, _single_ids),
            self._route(f"{base}/messages/batch_recall", "POST", self._batch_recall, _batch_ids),
            self._route(
                f"{base}/users/{{username}}/user_channel", "DELETE", self._user_channel, _channel
            ),
            self._route(f"{base}/chatmessages/{{time}}", "GET", self._export, lambda _: ()),
            self._route(f"{base}/_export/{{time}}.gz", "GET", self._download, lambda _: ()),
        ]

    def _export(self, incoming: Incoming) -> Answer:
        """The hour's export link (message_historical.md), or why there is none."""
        self._check_app(incoming)
        self._authorize(incoming)
        if not self.state.admit_export():
            raise self._reject(429, "reach_limit", self._say(_REACH_LIMIT))
        hour = incoming.path_params["time"]
        now = self.clock()
        refusal = self.state.export.refusal(hour, now)
        if refusal is not None:
            raise self._reject(*refusal)
        base = incoming.url.split("/chatmessages/", 1)[0]
        url = f"{base}/_export/{hour}.gz?{self.state.export.link_query(hour, now)}"
        return self._success(incoming, "/chatmessages", "get", [{"url": url}])

    def _download(self, incoming: Incoming) -> Answer:
        """The file behind a link: no app token (the storage's signed link only)."""
        hour = incoming.path_params["time"]
        content = self.state.export.file(hour, dict(incoming.query), self.clock())
        if content is None:
            return Answer(status=403, body="AccessDenied: the link is invalid or expired")
        return Answer(status=200, body=content)

    # Route handlers.

    def _token(self, incoming: Incoming) -> Answer:
        self._check_app(incoming)
        if not self.state.admit_token_request():
            raise self._reject(429, "reach_limit", self._say(_REACH_LIMIT))
        body = self._object_body(incoming)
        grant_type = body.get("grant_type")
        if grant_type in (None, ""):
            # Inferred wording, patterned on the documented "client_id must be provided.".
            raise self._reject(400, "illegal_argument", "grant_type must be provided.")
        if grant_type != "client_credentials":
            # Inferred: the OAuth 2 error for any other grant type.
            raise self._reject(400, "unsupported_grant_type", f"unsupported grant: {grant_type}")
        client_id = _text(body.get("client_id"))
        if not client_id:
            raise self._reject(400, "illegal_argument", "client_id must be provided.")
        client_secret = _text(body.get("client_secret"))
        if not client_secret:
            raise self._reject(400, "illegal_argument", "client_secret must be provided")
        ttl = body.get("ttl")
        if ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 0):
            # Inferred: the doc only says ttl is seconds and 0 means never expires.
            raise self._reject(400, "illegal_argument", "ttl must be a non-negative integer")
        mismatch = self.state.credentials_error(client_id, client_secret)
        if mismatch is not None:
            raise self._reject(400, "invalid_grant", mismatch)
        token, lifetime = self.state.issue_token(None if ttl is None else float(ttl))
        body_out = {
            "access_token": token,
            "expires_in": int(lifetime),
            "application": self.state.application,
        }
        return Answer(status=200, body=body_out)

    def _msg_recall(self, incoming: Incoming) -> Answer:
        self._gate(incoming, "msg_recall")
        request = self._recall_request(incoming.body)
        outcome = self._recall(request)
        if outcome == RECALLED:
            return self._success(incoming, "/messages/msg_recall", "post", _recall_data(request))
        status = _refusal_status([outcome])
        if self.state.recall_failure_shape == "msgs":
            return self._per_message_refusal(status, [(request, outcome)])
        raise self._reject(status, "message_recall_error", self._say(outcome))

    def _batch_recall(self, incoming: Incoming) -> Answer:
        if not self.state.batch_recall_enabled:
            # Inferred: a cluster without batch_recall answers as for any unknown resource.
            raise self._reject(404, "service_resource_not_found", "Service resource not found")
        self._gate(incoming, "batch_recall")
        msgs = self._object_body(incoming).get("msgs")
        if not isinstance(msgs, list) or not msgs:
            # Inferred wording, patterned on the single-recall "param ... can't be empty".
            raise self._reject(400, "message_recall_error", "param msgs can't be empty")
        if len(msgs) > BATCH_LIMIT:
            # Inferred body: the doc states the limit of 30 but not the answer past it.
            raise self._reject(400, "message_recall_error", "msgs size can not greater than 30")
        requests = [self._recall_request(item) for item in msgs]
        if self.state.batch_refusal == "whole_call" and self.state.recall_failure_shape != "msgs":
            verdicts = [self._recall(request, apply=False) for request in requests]
            refused = [outcome for outcome in verdicts if outcome != RECALLED]
            if refused:
                # The batch page's errors are the single recall's table: one error for the call.
                raise self._reject(
                    _refusal_status(refused[:1]), "message_recall_error", self._say(refused[0])
                )
        outcomes = [(request, self._recall(request)) for request in requests]
        refused = [outcome for _, outcome in outcomes if outcome != RECALLED]
        if refused and self.state.recall_failure_shape == "msgs":
            return self._per_message_refusal(_refusal_status(refused), outcomes)
        data = [_recall_data(request, self._say(outcome)) for request, outcome in outcomes]
        return self._success(incoming, "/messages/batch_recall", "post", data)

    def _per_message_refusal(
        self, status: int, outcomes: list[tuple[_RecallRequest, str]]
    ) -> Answer:
        """Seed 000's failure body: each message's `recalled`, whatever happened to it."""
        msgs = [
            {"msg_id": request.msg_id, "recalled": self._say(outcome)}
            for request, outcome in outcomes
        ]
        return Answer(status=status, body={"msgs": msgs}, code="msgs")

    def _say(self, text: str) -> str:
        """The text in the vendor's own words (Agora Chat's differ from Easemob's)."""
        return _AGORA_WORDS.get(text, text) if self.state.wording == "agora" else text

    def _user_channel(self, incoming: Incoming) -> Answer:
        self._gate(incoming, "user_channel")
        body = self._object_body(incoming)
        channel = self._field_text(body, "channel", "field channel cannot be null or empty")
        kind = self._field_text(body, "type", "field type cannot be null or empty")
        if kind not in CHANNEL_TYPES:
            # Inferred wording: the doc allows chat and groupchat only.
            raise self._reject(400, "illegal_argument", "field type must be chat or groupchat")
        delete_roam = body.get("delete_roam")
        if delete_roam is None:
            raise self._reject(400, "illegal_argument", "field delete_roam cannot be null")
        if not isinstance(delete_roam, bool):
            raise self._reject(400, "invalid_request_body", _INVALID_BODY)
        username = incoming.path_params["username"]
        if not self.state.admit_user_channel(username):
            raise self._reject(429, "reach_limit", self._say(_REACH_LIMIT))
        if not self.state.delete_conversation(username, channel, kind, delete_roam=delete_roam):
            # Inferred from error.md's generic 404 for a resource that does not exist.
            raise self._reject(404, "service_resource_not_found", "Service resource not found")
        data = {"result": "ok"}
        return self._success(incoming, "/users/user_channel", "delete", data, entities=True)

    # Checks shared by the routes.

    def _gate(self, incoming: Incoming, api: RateApi) -> None:
        """App, token, plan quota and rate checks, in that order; recall routes also need the
        recall service."""
        self._check_app(incoming)
        self._authorize(incoming)
        if self.state.quota_exhausted:
            raise self._reject(429, "resource_limited", _COMMUNITY_LIMIT)
        if not self.state.admit(api):
            raise self._reject(429, "reach_limit", self._say(_REACH_LIMIT))
        if api != "user_channel" and not self.state.recall_service_enabled:
            raise self._reject(403, "forbidden_op", "message recall service is unopened")

    def _check_app(self, incoming: Incoming) -> None:
        org, app = incoming.path_params["org"], incoming.path_params["app"]
        if (org, app) != (self.state.org_name, self.state.app_name):
            # Inferred description; the error code is documented (vendors.md §1.2).
            description = f"Could not find application for {org}/{app} from URI: {incoming.path}"
            raise self._reject(404, "organization_application_not_found", description)

    def _authorize(self, incoming: Incoming) -> None:
        header = incoming.headers.get("authorization")
        if not header:
            raise self._reject(401, "unauthorized", _EXPIRED)
        scheme, _, token = header.partition(" ")
        agora = token.startswith(AGORA_TOKEN_PREFIX) and self.state.agora_app_id is not None
        if scheme != "Bearer" or not (token.startswith(TOKEN_PREFIX) or agora):
            raise self._reject(401, "auth_bad_access_token", _CORRUPT)
        status = self.state.token_status(token)
        if status == "expired":
            raise self._reject(401, "unauthorized", _EXPIRED)
        if status == "unknown":
            raise self._reject(401, "auth_bad_access_token", _UNKNOWN_TOKEN)

    def _recall_request(self, item: Any) -> _RecallRequest:
        """One message to recall, checked as the single-recall doc's error table says."""
        if not isinstance(item, dict):
            raise self._reject(400, "invalid_request_body", _INVALID_BODY)
        for name in ("msg_id", "to", "chat_type", "force"):
            if item.get(name) is None or item.get(name) == "":
                raise self._reject(400, "message_recall_error", f"param {name} can't be empty")
        msg_id, to, chat_type, force = item["msg_id"], item["to"], item["chat_type"], item["force"]
        sender = item.get("from", "admin")  # the doc: `from` defaults to admin
        # Inferred: a wrongly typed field (an id sent as a number) fails to deserialize.
        texts_ok = all(isinstance(value, str) for value in (msg_id, to, chat_type, sender))
        sync_ok = isinstance(item.get("sync_device", True), bool)
        if not texts_ok or not isinstance(force, bool) or not sync_ok:
            raise self._reject(400, "invalid_request_body", _INVALID_BODY)
        if chat_type not in CHAT_TYPES:  # inferred wording: the doc lists the three types
            raise self._reject(400, "message_recall_error", "param chat_type is illegal")
        return _RecallRequest(msg_id=msg_id, to=to, chat_type=chat_type, sender=sender, force=force)

    def _recall(self, request: _RecallRequest, *, apply: bool = True) -> str:
        return self.state.recall(
            request.msg_id,
            to=request.to,
            chat_type=request.chat_type,
            force=request.force,
            apply=apply,
        )

    def _object_body(self, incoming: Incoming) -> dict[str, Any]:
        if not incoming.json_ok or not isinstance(incoming.body, dict):
            raise self._reject(400, "invalid_request_body", _INVALID_BODY)
        return incoming.body

    def _field_text(self, body: dict[str, Any], name: str, empty_description: str) -> str:
        value = body.get(name)
        if value is None or value == "":
            raise self._reject(400, "illegal_argument", empty_description)
        if not isinstance(value, str):
            raise self._reject(400, "invalid_request_body", _INVALID_BODY)
        return value

    # Bodies.

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _error(
        self, status: int, error: str, description: str, headers: dict[str, str] | None = None
    ) -> Answer:
        body = {
            "error": error,
            "exception": _EXCEPTIONS.get(error, _DEFAULT_EXCEPTION),
            "timestamp": self._now_ms(),
            "duration": 0,
            "error_description": description,
        }
        return Answer(status=status, body=body, code=error, headers=headers or {})

    def _reject(self, status: int, error: str, description: str) -> Reject:
        return Reject(self._error(status, error, description))

    def _success(
        self, incoming: Incoming, path: str, action: str, data: Any, *, entities: bool = False
    ) -> Answer:
        """The documented success envelope (message_recall_single.md, seed 002)."""
        body: dict[str, Any] = {
            "path": path,
            "uri": incoming.url,
            "timestamp": self._now_ms(),
            "organization": self.state.org_name,
            "application": self.state.application,
            "action": action,
        }
        if entities:
            body["entities"] = []
        body |= {"data": data, "duration": 0, "applicationName": self.state.app_name}
        return Answer(status=200, body=body)

    def _fault_answer(self, fault: Fault) -> Answer:
        if fault.kind in ("http_500", "code_500"):
            return self._error(500, "internal_error", "internal error")  # error table: 500
        if fault.kind == "http_502":
            return Answer(status=502, body="Bad Gateway")  # inferred: a proxy's plain answer
        if fault.kind == "http_503":
            return self._error(503, "service_unavailable", "Service Unavailable")  # inferred
        return self._error(429, "reach_limit", self._say(_REACH_LIMIT), retry_after_header(fault))


def _refusal_status(refused: list[str]) -> int:
    """The error table's status: 400 for a recipient not found, 403 for the others."""
    return 400 if all(outcome == NO_RECIPIENT for outcome in refused) else 403


def _recall_data(request: _RecallRequest, outcome: str = RECALLED) -> dict[str, str]:
    """One message's result; the response says `chattype` where the request said `chat_type`."""
    return {
        "recalled": outcome,
        "chattype": request.chat_type,
        "from": request.sender,
        "to": request.to,
        "msg_id": request.msg_id,
    }


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _single_ids(incoming: Incoming) -> tuple[str, ...]:
    body = incoming.body
    msg_id = body.get("msg_id") if isinstance(body, dict) else None
    return (msg_id,) if isinstance(msg_id, str) else ()


def _batch_ids(incoming: Incoming) -> tuple[str, ...]:
    body = incoming.body
    msgs = body.get("msgs") if isinstance(body, dict) else None
    if not isinstance(msgs, list):
        return ()
    ids = (item.get("msg_id") for item in msgs if isinstance(item, dict))
    return tuple(msg_id for msg_id in ids if isinstance(msg_id, str))


def _channel(incoming: Incoming) -> tuple[str, ...]:
    body = incoming.body
    channel = body.get("channel") if isinstance(body, dict) else None
    username = incoming.path_params.get("username", "")
    return (f"{username}/{channel}",) if isinstance(channel, str) else ()
