"""How counts are worded, alike in the plan, the run's summary, the report and `validate`."""

from __future__ import annotations

__all__ = ["count_phrase"]


def count_phrase(items: int, invalid_rows: int, duplicates: int) -> str:
    """How the plan, the run's summary and the report name what they counted, alike."""
    text = _plural(items, "item")
    extra = [
        _plural(n, word)
        for n, word in ((invalid_rows, "invalid row"), (duplicates, "duplicate"))
        if n
    ]
    return text + (f" (and {', '.join(extra)})" if extra else "")


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"
