"""Checking a Tencent Cloud IM UserSig as the vendor's Go reference verifies one.

tencentyun/tls-sig-api-v2-golang `userSig.verify` (research/vendors-tencent-rongcloud.md §T2.3):
base64url-decode (`*-_` for `+/=`), inflate, parse the JSON; then, in this order, the SDKAppID,
the identifier, the expiry (`now > TLS.time + TLS.expire`) and the HMAC-SHA256 signature over
the same lines the builder signs. Written apart from the adapter's builder on purpose.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import zlib
from enum import Enum
from typing import Any, TypeGuard


class SigCheck(Enum):
    """The verdict, with the REST error code an emulator answers for it (inferred mapping)."""

    OK = 0
    UNDECODABLE = 70003
    SDKAPPID_MISMATCH = 70014
    IDENTIFIER_MISMATCH = 70013
    EXPIRED = 70001
    SIG_MISMATCH = 70009


def decode_usersig(usersig: str) -> dict[str, Any] | None:
    """The UserSig's JSON document, or None when it is not one."""
    text = usersig.replace("*", "+").replace("-", "/").replace("_", "=")
    try:
        raw = base64.b64decode(text, validate=True)
        document = json.loads(zlib.decompress(raw))
    except (binascii.Error, ValueError, zlib.error):
        return None
    return document if isinstance(document, dict) else None


def check_usersig(
    usersig: str, *, sdkappid: int, identifier: str, secret_key: str, now: float
) -> SigCheck:
    """Whether `usersig` lets `identifier` of app `sdkappid` in at `now` (Unix seconds)."""
    document = decode_usersig(usersig)
    if document is None:
        return SigCheck.UNDECODABLE
    signed_app, issued_at, expire, sig = (
        document.get(name) for name in ("TLS.sdkappid", "TLS.time", "TLS.expire", "TLS.sig")
    )
    if not (_is_int(signed_app) and _is_int(issued_at) and _is_int(expire)):
        return SigCheck.UNDECODABLE
    if not isinstance(sig, str):
        return SigCheck.UNDECODABLE
    if signed_app != sdkappid:
        return SigCheck.SDKAPPID_MISMATCH
    if document.get("TLS.identifier") != identifier:
        return SigCheck.IDENTIFIER_MISMATCH
    if now > issued_at + expire:
        return SigCheck.EXPIRED
    content = (
        f"TLS.identifier:{identifier}\nTLS.sdkappid:{sdkappid}\n"
        f"TLS.time:{issued_at}\nTLS.expire:{expire}\n"
    )
    if "TLS.userbuf" in document:
        content += f"TLS.userbuf:{document['TLS.userbuf']}\n"
    expected = hmac.new(secret_key.encode(), content.encode(), hashlib.sha256).digest()
    try:
        given = base64.b64decode(sig, validate=True)
    except (binascii.Error, ValueError):
        return SigCheck.SIG_MISMATCH
    return SigCheck.OK if hmac.compare_digest(given, expected) else SigCheck.SIG_MISMATCH


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
