"""Checking an Agora Chat app token (AccessToken2, "007") the way Agora's servers take it.

Written from Agora's published format (AgoraIO/Tools, DynamicKey/AgoraDynamicKey: the reference
builders and their parsers), apart from the adapter's builder: the token is "007" and the base64
of the zlib-compressed `string(signature) + info`; `info` holds the App ID, the issue time, the
lifetime, a salt and the services with their privileges; the signature is HMAC-SHA256 keyed by
HMAC-SHA256(u32 salt, HMAC-SHA256(u32 issue time, App Certificate)). Little-endian integers; a
string is a u16 length and its bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import zlib
from dataclasses import dataclass
from typing import Literal

PREFIX = "007"
_CHAT = 5  # the chat service
_CHAT_APP = 2  # its app privilege (1 is a user's)

TokenCheck = Literal["ok", "expired", "invalid"]


class _MalformedError(Exception):
    """The token does not parse as an AccessToken2 of the chat service."""


@dataclass(frozen=True, slots=True)
class ChatToken:
    """What a well-formed token says of itself (nothing checked yet)."""

    signature: bytes
    info: bytes
    app_id: str
    issued_at: int
    expire_s: int
    salt: int
    privileges: dict[int, dict[int, int]]
    """Per service type: privilege -> seconds from issue."""
    chat_user: str


def check_chat_app_token(
    token: str, *, app_id: str, app_certificate: str, now: float
) -> TokenCheck:
    """Whether `token` is an app token of this app for the chat service, valid at `now`."""
    try:
        parsed = parse(token)
    except _MalformedError:
        return "invalid"
    if parsed.app_id != app_id or not hmac.compare_digest(
        parsed.signature, _sign(parsed, app_certificate)
    ):
        return "invalid"
    chat = parsed.privileges.get(_CHAT, {})
    if _CHAT_APP not in chat or parsed.chat_user:
        return "invalid"  # a user token, or another service's: not for the REST API
    expires_at = parsed.issued_at + min(parsed.expire_s, chat[_CHAT_APP])
    return "ok" if now < expires_at else "expired"


def parse(token: str) -> ChatToken:
    """A chat-service AccessToken2 read field by field; raises on anything else."""
    if not token.startswith(PREFIX):
        raise _MalformedError
    try:
        raw = zlib.decompress(base64.b64decode(token[len(PREFIX) :], validate=True))
    except (binascii.Error, zlib.error, ValueError):
        raise _MalformedError from None
    reader = _Reader(raw)
    signature = reader.string()
    info = raw[reader.offset :]
    app_id = reader.string().decode("utf-8", errors="replace")
    issued_at, expire_s, salt = reader.u32(), reader.u32(), reader.u32()
    privileges: dict[int, dict[int, int]] = {}
    chat_user = ""
    for _ in range(reader.u16()):
        service = reader.u16()
        privileges[service] = {reader.u16(): reader.u32() for _ in range(reader.u16())}
        if service != _CHAT:
            raise _MalformedError  # another service's fields are not read here
        chat_user = reader.string().decode("utf-8", errors="replace")
    if reader.offset != len(raw):
        raise _MalformedError
    return ChatToken(
        signature=signature,
        info=info,
        app_id=app_id,
        issued_at=issued_at,
        expire_s=expire_s,
        salt=salt,
        privileges=privileges,
        chat_user=chat_user,
    )


def _sign(token: ChatToken, app_certificate: str) -> bytes:
    key = hmac.new(struct.pack("<I", token.issued_at), app_certificate.encode(), hashlib.sha256)
    key = hmac.new(struct.pack("<I", token.salt), key.digest(), hashlib.sha256)
    return hmac.new(key.digest(), token.info, hashlib.sha256).digest()


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def _take(self, size: int) -> bytes:
        if self.offset + size > len(self.data):
            raise _MalformedError
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def u16(self) -> int:
        value: int = struct.unpack("<H", self._take(2))[0]
        return value

    def u32(self) -> int:
        value: int = struct.unpack("<I", self._take(4))[0]
        return value

    def string(self) -> bytes:
        return self._take(self.u16())
