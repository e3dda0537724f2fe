"""Make every message and conversation a job names exist in the emulators (`--seed`, `--emulate`).

A scenario file can say how some of them differ, so that a rehearsal meets the outcomes a real
cleanup meets: `[{"vendor": "easemob", "target": "1001", "age_s": 600}, ...]` where `target` is the
item's target as results name it, and `age_s` (sent that long ago), `to` (Easemob: sent to someone
else) or `absent` (never existed, or already recalled) say how.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from batchrecall.emulators.rongcloud_seeding import seed_rongcloud
from batchrecall.emulators.server import EmulatorSet
from batchrecall.emulators.tencent_state import seed_request as seed_tencent
from batchrecall.errors import UsageError
from batchrecall.intake.reader import read_job
from batchrecall.models import Item, JobRef, LaneKey, Op, Vendor

Scenario = Mapping[tuple[str, str], Mapping[str, Any]]
_SCENARIO_KEYS = {"vendor", "target", "age_s", "to", "absent"}


def load_scenario(path: Path) -> Scenario:
    try:
        entries = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise UsageError(f"scenario {path}: {exc}") from None
    if not isinstance(entries, list):
        raise UsageError(f"scenario {path}: expected a JSON list of entries")
    scenario: dict[tuple[str, str], Mapping[str, Any]] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not {"vendor", "target"} <= entry.keys():
            raise UsageError(f"scenario {path}: every entry needs vendor and target: {entry!r}")
        if unknown := set(entry) - _SCENARIO_KEYS:
            raise UsageError(f"scenario {path}: unknown keys {sorted(unknown)}")
        scenario[(str(entry["vendor"]), str(entry["target"]))] = entry
    return scenario


def seed_jobs(
    emulators: EmulatorSet, jobs: Iterable[JobRef | Path], scenario: Scenario | None = None
) -> Counter[LaneKey]:
    """Seed every valid item of the job files (a path: a UTF-8 one); returns how many each
    lane seeded."""
    seeded: Counter[LaneKey] = Counter()
    for job in jobs:
        ref = job if isinstance(job, JobRef) else JobRef(path=job, name=str(job))
        for row in read_job(ref.path, job_name=ref.name, encoding=ref.encoding):
            if isinstance(row, Item):
                seeded[row.lane] += seed_item(emulators, row, scenario or {})
    return seeded


def seed_item(emulators: EmulatorSet, item: Item, scenario: Scenario) -> bool:
    twist = scenario.get((str(item.vendor), item.target), {})
    if twist.get("absent"):
        return False
    sent_at = emulators.clock() - float(twist.get("age_s", 0.0))
    params = item.params
    if item.vendor is Vendor.EASEMOB:
        if item.op is Op.DELETE_CONVERSATION:
            emulators.easemob.state.add_conversation(
                str(params["username"]), str(params["channel"]), str(params["type"])
            )
        else:
            emulators.easemob.state.add_message(
                str(params["msg_id"]),
                sender=str(params.get("from") or "seed-sender"),
                to=str(twist.get("to", params["to"])),
                chat_type=str(params["chat_type"]),
                sent_at=sent_at,
            )
    elif item.vendor is Vendor.GOEASY:
        recaller = params.get("recaller") or {}
        emulators.goeasy.state.add_message(
            int(params["timestamp"]),
            user_a=params.get("userAId"),
            user_b=params.get("userBId"),
            group_id=params.get("groupId"),
            sent_at=sent_at,
            # The sender: the recaller's id when the row names one, else userAId.
            sender=str(recaller.get("id") or params.get("userAId") or "seed-sender"),
        )
    elif item.vendor is Vendor.RONGCLOUD:
        seed_rongcloud(emulators.rongcloud.state, item.op, params)
    elif item.vendor is Vendor.TENCENT:
        seed_tencent(emulators.tencent.state, item.op, params, sent_at=sent_at)
    elif item.op in (Op.RECALL, Op.DELETE_MESSAGE):
        emulators.yunxin.state.add_message(
            str(params["conversation_id"]), str(params["message_server_id"]), sent_at=sent_at
        )
    else:
        emulators.yunxin.state.add_conversation(str(params["conversation_id"]))
    return True
