"""Sharded runs: shard I of N takes its share of a job, the same share on every run and host."""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from batchrecall.cli.main import main
from batchrecall.cli.sharding import shard_results_path
from batchrecall.intake.reader import read_job
from batchrecall.intake.shard import Shard, shard_of
from batchrecall.models import InvalidRow, Item, JobRef, Op, Vendor
from batchrecall.run.runner import plan_job

Row = Item | InvalidRow


def job_rows() -> list[dict[str, Any]]:
    """Every vendor and op, conversations over several rows, duplicates and bad rows."""
    rows: list[dict[str, Any]] = []
    for n in range(400):
        rows.append(
            {"vendor": "easemob", "op": "recall", "msg_id": str(1_200_000_000_000_000_000 + n),
             "to": f"user-{n % 13}", "chat_type": "chat"}
        )  # fmt: skip
    for user in range(10):
        for channel in range(4):
            rows.append(
                {"vendor": "easemob", "op": "delete_conversation", "username": f"user-{user}",
                 "channel": f"spammer-{channel}", "type": "chat", "delete_roam": True}
            )  # fmt: skip
    for conversation in range(60):
        stamps = [1_763_690_000_000 + conversation * 1000 + k for k in range(2 + conversation % 30)]
        half = len(stamps) // 2
        if conversation % 2:
            parties = [{"groupId": f"group-{conversation}"}] * 2
        else:  # either order of the two users names one conversation
            a, b = f"spammer-{conversation}", f"user-{conversation}"
            parties = [{"userAId": a, "userBId": b}, {"userAId": b, "userBId": a}]
        rows.append({"vendor": "goeasy", "op": "recall", **parties[0], "messages": stamps[:half]})
        rows.append({"vendor": "goeasy", "op": "recall", **parties[1], "messages": stamps[half:]})
    for n in range(120):
        rows.append(
            {"vendor": "yunxin", "op": "delete_conversation", "conversation_id": f"u-{n}|1|s",
             "clear_message": n % 6 == 0}
        )  # fmt: skip
    for n in range(50):
        rows.append(
            {"vendor": "yunxin", "op": "recall", "conversation_id": f"s|1|u-{n}",
             "message_server_id": str(880_000_000_000 + n)}
        )  # fmt: skip
    rows += [dict(rows[3]), dict(rows[410]), dict(rows[500])]  # duplicates
    rows += [{"vendor": "easemob", "op": "recall"}, {"vendor": "nobody", "op": "recall"}]
    return rows


def write_job(path: Path, rows: list[dict[str, Any]], *, blank_every: int = 0) -> Path:
    with path.open("wb") as handle:
        for n, row in enumerate(rows):
            handle.write(orjson.dumps(row) + b"\n")
            if blank_every and n % blank_every == 0:
                handle.write(b"\n")
    return path


def read_rows(path: Path) -> list[Row]:
    return list(read_job(path, job_name=path.name))


@pytest.fixture
def job(tmp_path: Path) -> Path:
    return write_job(tmp_path / "big.jsonl", job_rows())


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
def test_the_shards_cover_every_row_exactly_once(job: Path, count: int) -> None:
    rows = read_rows(job)
    shards = [Shard(i, count) for i in range(1, count + 1)]
    for row in rows:
        assert [shard.contains(row) for shard in shards].count(True) == 1
    sizes = [sum(shard.contains(row) for row in rows) for shard in shards]
    assert sum(sizes) == len(rows)
    assert min(sizes) > len(rows) / count / 2  # no shard is left nearly empty


def test_items_that_share_a_call_or_a_pacing_window_share_a_shard(job: Path) -> None:
    shards_of: dict[tuple[object, ...], set[int]] = defaultdict(set)
    yunxin_deletes: set[int] = set()
    for row in read_rows(job):
        if not isinstance(row, Item):
            continue
        shard = shard_of(row, 4)
        if row.vendor is Vendor.GOEASY:
            shards_of[("goeasy", *row.ids[:-1])].add(shard)  # the conversation
        elif row.vendor is Vendor.EASEMOB and row.op is Op.DELETE_CONVERSATION:
            shards_of[("easemob-user", row.params["username"])].add(shard)
        elif row.op is Op.DELETE_CONVERSATION:
            yunxin_deletes.add(shard)
    goeasy = [key for key in shards_of if key[0] == "goeasy"]
    assert len(goeasy) == 60
    assert len({key for key in shards_of if key[0] == "easemob-user"}) == 10
    assert all(len(shards) == 1 for shards in shards_of.values())
    # Yunxin conversation deletes batch by an option value only: they spread over the shards.
    assert yunxin_deletes == {1, 2, 3, 4}


def test_a_row_and_its_duplicate_share_a_shard(job: Path) -> None:
    by_key: dict[str, set[int]] = defaultdict(set)
    for row in read_rows(job):
        by_key[row.item_key].add(shard_of(row, 5))
    assert all(len(shards) == 1 for shards in by_key.values())


def test_shards_are_stable_when_the_job_is_reordered_or_edited(tmp_path: Path, job: Path) -> None:
    before = {row.item_key: shard_of(row, 4) for row in read_rows(job)}
    edited = job_rows()
    random.Random(7).shuffle(edited)
    edited.insert(5, {"vendor": "yunxin", "op": "clear_history", "conversation_id": "new|1|x"})
    moved = write_job(tmp_path / "moved.jsonl", edited, blank_every=9)
    after = {row.item_key: shard_of(row, 4) for row in read_rows(moved)}
    assert {key: after[key] for key in before} == before


