"""Planning (SPEC §1, §2): dedupe items and group them into calls within each vendor's limit."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

from batchrecall.intake.planner import Planner
from batchrecall.models import Call, Item, Op, Vendor


def item(
    target: str,
    *,
    vendor: Vendor = Vendor.GOEASY,
    app: str = "default",
    op: Op = Op.RECALL,
    batch_key: tuple[str, ...] = ("conv-1",),
    line: int = 1,
    index: int = 0,
) -> Item:
    return Item(
        job="job.jsonl",
        line=line,
        index=index,
        ref="",
        vendor=vendor,
        app=app,
        op=op,
        target=target,
        ids=(*batch_key, target),
        batch_key=batch_key,
    )


def fixed(limit: int) -> Callable[[Item], int]:
    return lambda _item: limit


def plan(planner: Planner, items: Iterable[Item]) -> list[Call]:
    calls: list[Call] = []
    for it in items:
        calls.extend(planner.add(it))
    calls.extend(planner.flush())
    return calls


def targets(calls: Iterable[Call]) -> list[list[str]]:
    return [[it.target for it in call.items] for call in calls]


@pytest.mark.parametrize("limit", [1, 2, 20, 30, 100])
@pytest.mark.parametrize("count", [0, 1, 19, 20, 21, 99, 100, 101, 250])
def test_calls_never_exceed_the_limit_and_carry_every_item_once(limit: int, count: int) -> None:
    items = [item(f"m{n}") for n in range(count)]
    calls = plan(Planner(limit=fixed(limit), run_id="r"), items)
    assert all(1 <= len(call.items) <= limit for call in calls)
    assert [t for group in targets(calls) for t in group] == [f"m{n}" for n in range(count)]
    assert len(calls) == -(-count // limit)


def test_exactly_at_the_limit_is_one_call_sent_as_soon_as_it_is_full() -> None:
    planner = Planner(limit=fixed(3), run_id="r")
    assert list(planner.add(item("a"))) == []
    assert list(planner.add(item("b"))) == []
    (call,) = planner.add(item("c"))
    assert [it.target for it in call.items] == ["a", "b", "c"]
    assert list(planner.flush()) == []


def test_one_over_the_limit_is_two_calls() -> None:
    planner = Planner(limit=fixed(3), run_id="r")
    calls = plan(planner, [item(t) for t in "abcd"])
    assert targets(calls) == [["a", "b", "c"], ["d"]]


def test_limit_is_asked_per_item() -> None:
    def limit(it: Item) -> int:
        return 2 if it.op is Op.DELETE_CONVERSATION else 4

    planner = Planner(limit=limit, run_id="r")
    recalls = [item(f"r{n}") for n in range(5)]
    deletes = [item(f"d{n}", vendor=Vendor.YUNXIN, op=Op.DELETE_CONVERSATION) for n in range(5)]
    calls = plan(planner, recalls + deletes)
    assert sorted(len(c.items) for c in calls if c.op is Op.RECALL) == [1, 4]
    assert sorted(len(c.items) for c in calls if c.op is Op.DELETE_CONVERSATION) == [1, 2, 2]


@pytest.mark.parametrize(
    "other",
    [
        item("x", batch_key=("conv-2",)),
        item("x", op=Op.DELETE_MESSAGE),
        item("x", app="second"),
        item("x", vendor=Vendor.YUNXIN),
    ],
    ids=["batch_key", "op", "app", "vendor"],
)
def test_items_of_different_groups_never_share_a_call(other: Item) -> None:
    planner = Planner(limit=fixed(10), run_id="r")
    calls = plan(planner, [item("a"), other, item("b")])
    assert targets(calls) == [["a", "b"], ["x"]]
    for call in calls:
        assert {it.lane for it in call.items} == {call.lane}
        assert {it.op for it in call.items} == {call.op}
        assert len({it.batch_key for it in call.items}) == 1


def test_call_carries_lane_and_op_of_its_items() -> None:
    planner = Planner(limit=fixed(10), run_id="r")
    (call,) = plan(planner, [item("a", vendor=Vendor.YUNXIN, app="eu", op=Op.CLEAR_HISTORY)])
    assert call.lane.vendor is Vendor.YUNXIN
    assert call.lane.app == "eu"
    assert call.op is Op.CLEAR_HISTORY


def test_interleaved_groups_fill_independently() -> None:
    planner = Planner(limit=fixed(2), run_id="r")
    items = [item(f"{c}{n}", batch_key=(c,)) for n in range(3) for c in "xy"]
    calls = plan(planner, items)
    assert targets(calls) == [["x0", "x1"], ["y0", "y1"], ["x2"], ["y2"]]


def test_duplicates_are_found_by_item_key() -> None:
    planner = Planner(limit=fixed(10), run_id="r")
    first = item("m1", line=1)
    assert not planner.is_duplicate(first)
    assert planner.is_duplicate(first)
    # Same identity on another line (or another position in its row) is still a duplicate.
    assert planner.is_duplicate(item("m1", line=9, index=3))
    assert not planner.is_duplicate(item("m2"))
    assert not planner.is_duplicate(item("m1", app="other"))
    assert not planner.is_duplicate(item("m1", op=Op.DELETE_MESSAGE))
    assert not planner.is_duplicate(item("m1", batch_key=("conv-2",)))


def test_duplicate_check_does_not_buffer_the_item() -> None:
    planner = Planner(limit=fixed(10), run_id="r")
    planner.is_duplicate(item("m1"))
    assert list(planner.flush()) == []


@pytest.mark.parametrize("max_buffered", [0, 1, 5, 50])
def test_max_buffered_keeps_memory_bounded(max_buffered: int) -> None:
    planner = Planner(limit=fixed(20), run_id="r", max_buffered=max_buffered)
    buffered = 0
    sent: list[Call] = []
    for n in range(500):
        calls = list(planner.add(item(f"m{n}", batch_key=(f"conv-{n % 37}",))))
        sent.extend(calls)
        buffered += 1 - sum(len(c.items) for c in calls)
        assert buffered <= max_buffered
    sent.extend(planner.flush())
    assert sorted(it.target for c in sent for it in c.items) == sorted(f"m{n}" for n in range(500))
    assert all(len(c.items) <= 20 for c in sent)


def test_max_buffered_sends_the_oldest_group_first() -> None:
    planner = Planner(limit=fixed(10), run_id="r", max_buffered=3)
    assert list(planner.add(item("a1", batch_key=("a",)))) == []
    assert list(planner.add(item("b1", batch_key=("b",)))) == []
    assert list(planner.add(item("a2", batch_key=("a",)))) == []
    (call,) = planner.add(item("c1", batch_key=("c",)))
    assert [it.target for it in call.items] == ["a1", "a2"]
    assert targets(planner.flush()) == [["b1"], ["c1"]]


def test_flush_emits_everything_left_in_arrival_order_of_groups() -> None:
    planner = Planner(limit=fixed(10), run_id="r")
    for it in [
        item("b1", batch_key=("b",)),
        item("a1", batch_key=("a",)),
        item("b2", batch_key=("b",)),
    ]:
        assert list(planner.add(it)) == []
    assert targets(planner.flush()) == [["b1", "b2"], ["a1"]]
    assert list(planner.flush()) == []


def test_call_ids_are_unique_and_carry_the_run_id() -> None:
    planner = Planner(limit=fixed(3), run_id="run42", max_buffered=7)
    items = [item(f"m{n}", batch_key=(f"c{n % 5}",)) for n in range(200)]
    calls = plan(planner, items)
    ids = [call.call_id for call in calls]
    assert len(ids) == len(set(ids))
    assert all(call_id.startswith("run42-") for call_id in ids)
    assert planner.new_call_id() not in ids


def test_the_same_target_with_other_options_leaves_in_row_order() -> None:
    """Yunxin deletes batch by `clear_message`: a later row asking more of the same conversation
    must not leave before the earlier row's call."""
    planner = Planner(limit=lambda item: 2, run_id="t")

    def delete(cid: str, clear: bool, line: int) -> Item:
        return Item(
            job="j",
            line=line,
            index=0,
            ref="",
            vendor=Vendor.YUNXIN,
            app="default",
            op=Op.DELETE_CONVERSATION,
            target=cid,
            ids=(cid,),
            options=(f"clear_message={str(clear).lower()}",),
            batch_key=(str(clear).lower(),),
        )

    calls = list(planner.add(delete("a|1|b", False, 1)))
    calls += planner.add(delete("c|1|d", True, 2))
    assert calls == []  # different targets: both wait for more
    calls += planner.add(delete("a|1|b", True, 3))  # fills the clear_message group
    calls += planner.flush()
    order = [[item.line for item in call.items] for call in calls]
    assert order == [[1], [2, 3]], "line 1's call leaves before line 3's"
