"""Secret values known to this process, and the redaction applied to everything printed."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

MASK = "***"
_MIN_LENGTH = 4
_secrets: set[str] = set()


def register_secret(value: str) -> None:
    """Remember a credential or token so that no output ever shows it."""
    if len(value) >= _MIN_LENGTH:
        _secrets.add(value)


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact(str(value))


def redact_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask every known secret in every field of every event."""
    for key, value in list(event_dict.items()):
        event_dict[key] = _redact_value(value)
    return event_dict
