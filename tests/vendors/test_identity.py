"""The same target with other options is another item (SPEC §2): sent, in row order, and resumed
on its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from batchrecall.results.summary import ExitCode
from tests.harness import Harness

Row = dict[str, Any]
DAY_S = 86400.0


def yunxin(op: str, **fields: Any) -> Row:
    return {"vendor": "yunxin", "op": op, **fields}


def easemob_recall(**fields: Any) -> Row:
    return {"vendor": "easemob", "op": "recall", "msg_id": "1700000000000000001", "to": "user-b",
            "chat_type": "chat", **fields}  # fmt: skip


def easemob_delete(**fields: Any) -> Row:
    return {"vendor": "easemob", "op": "delete_conversation", "username": "owner",
            "channel": "peer", "type": "chat", **fields}  # fmt: skip


PAIRS = {
    "yunxin-recall-type": (
        yunxin("recall", conversation_id="a|1|b", message_server_id="42", type=1),
        yunxin("recall", conversation_id="a|1|b", message_server_id="42", type=2),
    ),
    "clear-message": (
        yunxin("delete_conversation", conversation_id="a|1|b", clear_message=False),
        yunxin("delete_conversation", conversation_id="a|1|b", clear_message=True),
    ),
    "clear-history-type": (
        yunxin("clear_history", conversation_id="a|1|b", type=1),
        yunxin("clear_history", conversation_id="a|1|b", type=3),
    ),
    "delete-roam": (easemob_delete(delete_roam=False), easemob_delete(delete_roam=True)),
    "force": (easemob_recall(force=False), easemob_recall(force=True)),
}


def _item_requests(harness: Harness) -> list[Any]:
    return [r for r in harness.requests() if r.items]


@pytest.mark.anyio
@pytest.mark.parametrize("pair", PAIRS.values(), ids=PAIRS.keys())
async def test_the_same_target_with_other_options_is_sent_again_in_row_order(
    tmp_path: Path, pair: tuple[Row, Row]
) -> None:
    harness = Harness(tmp_path)
    harness.write_job(pair)
    harness.seed()
    outcome = await harness.run()
    assert not [row for row in outcome.rows if row["error"] == "duplicate"]
    assert len({row["item_key"] for row in outcome.rows}) == 2
    sent = _item_requests(harness)
    assert len(sent) == 2, "one request for each row"
    assert sent[0].seq < sent[1].seq
    first, second = (r.query or r.body for r in sent)
    assert first != second, "the second request asks for the other option"
    lines = sorted(outcome.rows, key=lambda row: row["call_id"])
    assert [row["line"] for row in lines] == [1, 2], "the first row's call went first"


@pytest.mark.anyio
async def test_the_stronger_request_is_not_counted_done_on_resume(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    one_way, two_way = PAIRS["yunxin-recall-type"]
    harness.write_job([one_way])
    harness.seed()
    first = await harness.run()
    assert first.statuses() == {"42": "ok"}
    harness.write_job([one_way, two_way])
    before = len(harness.requests())
    outcome = await harness.run(resume=True)
    resent = harness.requests()[before:]
    assert [r.query["type"] for r in resent] == ["2"]
    assert harness.emulators.yunxin.state.removed_by("a|1|b", "42") == 2
    assert outcome.summary.exit_code() == ExitCode.OK


@pytest.mark.anyio
async def test_force_after_a_plain_recall_of_an_old_message(tmp_path: Path) -> None:
    """Past the storage period a plain recall finds nothing; the forced one recalls the
    receiver's copy (seed 000): both rows get their own outcome."""
    harness = Harness(tmp_path)
    harness.write_job(PAIRS["force"])
    harness.seed({("easemob", "1700000000000000001"): {"age_s": 8 * DAY_S}})
    outcome = await harness.run()
    by_line = {row["line"]: (row["status"], row["error"]) for row in outcome.rows}
    assert by_line == {1: ("not_found", "not-found"), 2: ("ok", "")}
    recalls = [r for r in harness.requests("easemob") if r.items]
    assert [r.body["msgs"][0]["force"] for r in recalls] == [False, True]


@pytest.mark.anyio
async def test_check_team_member_valid_is_not_part_of_the_identity(tmp_path: Path) -> None:
    """It lifts a permission check; the vendor does the same to the message: one item."""
    harness = Harness(tmp_path)
    first = yunxin("recall", conversation_id="a|2|t", message_server_id="42")
    harness.write_job([first, {**first, "check_team_member_valid": False}])
    harness.seed()
    outcome = await harness.run()
    by_line = sorted(outcome.rows, key=lambda row: row["line"])
    assert [(r["status"], r["error"]) for r in by_line] == [("ok", ""), ("skipped", "duplicate")]
    assert len(_item_requests(harness)) == 1
