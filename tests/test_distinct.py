"""DistinctKeys: the count `validate` prints, kept exact over batches written to disk."""

from __future__ import annotations

import os
import random
from pathlib import Path

import orjson
import pytest

from batchrecall.cli.main import main
from batchrecall.intake import distinct
from batchrecall.intake.distinct import DistinctKeys


@pytest.mark.parametrize("batch", [1, 7, 1_000, 50_000])
def test_counts_distinct_keys_across_batches(batch: int) -> None:
    rng = random.Random(batch)
    keys = [f"easemob:default:recall:{rng.randrange(3_000)}" for _ in range(5_000)]
    seen = DistinctKeys(batch=batch)
    try:
        for key in keys:
            seen.add(key)
        assert seen.count() == len(set(keys))
        # The count goes on after being asked.
        seen.add("a new key")
        seen.add(keys[0])
        assert seen.count() == len(set(keys)) + 1
    finally:
        seen.close()


def test_spilled_keys_leave_no_file_behind() -> None:
    seen = DistinctKeys(batch=2)
    for key in ("a", "b", "a", "c"):
        seen.add(key)
    assert seen.count() == 3
    assert seen._file is not None
    folder = os.path.dirname(seen._file.name)
    assert os.listdir(folder)
    seen.close()
    assert not os.path.exists(folder)


def test_validate_counts_repeats_across_batches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(distinct, "_BATCH", 3)
    job = tmp_path / "job.jsonl"
    rows = [
        {"vendor": "easemob", "op": "recall", "msg_id": str(n), "to": "u", "chat_type": "chat"}
        for n in (1, 2, 3, 4, 1, 5, 2, 6, 1)
    ]
    job.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows) + b"{}\n")
    assert main(["validate", str(job)]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == ("6 items (and 1 invalid row, 3 duplicates)")


def test_validate_counts_a_repeat_across_job_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Several job files are one job: a row repeated in the second is a duplicate, and a file of
    a lone row counts its one item."""
    row = {"vendor": "yunxin", "op": "recall", "conversation_id": "a|1|b", "message_server_id": "7"}
    first, second, lone = tmp_path / "a.jsonl", tmp_path / "b.csv", tmp_path / "c.jsonl"
    first.write_bytes(orjson.dumps(row) + b"\n")
    second.write_text("vendor,op,conversation_id,message_server_id\nyunxin,recall,a|1|b,7\n")
    lone.write_bytes(orjson.dumps({**row, "message_server_id": "8"}))  # no line break at the end
    assert main(["validate", str(first), str(second), str(lone)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "2 items (and 1 duplicate)"
