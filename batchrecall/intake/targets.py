"""What an op's row builder gives back: one Target per item of the row."""

from __future__ import annotations

from typing import Any, NamedTuple


class Target(NamedTuple):
    """One item's vendor-specific part: its `target` as results name it, the `ids` that name it
    at the vendor, the `params` its vendor call takes, and the `batch_key` of the items that may
    travel in one call with it (empty: any of its lane and op).

    The item's identity options are not given here: they are the params the vendor's
    registration names as `identity` (`OpSpec.identity`).

    A NamedTuple: a GoEasy row makes one a timestamp, and a tuple is made at a third of the
    cost of a frozen dataclass.
    """

    target: str
    ids: tuple[str, ...]
    params: dict[str, Any]
    batch_key: tuple[str, ...] = ()


def option(name: str, value: Any) -> str:
    """An option of the item's identity, as `name=value` (booleans as true/false)."""
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return f"{name}={text}"
