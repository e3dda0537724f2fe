"""The text encoding of a job file (`--encoding NAME`; SPEC §2): UTF-8 unless the operator names
another, such as the GBK a Chinese-locale spreadsheet saves.

Rows are found by their line breaks, commas and quotes before they are decoded, so only an
encoding that writes those ASCII characters as themselves can be read this way (UTF-16 and the
7-bit ISO-2022 and HZ forms cannot).
"""

from __future__ import annotations

import codecs

from batchrecall.errors import JobFileError

__all__ = ["DEFAULT_ENCODING", "job_encoding", "undecodable_problem"]

DEFAULT_ENCODING = "utf-8"
_STRUCTURE = b'\n\r",{}[]:'
# Stateful 7-bit encodings write multibyte text with ASCII bytes, quotes and commas included.
_SEVEN_BIT = ("iso2022", "hz", "utf-7")


def job_encoding(name: str) -> str:
    """The codec's canonical name (`utf8` -> `utf-8`); JobFileError if it is unknown or cannot
    be read line by line. `utf-8-sig` is UTF-8: a leading BOM is dropped either way."""
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise JobFileError(
            f"unknown encoding {name!r}; name a text encoding such as utf-8, gbk or gb18030"
        ) from None
    canonical = info.name
    if canonical == "utf-8-sig":
        return DEFAULT_ENCODING
    if (
        not getattr(info, "_is_text_encoding", True)
        or canonical.replace("-", "").startswith(_SEVEN_BIT)
        or not _keeps_ascii(canonical)
    ):
        raise JobFileError(
            f"encoding {name!r} cannot be read line by line; save the file as UTF-8 "
            "(or name an ASCII-compatible encoding such as gbk, gb18030, big5 or shift_jis)"
        )
    return canonical


def _keeps_ascii(codec: str) -> bool:
    try:
        return _STRUCTURE.decode(codec) == _STRUCTURE.decode("ascii") and (
            _STRUCTURE.decode("ascii").encode(codec) == _STRUCTURE
        )
    except (UnicodeError, LookupError):
        return False


def undecodable_problem(raw: bytes, encoding: str, error: UnicodeDecodeError) -> str:
    """What to tell the operator about a row its encoding cannot decode."""
    where = f"at byte {error.start + 1}"
    if encoding != DEFAULT_ENCODING:
        return f"line is not valid {encoding} ({where}); check the file's --encoding"
    if not _reads_as_gbk(raw):
        return f"line is not valid UTF-8 ({where}); save the file as UTF-8"
    return (
        f"line is not valid UTF-8 ({where}) but reads as GBK: give --encoding gbk "
        "(or save the file as UTF-8)"
    )


def _reads_as_gbk(raw: bytes) -> bool:
    """Text a Chinese-locale spreadsheet saved: it decodes as GBK into more than one non-ASCII
    character, and as UTF-8 it is mostly errors (a UTF-8 row with one damaged or cut character
    is mostly valid characters; GBK pairs make a valid UTF-8 character now and then)."""
    try:
        text = raw.decode("gbk")
    except UnicodeDecodeError:
        return False
    utf8 = raw.decode("utf-8", errors="replace")
    errors = utf8.count("\ufffd")
    valid = sum(char > "\x7f" for char in utf8) - errors
    return errors > valid and sum(char > "\x7f" for char in text) > 1
