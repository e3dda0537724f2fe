"""A lane's backlog: first in, first out, in memory up to a size and on disk beyond."""

from __future__ import annotations

from batchrecall.models import Call, Item, LaneKey, Op, Vendor
from batchrecall.run.backlog import Backlog

LANE = LaneKey(vendor=Vendor.YUNXIN, app="default")


def call(n: int, size: int = 3) -> Call:
    items = tuple(
        Item(
            job="job.jsonl",
            line=n,
            index=i,
            ref=f"INC-{n}",
            vendor=Vendor.YUNXIN,
            app="default",
            op=Op.DELETE_CONVERSATION,
            target=f"a|1|b{n}-{i}",
            ids=(f"a|1|b{n}-{i}",),
            options=("clear_message=true",),
            batch_key=("true",),
            params={
                "conversation_id": f"a|1|b{n}-{i}",
                "clear_message": True,
                "nested": {"k": [1]},
            },
        )
        for i in range(size)
    )
    return Call(call_id=f"r-{n:06d}", lane=LANE, op=Op.DELETE_CONVERSATION, items=items)


def test_calls_come_back_in_order_and_whole_across_the_spill() -> None:
    backlog = Backlog(LANE, memory_items=6)
    sent = [call(n) for n in range(10)]
    for c in sent:
        backlog.push(c)
    assert len(backlog) == 30
    assert backlog.spilled == 24, "past six items in memory, calls go to disk"
    first = [backlog.pop() for _ in range(4)]
    backlog.push(call(10))  # behind what is on disk, never ahead of it
    rest = list(backlog.drain())
    assert [*first, *rest] == [*sent, call(10)]
    assert rest[-1].items[0].item_key == call(10).items[0].item_key
    assert len(backlog) == 0
    assert backlog.spilled == 0
    assert backlog.pop() is None
    backlog.close()


def test_the_spill_file_is_removed_on_close() -> None:
    backlog = Backlog(LANE, memory_items=1)
    backlog.push(call(0))
    backlog.push(call(1))
    path = backlog._path
    assert path is not None
    assert path.exists()
    backlog.close()
    assert not path.exists()
