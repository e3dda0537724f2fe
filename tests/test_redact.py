"""Redaction: registered secrets never reach printed text or log events."""

from __future__ import annotations

from typing import Any

import structlog
from structlog.testing import CapturingLogger

from batchrecall.redact import MASK, redact, redact_processor, register_secret


def test_registered_secret_is_masked_in_text() -> None:
    register_secret("tok-5b1e9a77")
    assert redact("Authorization: Bearer tok-5b1e9a77") == f"Authorization: Bearer {MASK}"
    assert redact("tok-5b1e9a77 and tok-5b1e9a77") == f"{MASK} and {MASK}"
    assert redact("nothing secret here") == "nothing secret here"


def test_longer_secret_wins_over_its_prefix() -> None:
    register_secret("pfx-8c2d")
    register_secret("pfx-8c2d-long-tail")
    assert redact("x pfx-8c2d-long-tail y") == f"x {MASK} y"
    assert "long-tail" not in redact("pfx-8c2d-long-tail")


def test_short_strings_are_not_registered() -> None:
    register_secret("q7z")
    register_secret("")
    assert redact("q7z in a sentence") == "q7z in a sentence"
    register_secret("q7zw")
    assert redact("q7zw") == MASK


def test_processor_masks_every_field_nested_or_not() -> None:
    register_secret("yx-secret-31f0")
    event: dict[str, Any] = {
        "event": "batchrecall.call_sent yx-secret-31f0",
        "url": "https://x/?k=yx-secret-31f0",
        "headers": {"CheckSum": "yx-secret-31f0", "nested": {"deep": ["a", "yx-secret-31f0"]}},
        "items": ("yx-secret-31f0", 3),
        "count": 3,
        "ratio": 0.5,
        "flag": True,
        "none": None,
        "error": ValueError("bad key yx-secret-31f0"),
    }
    out = redact_processor(None, "info", event)
    assert "yx-secret-31f0" not in repr(out)
    assert out["event"] == f"batchrecall.call_sent {MASK}"
    assert out["headers"] == {"CheckSum": MASK, "nested": {"deep": ["a", MASK]}}
    assert out["items"] == [MASK, 3]
    assert out["count"] == 3
    assert out["ratio"] == 0.5
    assert out["flag"] is True
    assert out["none"] is None
    assert out["error"] == f"bad key {MASK}"


def test_processor_in_a_structlog_chain() -> None:
    register_secret("em-token-aa91")
    sink = CapturingLogger()
    log = structlog.wrap_logger(sink, processors=[redact_processor])
    log.info("batchrecall.token", token="em-token-aa91", lane="easemob")
    (call,) = sink.calls
    assert call.method_name == "info"
    assert call.kwargs == {"event": "batchrecall.token", "token": MASK, "lane": "easemob"}
