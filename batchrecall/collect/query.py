"""What the operator asks `collect` for (SPEC §8): who, when, where, and the rows to write."""

from __future__ import annotations

from dataclasses import dataclass

from batchrecall.models import Vendor

__all__ = ["Query"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Query:
    vendor: Vendor
    app: str
    senders: tuple[str, ...]
    since_ms: int
    until_ms: int | None
    """Exclusive; None: up to now."""
    ref: str
    op: str = "recall"
    conversations: tuple[str, ...] = ()
    chat_type: str | None = None
    contains: str | None = None
    max_items: int | None = None

    def in_window(self, sent_ms: int) -> bool:
        return sent_ms >= self.since_ms and (self.until_ms is None or sent_ms < self.until_ms)

    def describe(self) -> dict[str, object]:
        """The query as the manifest records it."""
        return {
            "vendor": str(self.vendor),
            "app": self.app,
            "senders": list(self.senders),
            "since_ms": self.since_ms,
            "until_ms": self.until_ms,
            "conversations": list(self.conversations),
            "chat_type": self.chat_type,
            "contains": self.contains,
            "op": self.op,
            "ref": self.ref,
            "max_items": self.max_items,
        }
