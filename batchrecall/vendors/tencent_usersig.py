"""Tencent Cloud IM UserSig (TLSSigAPIv2), built here from the app's secret key.

As the vendor's Python reference builds it (tencentyun/tls-sig-api-v2-python `TLSSigAPIv2.py`,
research/vendors-tencent-rongcloud.md §T2.2): HMAC-SHA256 over the identifier, SDKAppID, issue
time and lifetime, each on a line of its own; the signature and those fields in a JSON document,
zlib-compressed, then base64 with `+/=` written as `*-_`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import zlib

_URL_SAFE = str.maketrans("+/=", "*-_")


def signed_content(identifier: str, sdkappid: int, issued_at: int, expire_s: int) -> str:
    """The text the signature covers: fields in this order, each line ending in a newline."""
    return (
        f"TLS.identifier:{identifier}\n"
        f"TLS.sdkappid:{sdkappid}\n"
        f"TLS.time:{issued_at}\n"
        f"TLS.expire:{expire_s}\n"
    )


def signature(secret_key: str, content: str) -> str:
    """`TLS.sig`: standard base64 of HMAC-SHA256(secret_key, content)."""
    digest = hmac.new(secret_key.encode(), content.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def build_usersig(
    *, sdkappid: int, identifier: str, secret_key: str, issued_at: int, expire_s: int
) -> str:
    """A UserSig for `identifier`, valid `expire_s` seconds from `issued_at` (Unix seconds)."""
    content = signed_content(identifier, sdkappid, issued_at, expire_s)
    document = {
        "TLS.ver": "2.0",
        "TLS.identifier": identifier,
        "TLS.sdkappid": sdkappid,
        "TLS.expire": expire_s,
        "TLS.time": issued_at,
        "TLS.sig": signature(secret_key, content),
    }
    # json.dumps with its default separators, as the reference serialises it.
    compressed = zlib.compress(json.dumps(document).encode())
    return base64.b64encode(compressed).decode().translate(_URL_SAFE)
