"""RongCloud's request signature (research/vendors-tencent-rongcloud.md §R1).

`Signature` = SHA1 of App Secret + Nonce + Timestamp, the three strings joined in that order, as
lower-case hex (the official Go SDK's `%x`). The signature page says Timestamp is in
milliseconds; every official server SDK (Java, Go, Python, 2020 to 2026) sends seconds, so
seconds are the default and "ms" a lane option (`timestamp_unit`).
"""

from __future__ import annotations

import hashlib
import secrets

NONCE_MAX = 18  # the newer signature page: Nonce "不超过 18 个字符"
TIMESTAMP_UNITS = ("s", "ms")


def signature(app_secret: str, nonce: str, timestamp: str) -> str:
    """sha1(App Secret + Nonce + Timestamp), lower-case hex."""
    text = app_secret + nonce + timestamp
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def timestamp(now_s: float, unit: str) -> str:
    """The `Timestamp` header for the wall time `now_s`, in `unit` ("s" or "ms")."""
    if unit not in TIMESTAMP_UNITS:
        raise ValueError(f"timestamp unit must be one of {TIMESTAMP_UNITS}, not {unit!r}")
    return str(int(now_s * 1000) if unit == "ms" else int(now_s))


def new_nonce() -> str:
    """A random number of at most 18 digits (the page calls Nonce "随机数", a random number)."""
    return str(secrets.randbelow(10**NONCE_MAX))


def signed_headers(app_key: str, app_secret: str, *, nonce: str, timestamp: str) -> dict[str, str]:
    """The four signature headers of one request."""
    return {
        "App-Key": app_key,
        "Nonce": nonce,
        "Timestamp": timestamp,
        "Signature": signature(app_secret, nonce, timestamp),
    }
