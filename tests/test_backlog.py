"""A lane's backlog: its calls planned from its part of the job, read as the lane asks."""

from __future__ import annotations

from batchrecall.intake.partition import Partition
from batchrecall.intake.planner import Planner
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


def _backlog(partition: Partition, size: int = 3) -> Backlog:
    planner = Planner(limit=lambda item: size, run_id="r", max_buffered=6)
    return Backlog(LANE, partition.lane_source(LANE), planner)


def _partition(calls: list[Call]) -> Partition:
    partition = Partition()
    for c in calls:
        for item in c.items:
            partition.add_item(item)
    partition.finish()
    return partition


def test_calls_come_back_in_order_and_whole_from_the_lanes_file() -> None:
    sent = [call(n) for n in range(10)]
    partition = _partition(sent)
    backlog = _backlog(partition)
    assert len(backlog) == 30
    first = [backlog.pop() for _ in range(4)]
    assert backlog.unread <= 30 - 12, "read as the lane asks, not all at once"
    rest = list(backlog.drain())
    got = [*first, *rest]
    assert [c.items if c else None for c in got] == [c.items for c in sent]
    assert got[-1] is not None
    assert got[-1].items[0].params == sent[-1].items[0].params
    assert len(backlog) == 0
    assert backlog.pop() is None
    backlog.close()
    partition.close()


def test_dropping_the_unread_rest_keeps_what_was_read() -> None:
    partition = _partition([call(n) for n in range(100)])
    backlog = _backlog(partition)
    first = backlog.pop()
    assert first is not None
    read = 300 - backlog.unread
    assert read < 300
    backlog.drop_unread()
    held = list(backlog.drain())
    assert sum(len(c.items) for c in held) == read - 3, "what was read and not yet popped"
    assert backlog.dropped == 300 - read
    assert len(backlog) == 0
    backlog.close()
    partition.close()


def test_the_partition_files_are_removed_on_close() -> None:
    partition = _partition([call(0)])
    folder = partition.folder
    assert any(folder.iterdir())
    partition.close()
    assert not folder.exists()
