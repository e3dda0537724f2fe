"""RongCloud (融云) emulator: recall one message, clean a conversation's history.

Sources: research/vendors-tencent-rongcloud.md Part R. Requests are form-encoded POSTs signed
with `App-Key`, `Nonce`, `Timestamp`, `Signature` (or their `RC-` forms, §R1.1); answers are
JSON `{"code": 200}` on success, else `{"code", "errorMessage"}` with the HTTP status the
status-code table gives the code (§R4).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import ClassVar
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchrecall.emulators.common import DEFAULT_SETTINGS, Clock, EmulatorSettings
from batchrecall.emulators.faults import Fault, FaultKind
from batchrecall.emulators.rongcloud_export import RongCloudExport
from batchrecall.emulators.rongcloud_state import (
    BAD_PARAMETER,
    BAD_SIGNATURE,
    DEFAULT_APP_KEY,
    DEFAULT_APP_SECRET,
    HTTP_STATUS,
    NO_POST_DATA,
    NOT_ENABLED,
    OK,
    SERVER_ERROR,
    THROTTLED,
    TOO_LONG,
    WORDS,
    RongCloudState,
)
from batchrecall.emulators.wire import Answer, Incoming, Reject, VendorEmulator, retry_after_header

RECALL_TYPES = ("1", "3", "4", "6", "10")  # §R2
CLEAN_TYPES = ("1", "3", "4", "6")  # §R3 (Go SDK)
FORM = "application/x-www-form-urlencoded"
EXTRA_MAX = 1024  # inferred: the documents give no length for `extra`
_AUTH_HEADERS = ("App-Key", "Nonce", "Timestamp", "Signature")
_RECALL_PARAMS = frozenset(
    {
        "fromUserId",
        "conversationType",
        "targetId",
        "busChannel",
        "messageUID",
        "sentTime",
        "isAdmin",
        "isDelete",
        "extra",
        "disablePush",
        "disableUpdateLastMsg",
    }
)
_CLEAN_PARAMS = frozenset({"conversationType", "fromUserId", "targetId", "msgTimestamp"})

Form = Mapping[str, str]
FormHandler = Callable[[Incoming, Form], Answer]


class RongCloudEmulator(VendorEmulator):
    """One RongCloud app over HTTP, serving its paths (`/message/recall.json`, ...) at its root."""

    vendor = "rongcloud"
    random_faults: ClassVar[tuple[FaultKind, ...]] = ("http_500", "http_502")

    def __init__(
        self,
        settings: EmulatorSettings = DEFAULT_SETTINGS,
        *,
        clock: Clock = time.time,
        app_key: str = DEFAULT_APP_KEY,
        app_secret: str = DEFAULT_APP_SECRET,
    ) -> None:
        self.state = RongCloudState(settings, clock=clock, app_key=app_key, app_secret=app_secret)
        self.export = RongCloudExport(self)
        super().__init__(settings, clock)

    def _routes(self) -> list[Route]:
        return [
            *self.export.routes(self._form_route, self._route),
            self._form_route("/message/recall.json", self._recall, "messageUID"),
            self._form_route("/conversation/message/history/clean.json", self._clean, "targetId"),
        ]

    def _form_route(self, path: str, handler: FormHandler, item_field: str) -> Route:
        """A POST route whose handler reads the form body (the shared wire reads JSON)."""

        async def endpoint(request: Request) -> Response:
            form = _form(await request.body(), request.headers.get("content-type", ""))
            return await self._exchange(
                request,
                lambda incoming: handler(incoming, form or {}),
                lambda incoming: (form.get(item_field, ""),) if form else (),
            )

        return Route(path, endpoint, methods=["POST"])

    # Route handlers.

    def _recall(self, incoming: Incoming, form: Form) -> Answer:
        """撤回消息: one message a call (§R2)."""
        self._gate(incoming, form)
        _known(form, _RECALL_PARAMS)
        for name in ("fromUserId", "conversationType", "targetId", "messageUID", "sentTime"):
            _required(form, name)
        kind = _choice(form, "conversationType", RECALL_TYPES)
        _digits(form, "sentTime")
        for name in ("isAdmin", "isDelete"):
            _choice(form, name, ("0", "1"), "0")
        _choice(form, "disablePush", ("true", "false"), "false")
        _choice(form, "disableUpdateLastMsg", ("true", "false"), "false")
        if len(form.get("extra", "")) > EXTRA_MAX:
            raise _reject(TOO_LONG, f"extra: at most {EXTRA_MAX} characters")
        code, words = self.state.recall(
            form["messageUID"],
            sender=form["fromUserId"],
            conversation_type=int(kind),
            target_id=form["targetId"],
            bus_channel=form.get("busChannel") or None,
            is_delete=form.get("isDelete") == "1",
        )
        return _answer(code, words)

    def _clean(self, incoming: Incoming, form: Form) -> Answer:
        """Clean a conversation's history, all of it or before `msgTimestamp` (§R3)."""
        self._gate(incoming, form)
        _known(form, _CLEAN_PARAMS)
        for name in ("conversationType", "fromUserId", "targetId"):
            _required(form, name)
        kind = _choice(form, "conversationType", CLEAN_TYPES)
        before = int(_digits(form, "msgTimestamp")) if "msgTimestamp" in form else None
        code, words = self.state.clean_history(
            form["fromUserId"], int(kind), form["targetId"], before
        )
        return _answer(code, words)

    # Checks shared by the routes.

    def _gate(self, incoming: Incoming, form: Form | None) -> None:
        """The signature (401 / 1004), the service (430 / 1009), the rate (429 / 1008), then a
        form body to read (400 / 1003)."""
        values = []
        for name in _AUTH_HEADERS:
            value = incoming.headers.get(name) or incoming.headers.get(f"RC-{name}")
            if not value:
                raise _reject(BAD_SIGNATURE, f"{name} header required")
            values.append(value)
        refusal = self.state.authenticate(*values)
        if refusal is not None:
            raise _reject(*refusal)
        if not self.state.recall_enabled:
            raise _reject(NOT_ENABLED, WORDS[NOT_ENABLED])
        if not self.state.admit():
            raise _reject(THROTTLED, WORDS[THROTTLED])
        if not form:
            raise _reject(NO_POST_DATA, WORDS[NO_POST_DATA])

    def _fault_answer(self, fault: Fault) -> Answer:
        if fault.kind == "throttle":
            return _answer(THROTTLED, WORDS[THROTTLED], headers=retry_after_header(fault))
        if fault.kind in ("http_500", "code_500"):
            return _answer(SERVER_ERROR, WORDS[SERVER_ERROR])
        status = int(fault.kind.removeprefix("http_"))
        reasons = {502: "Bad Gateway", 503: "Service Unavailable"}
        return Answer(status=status, body=reasons[status])


