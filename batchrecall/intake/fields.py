"""Typed access to one job row's fields, each check raising a RowError that names the field.

A row maps field names to values: JSON values for JSONL, strings for CSV. A field whose value is
JSON `null` or an empty CSV cell is absent. Ids are kept as the exact strings written; a JSON
integer is taken as its digits, a JSON float is refused (it may have lost digits). Booleans are
JSON true/false in JSONL (the string "true" is refused there), and true/false/1/0/yes/no in any
case in CSV.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

import orjson

MAX_TEXT = 1024
MAX_TIMESTAMPS = 10_000
_MAX_DIGITS = 32
_INT64_MAX = 2**63 - 1

_DIGITS = re.compile(r"[0-9]+")
# What a spreadsheet makes of a long number it stored as a float: 1.02844E+18, 1028442084.0
_FLOAT_TEXT = re.compile(r"[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?")
# What an id that goes into a URL must not hold (SPEC §2), as a regular expression's class.
URL_UNSAFE_CHARS = r"/\\%\s\x00-\x1f\x7f-\x9f"
_URL_UNSAFE = re.compile(f"[{URL_UNSAFE_CHARS}]")
APP_CHARS = "A-Za-z0-9_-"
APP_NAME = re.compile(f"[{APP_CHARS}]+")
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


class RowError(Exception):
    """A problem with one row: a sentence naming the field and how to fix it."""


def parse_json(text: str) -> Any:
    """Parse JSON with orjson, keeping integer literals beyond 64 bits exact.

    orjson turns such integers into floats (or fails on them past the double range), so those
    texts are parsed again with the standard library, which reads integer literals exactly.
    Raises ValueError (orjson.JSONDecodeError for malformed JSON) or RecursionError.
    """
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if "infinity" not in exc.msg:
            raise
        return json.loads(text, parse_float=_finite_float)
    if _holds_float(value):
        return json.loads(text, parse_float=_finite_float)
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _holds_float(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class RowFields:
    """A row's present fields. Getters without `optional_` raise when the field is missing."""

    def __init__(self, fields: Mapping[str, Any], *, from_csv: bool) -> None:
        self._fields = {name: value for name, value in fields.items() if value is not None}
        self._from_csv = from_csv

    @property
    def from_csv(self) -> bool:
        """Whether the row is a CSV record (its cells are strings)."""
        return self._from_csv

    def names(self) -> list[str]:
        return list(self._fields)

    def get(self, name: str) -> Any:
        return self._fields.get(name)

    def has(self, name: str) -> bool:
        return name in self._fields

    def _required(self, name: str) -> Any:
        if name not in self._fields:
            raise RowError(f"missing field {show(name)}")
        return self._fields[name]

    def text(self, name: str) -> str:
        return _as_text(name, self._required(name))

    def optional_text(self, name: str, *, max_len: int = MAX_TEXT) -> str | None:
        """Any string, the empty one too, up to `max_len` characters."""
        value = self.get(name)
        return None if value is None else _as_text(name, value, max_len)

    def ref(self) -> str:
        """`ref` is free text; a JSON number is taken as its text."""
        value = self.get("ref")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return self.optional_text("ref") or ""

    def ident(self, name: str) -> str:
        return _as_ident(name, self._required(name))

    def optional_ident(self, name: str) -> str | None:
        value = self.get(name)
        return None if value is None else _as_ident(name, value)

    def url_ident(self, name: str) -> str:
        """An id that goes into a URL path or query (SPEC §2 forbids what could escape it)."""
        value = self.ident(name)
        bad = _URL_UNSAFE.search(value)
        if bad:
            raise RowError(
                f"field {show(name)} must not contain {_describe_char(bad.group())}: it goes "
                f"into a URL (got {show(value)})"
            )
        if value in (".", ".."):
            raise RowError(f"field {show(name)} must not be '.' or '..': it goes into a URL path")
        return value

    def digits(self, name: str) -> str:
        """A numeric id (`msg_id`, `message_server_id`) of 1 to 32 ASCII digits."""
        value = self.ident(name)
        if _DIGITS.fullmatch(value) and len(value) <= _MAX_DIGITS:
            return value
        if _FLOAT_TEXT.fullmatch(value) and not _DIGITS.fullmatch(value):
            raise RowError(
                f"field {show(name)} was written as a float ({show(value)}) and may have "
                "lost digits; store the column as text"
            )
        raise RowError(f"field {show(name)} must be 1 to {_MAX_DIGITS} digits (got {show(value)})")

    def choice(self, name: str, options: tuple[str, ...]) -> str:
        value = self.text(name)
        if value not in options:
            raise RowError(
                f"field {show(name)} must be one of {', '.join(options)} (got {show(value)})"
            )
        return value

    def flag(self, name: str) -> bool:
        return self._as_flag(name, self._required(name))

    def optional_flag(self, name: str) -> bool | None:
        value = self.get(name)
        return None if value is None else self._as_flag(name, value)

    def _as_flag(self, name: str, value: Any) -> bool:
        """A boolean: JSON true/false; in CSV true/false/1/0/yes/no in any case."""
        if isinstance(value, bool):
            return value
        if self._from_csv and isinstance(value, str):
            if value.lower() in _TRUE:
                return True
            if value.lower() in _FALSE:
                return False
            raise RowError(f"field {show(name)} must be true/false/1/0/yes/no (got {show(value)})")
        raise RowError(f"field {show(name)} must be true or false (got {show(value)})")

    def small_int(self, name: str, options: tuple[int, ...], *, default: int) -> int:
        """An optional enumerated integer (Yunxin `type`): a JSON integer or a digit string."""
        value = self.get(name)
        if value is None:
            return default
        if isinstance(value, str) and _DIGITS.fullmatch(value) and len(value) < 4:
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and value in options:
            return value
        allowed = ", ".join(str(option) for option in options)
        raise RowError(f"field {show(name)} must be one of {allowed} (got {show(value)})")

    def timestamps(self, name: str) -> list[int]:
        """GoEasy `messages`: one timestamp (ms) or a list of 1 to 10,000 of them."""
        value = self._required(name)
        if self._from_csv and isinstance(value, str):
            value = _csv_list(name, value)
        if not isinstance(value, list):
            return [_as_timestamp(name, value)]
        if not 1 <= len(value) <= MAX_TIMESTAMPS:
            raise RowError(
                f"field {show(name)} must hold 1 to {MAX_TIMESTAMPS} timestamps "
                f"(got {len(value)}); split the row"
            )
        return [_as_timestamp(f"{name}[{index}]", entry) for index, entry in enumerate(value)]

    def optional_object(self, name: str) -> dict[str, Any] | None:
        """A JSON object; in CSV, its JSON text."""
        value = self.get(name)
        if value is None:
            return None
        if self._from_csv and isinstance(value, str):
            value = _cell_json(name, value, 'write a JSON object such as {"id": "u1"}')
        if not isinstance(value, dict):
            raise RowError(f"field {show(name)} must be an object (got {show(value)})")
        return value


