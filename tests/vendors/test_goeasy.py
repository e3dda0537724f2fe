"""GoEasy adapter against its emulator: calls per conversation, recaller, appkey, splits, 401."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from batchrecall.cli.main import main
from batchrecall.emulators.common import LoggedRequest
from batchrecall.emulators.goeasy_state import DEFAULT_COMMON_KEY
from batchrecall.models import Vendor
from batchrecall.results.summary import ExitCode
from tests.harness import Harness

Row = dict[str, Any]
BASE_MS = 1_763_100_000_000
# The key the in-process emulators accept; written out so a renamed constant fails here.
APPKEY = "BC-emulator-common-key"


def private(a: str, b: str, *stamps: int, **extra: Any) -> Row:
    return {
        "vendor": "goeasy",
        "op": "recall",
        "userAId": a,
        "userBId": b,
        "messages": list(stamps),
        **extra,
    }


def group(group_id: str, *stamps: int, **extra: Any) -> Row:
    return {
        "vendor": "goeasy",
        "op": "recall",
        "groupId": group_id,
        "messages": list(stamps),
        **extra,
    }


def recalls(harness: Harness) -> list[LoggedRequest]:
    return harness.requests("goeasy")


def conversation_of(body: dict[str, Any]) -> tuple[str, ...]:
    if "groupId" in body:
        return ("group", body["groupId"])
    return ("private", *sorted((body["userAId"], body["userBId"])))


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def test_the_emulator_key_is_the_one_checked_for() -> None:
    assert DEFAULT_COMMON_KEY == APPKEY


@pytest.mark.anyio
async def test_timestamps_of_one_conversation_are_gathered_across_rows(harness: Harness) -> None:
    rows: list[Row] = []
    private_stamps = [BASE_MS + i for i in range(25)]
    group_stamps = [BASE_MS + 1000 + i for i in range(5)]
    for i, stamp in enumerate(private_stamps):
        # Either order of the two parties names the same conversation.
        rows.append(private("alice", "bob", stamp) if i % 2 else private("bob", "alice", stamp))
        if i % 5 == 0:
            rows.append(group("team-1", group_stamps[i // 5]))
    harness.write_job(rows)
    harness.seed()
    outcome = await harness.run()

    sent = recalls(harness)
    assert all(r.status == 200 for r in sent)
    by_conversation: dict[tuple[str, ...], list[LoggedRequest]] = {}
    for request in sent:
        assert ("groupId" in request.body) != ("userAId" in request.body)
        assert len(request.body["messages"]) <= 20
        by_conversation.setdefault(conversation_of(request.body), []).append(request)
    assert by_conversation.keys() == {("private", "alice", "bob"), ("group", "team-1")}
    pair_calls = by_conversation[("private", "alice", "bob")]
    group_calls = by_conversation[("group", "team-1")]
    assert sorted(len(r.items) for r in pair_calls) == [5, 20]
    assert [len(r.items) for r in group_calls] == [5]
    assert sorted(s for r in pair_calls for s in r.body["messages"]) == private_stamps
    assert sorted(s for r in group_calls for s in r.body["messages"]) == group_stamps
    # (alice, bob) and (bob, alice) rows travel together.
    full = next(r for r in pair_calls if len(r.items) == 20)
    orders = {
        ("bob", "alice") if (s - BASE_MS) % 2 == 0 else ("alice", "bob")
        for s in full.body["messages"]
    }
    assert len(orders) == 2
    assert len(outcome.rows) == 30
    assert set(outcome.statuses().values()) == {"ok"}
    assert len({row["call_id"] for row in outcome.rows}) == 3


@pytest.mark.anyio
async def test_recaller_is_sent_and_never_mixed(harness: Harness) -> None:
    admin = {"id": "admin-1", "data": {"name": "Admin", "avatar": "/a.png"}}
    other = {"id": "admin-2"}
    harness.write_job(
        [
            private("u1", "u2", BASE_MS + 1, BASE_MS + 2, recaller=admin),
            private("u1", "u2", BASE_MS + 3, recaller=other),
            private("u2", "u1", BASE_MS + 4, recaller=admin),
            private("u1", "u2", BASE_MS + 5),
            private("u1", "u2", BASE_MS + 6, recaller=other),
        ]
    )
    harness.seed()
    outcome = await harness.run()
    sent = recalls(harness)
    by_recaller = {
        orjson.dumps(r.body.get("recaller"), option=orjson.OPT_SORT_KEYS): r for r in sent
    }
    assert len(sent) == len(by_recaller) == 3, "one call per recaller"
    stamps = {key: sorted(r.body["messages"]) for key, r in by_recaller.items()}
    sort = orjson.OPT_SORT_KEYS
    assert stamps == {
        orjson.dumps(admin, option=sort): [BASE_MS + 1, BASE_MS + 2, BASE_MS + 4],
        orjson.dumps(other, option=sort): [BASE_MS + 3, BASE_MS + 6],
        orjson.dumps(None): [BASE_MS + 5],
    }
    without = next(r for r in sent if r.body["messages"] == [BASE_MS + 5])
    assert "recaller" not in without.body
    assert set(outcome.statuses().values()) == {"ok"}


@pytest.mark.anyio
async def test_a_refused_call_is_split_so_the_others_are_recalled(harness: Harness) -> None:
    known_1, unknown, known_2 = BASE_MS + 10, BASE_MS + 11, BASE_MS + 12
    harness.write_job([private("u1", "u2", known_1, unknown, known_2)])
    harness.seed({("goeasy", str(unknown)): {"absent": True}})
    outcome = await harness.run()
    first, *singles = recalls(harness)
    assert first.body["messages"] == [known_1, unknown, known_2]
    assert first.status == 400
    assert sorted(r.body["messages"] for r in singles) == [[known_1], [unknown], [known_2]]
    assert all(r.seq > first.seq for r in singles)
    statuses = outcome.statuses()
    assert statuses == {str(known_1): "ok", str(unknown): "not_found", str(known_2): "ok"}
    row = outcome.by_target()[str(unknown)]
    assert row["error"] == "not-found"
    assert str(unknown) in row["message"]
    state = harness.emulators.goeasy.state
    assert state.is_recalled(known_1, user_a="u1", user_b="u2")
    assert state.is_recalled(known_2, user_a="u2", user_b="u1")
    assert outcome.summary.exit_code() == ExitCode.OK


@pytest.mark.anyio
async def test_wrong_appkey_stops_the_lane_with_every_item_accounted_for(
    harness: Harness,
) -> None:
    rows = [group(f"g-{g}", *(BASE_MS + 100 * g + i for i in range(25))) for g in range(3)]
    rows.append(
        {"vendor": "yunxin", "op": "recall", "conversation_id": "a|1|b", "message_server_id": "77"}
    )
    harness.write_job(rows)
    harness.seed()
    harness.break_secret(Vendor.GOEASY)
    outcome = await harness.run()
    sent = recalls(harness)
    assert {(r.status, r.code) for r in sent} == {(401, 401)}
    goeasy = [row for row in outcome.rows if row["vendor"] == "goeasy"]
    assert len(goeasy) == len({row["item_key"] for row in goeasy}) == 75
    counts = Counter((row["status"], row["error"]) for row in goeasy)
    assert counts.keys() <= {("failed", "auth-failed"), ("skipped", "lane-stopped")}
    # Exactly the items of the refused calls failed; every other one was never sent.
    assert counts[("failed", "auth-failed")] == sum(len(r.items) for r in sent)
    assert all(row["attempts"] == 0 for row in goeasy if row["status"] == "skipped")
    assert all(row["attempts"] == 1 for row in goeasy if row["status"] == "failed")
    assert outcome.by_target()["77"]["status"] == "ok"
    assert outcome.summary.stopped_lanes == {"goeasy.default": "auth-failed"}
    assert outcome.summary.exit_code() == ExitCode.HALTED
    # The refused key (it holds the real one's text) is nowhere in the results.
    assert APPKEY not in harness.out.read_text()


def test_the_appkey_never_shows_in_results_or_cli_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "goeasy.jsonl"
    missing = BASE_MS + 9
    rows = [
        private("u1", "u2", BASE_MS + 1, BASE_MS + 2, missing),  # refused, then split
        group("g-1", BASE_MS + 3),
        {"vendor": "goeasy", "op": "recall", "groupId": "g-1"},  # invalid: no messages
    ]
    job.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    scenario = tmp_path / "scenario.json"
    scenario.write_bytes(
        orjson.dumps([{"vendor": "goeasy", "target": str(missing), "absent": True}])
    )
    log = tmp_path / "run.log"
    args = ["run", str(job), "--emulate", "--emulate-scenario", str(scenario), "--yes"]
    code = main([*args, "--no-progress", "--log-format", "json", "--log-file", str(log)])
    out, err = capsys.readouterr()
    results = job.with_name("goeasy.results.jsonl").read_text()
    assert code == ExitCode.INCOMPLETE  # the invalid row
    statuses = Counter(orjson.loads(line)["status"] for line in results.splitlines())
    assert statuses == {"ok": 3, "not_found": 1, "invalid": 1}
    assert "goeasy.default" in out  # the plan and the summary were printed
    assert "call_split" in log.read_text()
    for text in (out, err, results, log.read_text()):
        assert APPKEY not in text