def _form(raw: bytes, content_type: str) -> dict[str, str] | None:
    """The form fields of a form-encoded body; None for any other body."""
    if not raw or content_type.split(";")[0].strip().lower() != FORM:
        return None
    try:
        return dict(parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=True))
    except (UnicodeDecodeError, ValueError):
        return None


def _answer(code: int, words: str = "", *, headers: Mapping[str, str] | None = None) -> Answer:
    """The code's HTTP status and body: `{"code": 200}` on success (§R2)."""
    body: dict[str, object] = {"code": code}
    if code != OK:
        body["errorMessage"] = words
    return Answer(status=HTTP_STATUS[code], body=body, code=code, headers=headers or {})


def _reject(code: int, words: str) -> Reject:
    return Reject(_answer(code, words))


def _known(form: Form, known: frozenset[str]) -> None:
    """A parameter the API does not take is refused: the emulator sees what was sent."""
    unknown = sorted(name for name in form if name not in known)
    if unknown:
        raise _reject(BAD_PARAMETER, f"unknown parameter: {', '.join(unknown)}")


def _required(form: Form, name: str) -> str:
    value = form.get(name, "")
    if not value:
        # The Java SDK's wording for a missing parameter (§R2): "{{name}} 参数为必传项".
        raise _reject(BAD_PARAMETER, f"{name} 参数为必传项")
    return value


def _choice(form: Form, name: str, allowed: tuple[str, ...], default: str | None = None) -> str:
    value = form.get(name, default)
    if value is None or value not in allowed:
        raise _reject(BAD_PARAMETER, f"{name}: one of {', '.join(allowed)} expected")
    return value


def _digits(form: Form, name: str) -> str:
    value = form.get(name, "")
    if not (value.isascii() and value.isdigit()):
        raise _reject(BAD_PARAMETER, f"{name}: a time in ms expected")
    return value
