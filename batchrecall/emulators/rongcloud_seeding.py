"""Make what a RongCloud job row names exist in the RongCloud emulator (`--seed`, `--emulate`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchrecall.emulators.rongcloud_state import RongCloudState
from batchrecall.models import Op


def seed_rongcloud(
    state: RongCloudState, op: Op, params: Mapping[str, Any], *, sent_ms: int | None = None
) -> None:
    """A recall row's message, sent at the row's `sentTime` (or `sent_ms`, a scenario's age) by
    `fromUserId` in its conversation (and ultra group channel); a clear_history row's
    conversation."""
    kind = int(params["conversationType"])
    if op is Op.RECALL:
        state.add_message(
            str(params["messageUID"]),
            sender=str(params["fromUserId"]),
            conversation_type=kind,
            target_id=str(params["targetId"]),
            sent_ms=int(params["sentTime"]) if sent_ms is None else sent_ms,
            bus_channel=params.get("busChannel"),
        )
    else:
        state.add_conversation(str(params["fromUserId"]), kind, str(params["targetId"]))
