"""Agora Chat app tokens, built locally from the App ID and App Certificate (AccessToken2).

Agora Chat's REST API takes only app tokens, and there is no endpoint that issues one: the
server builds it (vendors.md §1.12). The format is Agora's AccessToken2, version "007", as its
published reference builders (AgoraIO/Tools, DynamicKey/AgoraDynamicKey) write it:

    "007" + base64(zlib(string(signature) + info))
    info      = string(app_id) + u32(issued_at) + u32(expire) + u32(salt) + u16(1) + service
    service   = u16(5: chat) + u16(1) + u16(2: app privilege) + u32(expire) + string("")
    signature = HMAC-SHA256(key, info), key = HMAC-SHA256(u32(salt), HMAC-SHA256(u32(issued_at),
                app_certificate))

Integers are little-endian; a string is its u16 length and its bytes. `expire` (token and
privilege alike) is seconds from `issued_at`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
import zlib

VERSION = "007"
SERVICE_CHAT = 5
PRIVILEGE_CHAT_APP = 2
# Agora Chat: an app token is valid for at most 24 hours (vendors.md §1.12).
MAX_LIFETIME_S = 24 * 3600
MAX_SALT = 99_999_999  # the reference builders draw the salt from 1 .. 99999999

_HEX32 = re.compile(r"[0-9A-Fa-f]{32}")


def is_agora_key(text: str) -> bool:
    """App IDs and App Certificates are 32 hex digits (the reference builders refuse others)."""
    return _HEX32.fullmatch(text) is not None


def build_chat_app_token(
    app_id: str, app_certificate: str, *, issued_at: int, expire_s: int, salt: int
) -> str:
    """An AccessToken2 with the chat service's app privilege, valid `expire_s` from `issued_at`
    (epoch seconds)."""
    if not (is_agora_key(app_id) and is_agora_key(app_certificate)):
        raise ValueError("app_id and app_certificate must be 32 hex digits")
    if not 0 < expire_s <= MAX_LIFETIME_S:
        raise ValueError(f"expire_s must be 1 to {MAX_LIFETIME_S} seconds")
    if not 1 <= salt <= MAX_SALT:
        raise ValueError(f"salt must be 1 to {MAX_SALT}")
    chat = _u16(SERVICE_CHAT) + _u16(1) + _u16(PRIVILEGE_CHAT_APP) + _u32(expire_s) + _string(b"")
    info = (
        _string(app_id.encode())
        + _u32(issued_at)
        + _u32(expire_s)
        + _u32(salt)
        + _u16(1)  # one service
        + chat
    )
    key = _hmac(_u32(issued_at), app_certificate.encode())
    key = _hmac(_u32(salt), key)
    signature = _hmac(key, info)
    return VERSION + base64.b64encode(zlib.compress(_string(signature) + info)).decode()


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _u16(value: int) -> bytes:
    return struct.pack("<H", value)


def _u32(value: int) -> bytes:
    return struct.pack("<I", value)


def _string(value: bytes) -> bytes:
    return _u16(len(value)) + value