def _as_text(name: str, value: Any, max_len: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise RowError(f"field {show(name)} must be a string (got {show(value)})")
    if len(value) > max_len:
        raise RowError(f"field {show(name)} is longer than {max_len} characters")
    return value


def _as_ident(name: str, value: Any) -> str:
    """A non-empty id, kept exactly as written; a JSON integer is taken as its digits."""
    if isinstance(value, float):
        raise RowError(_float_problem(name))
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    text = _as_text(name, value)
    if not text:
        raise RowError(f"field {show(name)} must not be empty")
    return text


def _as_timestamp(name: str, value: Any) -> int:
    """A message timestamp in ms: a positive 64-bit integer, as a JSON integer or digits."""
    if isinstance(value, float):
        raise RowError(_float_problem(name))
    if isinstance(value, str) and _DIGITS.fullmatch(value) and len(value) <= 19:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= _INT64_MAX:
        return value
    raise RowError(
        f"field {show(name)} must be a positive integer timestamp in ms (got {show(value)})"
    )


def _csv_list(name: str, text: str) -> Any:
    """A CSV list cell: a JSON array, values separated by ';' (spaces around them allowed), or
    one value."""
    if text.lstrip().startswith("["):
        return _cell_json(name, text, "write a JSON array or values separated by ';'")
    if ";" in text:
        return [part.strip() for part in text.split(";")]
    return text


def _cell_json(name: str, text: str, hint: str) -> Any:
    """A CSV cell holding JSON text."""
    try:
        return parse_json(text)
    except (ValueError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise RowError(f"field {show(name)} is not valid JSON ({reason}); {hint}") from None


def _describe_char(char: str) -> str:
    if char.isspace():
        return "whitespace"
    if char in "/\\%":
        return repr(char)
    return "a control character"


def _float_problem(name: str) -> str:
    return f"field {show(name)} is a float and may have lost digits; write it as a string"


def show(value: Any) -> str:
    """A short rendering of a row value for a problem sentence."""
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
