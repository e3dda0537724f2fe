"""Easemob adapter against its emulator: batch fallback, `force`, user_channel and tokens."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from batchrecall.emulators.common import LoggedRequest
from batchrecall.models import LaneKey, Vendor
from batchrecall.results.summary import ExitCode
from tests.harness import FAST_RUN, Harness

EASEMOB = LaneKey(vendor=Vendor.EASEMOB, app="default")
DAY_S = 86400.0
# The emulator's default lane: org and app of its config.
PREFIX = "/demo-org/demo-app"

Row = dict[str, Any]


def recall_rows(n: int, start: int = 0, **extra: Any) -> list[Row]:
    return [
        {
            "vendor": "easemob",
            "op": "recall",
            "msg_id": msg_id(i),
            "to": "user-b",
            "chat_type": "chat",
            **extra,
        }
        for i in range(start, start + n)
    ]


def msg_id(i: int) -> str:
    return str(1_600_000_000_000_000_000 + i)


def delete_row(username: str, channel: str, **extra: Any) -> Row:
    return {
        "vendor": "easemob",
        "op": "delete_conversation",
        "username": username,
        "channel": channel,
        "type": "chat",
        "delete_roam": True,
        **extra,
    }


def calls(harness: Harness, api: str) -> list[LoggedRequest]:
    """Logged requests to one API (`batch_recall`, `msg_recall`, `user_channel`, `token`)."""
    return [r for r in harness.requests("easemob") if r.path.endswith("/" + api)]


def after_each_token(harness: Harness, action: Callable[[int], None]) -> None:
    """Runs `action(n)` after the emulator answered its n-th token request (n from 1)."""
    inner = harness.emulators.app
    count = 0

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal count
        await inner(scope, receive, send)
        if scope["type"] == "http" and str(scope["path"]).endswith("/token"):
            count += 1
            action(count)

    harness.emulators.app = cast(Starlette, app)


def slow_batch_answers(harness: Harness, seconds: float) -> None:
    """Holds every batch_recall request for `seconds` of virtual time (network latency)."""
    inner = harness.emulators.app

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope["path"]).endswith("/batch_recall"):
            await harness.clock.sleep(seconds)
        await inner(scope, receive, send)

    harness.emulators.app = cast(Starlette, app)


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


# -- batch_recall unavailable ------------------------------------------------------------------


@pytest.mark.anyio
async def test_missing_batch_recall_falls_back_to_single_recalls(harness: Harness) -> None:
    harness.write_job(recall_rows(35))
    harness.seed()
    harness.emulators.easemob.state.batch_recall_enabled = False
    assert harness.config.lane(EASEMOB).batch_recall  # the config still asks for batches
    outcome = await harness.run()
    batches = calls(harness, "batch_recall")
    singles = calls(harness, "msg_recall")
    assert batches[0].status == 404
    assert {r.status for r in batches} == {404}
    # At most the two calls planned as batches reach batch_recall; after its 404, none does.
    assert len(batches) <= 2
    assert all(len(r.items) == 1 for r in singles)
    assert Counter(item for r in singles for item in r.items) == Counter(
        msg_id(i) for i in range(35)
    ), "every message is sent exactly once by itself"
    refused = set(batches[0].items)
    assert len(refused) == 30
    assert all(r.seq > batches[0].seq for r in singles if r.items[0] in refused)
    carried = Counter(item for r in harness.requests("easemob") for item in r.items)
    assert all(1 <= row["attempts"] <= carried[row["target"]] for row in outcome.rows)
    assert set(outcome.statuses().values()) == {"ok"}
    assert outcome.summary.exit_code() == ExitCode.OK


@pytest.mark.anyio
async def test_fallback_attempts_include_the_refused_batch_request(harness: Harness) -> None:
    harness.write_job(recall_rows(3))
    harness.seed()
    harness.emulators.easemob.state.batch_recall_enabled = False
    outcome = await harness.run()
    assert {row["attempts"] for row in outcome.rows} == {2}


@pytest.mark.anyio
async def test_batch_planned_before_the_fallback_is_split_before_sending(
    harness: Harness,
) -> None:
    """A second batch call already waiting for its turn when the first one learns that
    batch_recall is missing goes out as single recalls, never as a malformed single call."""
    harness.write_job(recall_rows(65))
    harness.seed()
    harness.emulators.easemob.state.batch_recall_enabled = False
    harness.set_lane(EASEMOB, rate=1.0)
    slow_batch_answers(harness, 0.5)
    outcome = await harness.run()
    assert len(calls(harness, "batch_recall")) == 1
    singles = calls(harness, "msg_recall")
    assert len(singles) == 65
    assert all(len(r.items) == 1 and r.status == 200 for r in singles)
    assert set(outcome.statuses().values()) == {"ok"}
    assert len(outcome.rows) == 65


@pytest.mark.anyio
async def test_batch_recall_false_sends_msg_recall_from_the_start(harness: Harness) -> None:
    harness.write_job(recall_rows(4))
    harness.seed()
    harness.set_lane(EASEMOB, batch_recall=False)
    outcome = await harness.run()
    assert calls(harness, "batch_recall") == []
    singles = calls(harness, "msg_recall")
    assert sorted(item for r in singles for item in r.items) == [msg_id(i) for i in range(4)]
    assert all(len(r.items) == 1 for r in singles)
    assert all(r.body["msg_id"] == r.items[0] and r.body["to"] == "user-b" for r in singles)
    assert {row["attempts"] for row in outcome.rows} == {1}
    assert len({row["call_id"] for row in outcome.rows}) == 4
    assert set(outcome.statuses().values()) == {"ok"}


# -- force -------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("batch", [True, False], ids=["batch_recall", "msg_recall"])
async def test_force_is_always_sent_and_read_as_documented(harness: Harness, batch: bool) -> None:
    forced_old, forced_between, plain_old, plain_new, plain_explicit = (msg_id(i) for i in range(5))
    harness.write_job(
        [
            *recall_rows(1, 0, force=True),
            *recall_rows(1, 1, force=True),
            *recall_rows(1, 2),  # no `force` in the row
            *recall_rows(1, 3),
            *recall_rows(1, 4, force=False),
        ]
    )
    harness.seed(
        {
            ("easemob", forced_old): {"age_s": 8 * DAY_S},  # past the 7-day storage period
            ("easemob", forced_between): {"age_s": 3600},  # past the 2-minute window
            ("easemob", plain_old): {"age_s": 8 * DAY_S},
        }
    )
    harness.set_lane(EASEMOB, batch_recall=batch)
    outcome = await harness.run()

    sent: dict[str, Any] = {}
    for request in calls(harness, "batch_recall" if batch else "msg_recall"):
        entries = request.body["msgs"] if batch else [request.body]
        for entry in entries:
            sent[entry["msg_id"]] = entry
    assert all(isinstance(entry.get("force"), bool) for entry in sent.values())
    assert {m: entry["force"] for m, entry in sent.items()} == {
        forced_old: True,
        forced_between: True,
        plain_old: False,
        plain_new: False,
        plain_explicit: False,
    }

    rows = outcome.by_target()
    assert (rows[forced_old]["status"], rows[forced_old]["error"]) == ("ok", "")
    assert harness.emulators.easemob.state.is_recalled(forced_old)
    assert (rows[forced_between]["status"], rows[forced_between]["error"]) == (
        "failed",
        "recall-window-exceeded",
    )
    assert "exceed recall time" in rows[forced_between]["message"]
    assert not harness.emulators.easemob.state.is_recalled(forced_between)
    assert (rows[plain_old]["status"], rows[plain_old]["error"]) == ("not_found", "not-found")
    assert rows[plain_new]["status"] == rows[plain_explicit]["status"] == "ok"
    # Each batch held a refused message, so it was refused whole and resent one message a call.
    assert {row["attempts"] for row in outcome.rows} == ({2} if batch else {1})


# -- delete_conversation -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_delete_conversation_sends_a_json_body_on_delete(harness: Harness) -> None:
    harness.write_job(
        [
            delete_row("owner-1", "peer-1"),
            delete_row("owner-2", "group-9", type="groupchat", delete_roam=False),
        ]
    )
    harness.seed()
    outcome = await harness.run()
    sent = {r.path: r for r in calls(harness, "user_channel")}
    assert sent.keys() == {
        f"{PREFIX}/users/owner-1/user_channel",
        f"{PREFIX}/users/owner-2/user_channel",
    }
    assert {r.method for r in sent.values()} == {"DELETE"}
    first = sent[f"{PREFIX}/users/owner-1/user_channel"].body
    second = sent[f"{PREFIX}/users/owner-2/user_channel"].body
    assert first == {"channel": "peer-1", "type": "chat", "delete_roam": True}
    assert second == {"channel": "group-9", "type": "groupchat", "delete_roam": False}
    state = harness.emulators.easemob.state
    assert not state.conversation_exists("owner-1", "peer-1", "chat")
    assert state.roam_deleted("owner-1", "peer-1", "chat")
    assert not state.conversation_exists("owner-2", "group-9", "groupchat")
    assert not state.roam_deleted("owner-2", "group-9", "groupchat")
    assert outcome.statuses() == {"owner-1/peer-1": "ok", "owner-2/group-9": "ok"}


@pytest.mark.anyio
async def test_delete_conversation_of_an_unknown_user_is_not_found(harness: Harness) -> None:
    harness.write_job([delete_row("ghost", "peer-1"), delete_row("owner-1", "peer-1")])
    harness.seed({("easemob", "ghost/peer-1"): {"absent": True}})
    assert not harness.emulators.easemob.state.user_exists("ghost")
    outcome = await harness.run()
    ghost = outcome.by_target()["ghost/peer-1"]
    answered = [r for r in calls(harness, "user_channel") if "/ghost/" in r.path]
    assert [(r.status, r.code) for r in answered] == [(404, "service_resource_not_found")]
    assert (ghost["status"], ghost["error"], ghost["attempts"]) == ("not_found", "not-found", 1)
    assert ghost["http_status"] == 404
    assert outcome.by_target()["owner-1/peer-1"]["status"] == "ok"
    assert outcome.summary.exit_code() == ExitCode.OK


@pytest.mark.anyio
async def test_five_deletes_a_minute_per_username_without_holding_up_others(
    harness: Harness,
) -> None:
    rows = [delete_row("user-a", f"peer-{i}") for i in range(7)]
    rows += [delete_row("user-b", f"peer-{i}") for i in range(2)]
    harness.write_job(rows)
    harness.seed()
    outcome = await harness.run()
    assert set(outcome.statuses().values()) == {"ok"}
    deletes = calls(harness, "user_channel")
    assert all(r.status == 200 for r in deletes), "the vendor never had to throttle"
    assert not [r for r in harness.requests("easemob") if r.status == 429]
    of_a = [r for r in deletes if "/users/user-a/" in r.path]
    of_b = [r for r in deletes if "/users/user-b/" in r.path]
    assert (len(of_a), len(of_b)) == (7, 2)
    times = [r.time for r in of_a]
    for start in times:
        in_window = [t for t in times if start <= t < start + 60.0]
        assert len(in_window) <= 5, f"{len(in_window)} calls for user-a within 60 s"
    assert times[5] - times[0] >= 60.0
    sixth_of_a = of_a[5]
    assert all(r.seq < sixth_of_a.seq and r.time < sixth_of_a.time for r in of_b)


# -- tokens ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_401_after_the_token_expired_refreshes_it_once(harness: Harness) -> None:
    harness.write_job(recall_rows(3))
    harness.seed()
    state = harness.emulators.easemob.state
    after_each_token(harness, lambda n: state.expire_tokens() if n == 1 else None)
    outcome = await harness.run()
    assert len(calls(harness, "token")) == 2
    recalls = calls(harness, "batch_recall")
    assert [r.status for r in recalls] == [401, 200]
    assert set(outcome.statuses().values()) == {"ok"}
    assert {row["attempts"] for row in outcome.rows} == {2}
    assert len({row["call_id"] for row in outcome.rows}) == 1


@pytest.mark.anyio
async def test_a_second_401_stops_the_lane_with_auth_failed(harness: Harness) -> None:
    harness.write_job(
        [
            *recall_rows(30),
            {
                "vendor": "yunxin",
                "op": "recall",
                "conversation_id": "a|1|b",
                "message_server_id": "123456",
            },
        ]
    )
    harness.seed()
    state = harness.emulators.easemob.state
    after_each_token(harness, lambda _: state.expire_tokens())
    outcome = await harness.run(replace(FAST_RUN, concurrency=1))
    assert len(calls(harness, "token")) == 2, "the token is refreshed once, not again"
    recalls = calls(harness, "batch_recall")
    assert [r.status for r in recalls] == [401, 401]
    assert recalls[0].items == recalls[1].items
    easemob = [row for row in outcome.rows if row["vendor"] == "easemob"]
    assert len(easemob) == 30
    counts = Counter((row["status"], row["error"], row["attempts"]) for row in easemob)
    assert counts == {("failed", "auth-failed", 2): 30}
    assert outcome.by_target()["123456"]["status"] == "ok"
    assert outcome.summary.stopped_lanes == {"easemob.default": "auth-failed"}
    assert outcome.summary.exit_code() == ExitCode.HALTED
