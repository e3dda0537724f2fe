"""`sent_at` (SPEC §8): collected rows carry the send time; every op takes it, checks it, and
leaves it out of the item's identity and of what is sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from batchrecall.intake.reader import read_job
from batchrecall.models import InvalidRow, Item
from tests.test_jobs_schema import (
    EASEMOB_DELETE,
    EASEMOB_RECALL,
    GOEASY_GROUP,
    YUNXIN_CLEAR,
    YUNXIN_DELETE_CONVERSATION,
    YUNXIN_DELETE_MESSAGE,
    YUNXIN_RECALL,
    item,
    items,
    problem,
)

SENT = 1764756000123
ROWS = [
    EASEMOB_RECALL,
    EASEMOB_DELETE,
    GOEASY_GROUP,
    YUNXIN_RECALL,
    YUNXIN_DELETE_MESSAGE,
    YUNXIN_DELETE_CONVERSATION,
    YUNXIN_CLEAR,
]


@pytest.mark.parametrize("row", ROWS, ids=lambda row: f"{row['vendor']}-{row['op']}")
def test_every_op_takes_sent_at_outside_the_identity(tmp_path: Path, row: dict[str, Any]) -> None:
    plain = items(tmp_path, row)
    dated = items(tmp_path, {**row, "sent_at": SENT})
    assert [i.item_key for i in dated] == [i.item_key for i in plain]
    assert [i.params for i in dated] == [i.params for i in plain]
    assert all("sent_at" not in i.params for i in dated)


@pytest.mark.parametrize("value", [0, -5, 1.5, "1764756000123", True, [SENT], 10**17])
def test_sent_at_must_be_ms_since_the_epoch(tmp_path: Path, value: object) -> None:
    assert "field 'sent_at' must be a time in ms" in problem(
        tmp_path, {**YUNXIN_RECALL, "sent_at": value}
    )


def test_null_sent_at_is_absent(tmp_path: Path) -> None:
    assert (
        item(tmp_path, {**YUNXIN_RECALL, "sent_at": None}).params
        == item(tmp_path, YUNXIN_RECALL).params
    )


def test_csv_sent_at_as_digits(tmp_path: Path) -> None:
    path = tmp_path / "job.csv"
    path.write_text(
        "vendor,op,msg_id,to,chat_type,sent_at\n"
        f"easemob,recall,1028442084794698104,user2,chat,{SENT}\n"
        "easemob,recall,1028442084794698105,user2,chat,\n"
        "easemob,recall,1028442084794698106,user2,chat,yesterday\n",
        encoding="utf-8",
    )
    first, second, third = read_job(path)
    assert isinstance(first, Item)
    assert isinstance(second, Item)
    assert isinstance(third, InvalidRow)
    assert "sent_at" in third.problem