def test_shard_parse() -> None:
    assert Shard.parse("2/4") == Shard(2, 4)
    assert str(Shard(2, 4)) == "2/4"
    assert Shard(2, 4).label == "shard-2-of-4"
    for bad in ("0/4", "5/4", "2", "a/b", "-1/4", "1/0", "2/4/8"):
        with pytest.raises(ValueError, match="I/N"):
            Shard.parse(bad)


def test_shard_plans_add_up_to_the_whole_plan(job: Path) -> None:
    jobs = [JobRef(path=job, name=str(job))]
    whole = plan_job(jobs, config=None)
    parts = [plan_job(jobs, config=None, keep=Shard(i, 4).contains) for i in range(1, 5)]
    assert sum(part.items for part in parts) == whole.items
    assert sum(part.duplicates for part in parts) == whole.duplicates == 3
    assert sum(part.invalid_count for part in parts) == whole.invalid_count == 2

    def calls(plan: Any, vendor: Vendor, op: Op) -> int:
        return sum(lane.calls[op] for key, lane in plan.lanes.items() if key.vendor is vendor)

    # A conversation's timestamps never split over shards: no extra GoEasy call.
    goeasy = sum(calls(part, Vendor.GOEASY, Op.RECALL) for part in parts)
    assert goeasy == calls(whole, Vendor.GOEASY, Op.RECALL)
    per_user: dict[str, int] = defaultdict(int)
    for part in parts:
        for lane in part.lanes.values():
            for user, n in lane.per_key_calls.items():
                per_user[user] += n
    whole_per_user = {u: n for lane in whole.lanes.values() for u, n in lane.per_key_calls.items()}
    assert per_user == whole_per_user


def test_plan_shard_on_the_command_line(job: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(job), "--shard", "3/4"]) == 0
    out = capsys.readouterr().out
    assert "Shard 3/4" in out
    for bad in ("0/4", "4", "x/4"):
        with pytest.raises(SystemExit) as caught:
            main(["plan", str(job), "--shard", bad])
        assert caught.value.code == 2
        assert "I/N" in capsys.readouterr().err


def test_each_shard_has_its_own_results_file(
    tmp_path: Path, job: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert shard_results_path(job, "csv", Shard(2, 4)) == tmp_path / "big.shard-2-of-4.results.csv"
    code = main(["run", str(job), "--emulate", "--shard", "2/4", "--dry-run", "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "Shard 2/4" in out
    assert str(tmp_path / "big.shard-2-of-4.results.jsonl") in out


def test_shard_runs_send_each_item_once(tmp_path: Path, job: Path) -> None:
    """Every shard sends its share only; together they settle every item of the job once."""
    outs = []
    for i in range(1, 4):
        code = main(["run", str(job), "--emulate", "--shard", f"{i}/3", "--yes", "--no-progress"])
        assert code in (0, 1)
        outs.append(shard_results_path(job, "jsonl", Shard(i, 3)))
    keys: list[str] = []
    for i, out in enumerate(outs, start=1):
        rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
        mine = {row["item_key"] for row in rows}
        expected = {r.item_key for r in read_job(job) if Shard(i, 3).contains(r)}
        assert mine == expected
        keys += [row["item_key"] for row in rows if row["error"] != "duplicate"]
    assert len(keys) == len(set(keys)), "no item is settled by two shards"
    assert set(keys) == {r.item_key for r in read_job(job)}


def test_a_report_of_one_shard_counts_only_that_shards_items(
    tmp_path: Path, job: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The other shards' items are other workers' business: never left to do here, never
    written to --failed-jobs (a job file of them would send them twice)."""
    code = main(["run", str(job), "--emulate", "--shard", "2/3", "--yes", "--no-progress"])
    assert code in (0, 1)
    out = shard_results_path(job, "jsonl", Shard(2, 3))
    left = tmp_path / "left.jsonl"
    capsys.readouterr()
    code = main(["report", str(out), "--failed-jobs", str(left)])
    printed = capsys.readouterr().out
    assert "without a row" not in printed
    assert "left to do: 0" in printed
    assert left.read_bytes() == b""
    assert code == 0


def test_an_items_option_variants_share_a_shard(tmp_path: Path) -> None:
    """A one-way then a two-way recall of one message (and a conversation deleted without, then
    with, its messages) are other items of one target: each worker must see them in row order."""
    rows: list[dict[str, Any]] = []
    for n in range(60):
        conversation, message = f"s|1|u-{n}", str(880_000_000_000 + n)
        rows += [
            {"vendor": "yunxin", "op": "recall", "conversation_id": conversation,
             "message_server_id": message, "type": 1},
            {"vendor": "yunxin", "op": "recall", "conversation_id": conversation,
             "message_server_id": message, "type": 2},
            {"vendor": "yunxin", "op": "delete_conversation", "conversation_id": conversation},
            {"vendor": "yunxin", "op": "delete_conversation", "conversation_id": conversation,
             "clear_message": True},
            {"vendor": "easemob", "op": "recall", "msg_id": message, "to": "u",
             "chat_type": "chat"},
            {"vendor": "easemob", "op": "recall", "msg_id": message, "to": "u",
             "chat_type": "chat", "force": True},
        ]  # fmt: skip
    items = [row for row in read_rows(write_job(tmp_path / "variants.jsonl", rows)) if
             isinstance(row, Item)]  # fmt: skip
    assert len(items) == len(rows)
    for first, second in zip(items[::2], items[1::2], strict=True):
        assert first.item_key != second.item_key  # two items ...
        for count in (2, 3, 7):  # ... in one shard
            assert shard_of(first, count) == shard_of(second, count)
    # and the targets still spread over the shards
    assert {shard_of(item, 4) for item in items} == {1, 2, 3, 4}
