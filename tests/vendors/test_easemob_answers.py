"""Easemob end to end: the batch fallback for any call size, a batch refused whole, answers that
are not Easemob's verdict (a bare 404, an unconfirmed user_channel result) and a user's own 429."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import cast

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from batchrecall.emulators.common import EmulatorSettings, LoggedRequest
from batchrecall.results.summary import ExitCode
from tests.harness import FAST_RUN, Harness
from tests.vendors.test_easemob import (
    EASEMOB,
    calls,
    delete_row,
    msg_id,
    recall_rows,
)
from tests.vendors.test_easemob_auth import agora_lane

pytestmark = pytest.mark.anyio


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def without_batch_recall(harness: Harness) -> None:
    harness.emulators.easemob.state.batch_recall_enabled = False
    assert harness.config.lane(EASEMOB).batch_recall, "the lane still plans batches"


def both_in_flight(harness: Harness) -> None:
    """No batch_recall is answered before two have arrived: the second call is on its way when
    the first learns that batch_recall is missing."""
    inner = harness.emulators.app
    arrived = 0
    both = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal arrived
        if scope["type"] == "http" and str(scope["path"]).endswith("/batch_recall"):
            arrived += 1
            if arrived == 2:
                both.set()
            await both.wait()
        await inner(scope, receive, send)

    harness.emulators.app = cast(Starlette, app)


def sent_alone(harness: Harness) -> Counter[str]:
    """How often each message was carried by a msg_recall answered 200."""
    return Counter(r.items[0] for r in calls(harness, "msg_recall") if r.status == 200)


# -- batch_recall missing: every call size ends in msg_recall ------------------------------------


async def test_a_one_message_job_meets_the_fallback_and_is_recalled(harness: Harness) -> None:
    harness.write_job(recall_rows(1))
    harness.seed()
    without_batch_recall(harness)
    outcome = await harness.run()
    assert [r.status for r in calls(harness, "batch_recall")] == [404]
    assert sent_alone(harness) == {msg_id(0): 1}
    (row,) = outcome.rows
    assert (row["status"], row["error"], row["attempts"]) == ("ok", "", 2)
    assert harness.emulators.easemob.state.is_recalled(msg_id(0))
    assert outcome.summary.exit_code() == ExitCode.OK


async def test_a_lone_force_row_meets_the_fallback_and_is_recalled(harness: Harness) -> None:
    """Forced and plain recalls travel in separate batches: the forced one is a call of one."""
    harness.write_job([*recall_rows(4), *recall_rows(1, 4, force=True)])
    harness.seed()
    without_batch_recall(harness)
    both_in_flight(harness)
    outcome = await harness.run()
    assert [len(r.items) for r in calls(harness, "batch_recall")] == [4, 1]
    assert sent_alone(harness) == {msg_id(i): 1 for i in range(5)}
    assert set(outcome.statuses().values()) == {"ok"}
    forced = [r for r in calls(harness, "msg_recall") if r.items == (msg_id(4),)]
    assert [r.body["force"] for r in forced] == [True]


async def test_thirty_one_messages_meet_the_fallback_and_are_recalled(harness: Harness) -> None:
    """A batch of 30 and a last one of 1, both in flight when the first 404 comes."""
    harness.write_job(recall_rows(31))
    harness.seed()
    without_batch_recall(harness)
    both_in_flight(harness)
    outcome = await harness.run()
    assert [len(r.items) for r in calls(harness, "batch_recall")] == [30, 1]
    assert sent_alone(harness) == {msg_id(i): 1 for i in range(31)}
    assert set(outcome.statuses().values()) == {"ok"}
    assert len(outcome.rows) == 31


async def test_an_agora_lane_recalls_a_lone_message_at_run_start(harness: Harness) -> None:
    """Agora's docs have no batch_recall: each run starts by learning it again."""
    harness.write_job(recall_rows(1))
    harness.seed()
    agora_lane(harness)
    without_batch_recall(harness)
    outcome = await harness.run()
    assert outcome.statuses() == {msg_id(0): "ok"}
    assert sent_alone(harness) == {msg_id(0): 1}


async def test_a_lone_message_whose_fallback_never_came_is_left_to_resume(
    harness: Harness,
) -> None:
    """With one attempt allowed, the call that met the 404 ends transient: --resume sends it."""
    harness.write_job(recall_rows(1))
    harness.seed()
    without_batch_recall(harness)
    first = await harness.run(replace(FAST_RUN, max_attempts=1))
    (row,) = first.rows
    assert (row["status"], row["error"]) == ("failed", "vendor-unavailable")
    second = await harness.run(resume=True)
    assert second.statuses() == {msg_id(0): "ok"}
    assert sent_alone(harness) == {msg_id(0): 1}


# -- a batch refused whole ------------------------------------------------------------------------


async def test_a_batch_refused_whole_is_resent_one_message_a_call(harness: Harness) -> None:
    """The documented answer (the single recall's error table for the call): every good message
    ends ok, the bad one with its own status, and none answered ok is sent again."""
    bad_window, bad_gone = msg_id(3), msg_id(7)
    harness.write_job(recall_rows(10))
    harness.seed(
        {("easemob", bad_window): {"age_s": 3600}, ("easemob", bad_gone): {"absent": True}}
    )
    assert harness.emulators.easemob.state.batch_refusal == "whole_call"
    outcome = await harness.run()
    batches = calls(harness, "batch_recall")
    first = batches[0]
    assert (first.status, first.code, len(first.items)) == (403, "message_recall_error", 10)
    assert all(len(r.items) == 1 for r in batches[1:])
    rows = outcome.by_target()
    assert (rows[bad_window]["status"], rows[bad_window]["error"]) == (
        "failed",
        "recall-window-exceeded",
    )
    assert (rows[bad_gone]["status"], rows[bad_gone]["error"]) == ("not_found", "not-found")
    good = [msg_id(i) for i in range(10) if msg_id(i) not in (bad_window, bad_gone)]
    assert {rows[m]["status"] for m in good} == {"ok"}
    answered_ok = Counter(r.items[0] for r in batches if r.status == 200 and len(r.items) == 1)
    assert answered_ok == dict.fromkeys(good, 1)
    carried = Counter(item for r in batches for item in r.items)
    assert all(carried[m] == 2 for m in carried), "the refused batch, then its own call"


async def test_a_batch_answered_per_message_is_read_message_by_message(harness: Harness) -> None:
    """The other shape (HTTP 200, each message's `recalled`; undocumented) is read as well."""
    bad = msg_id(2)
    harness.write_job(recall_rows(5))
    harness.seed({("easemob", bad): {"absent": True}})
    harness.emulators.easemob.state.batch_refusal = "per_message"
    outcome = await harness.run()
    (only,) = calls(harness, "batch_recall")
    assert only.status == 200
    assert outcome.statuses() == {msg_id(i): "not_found" if i == 2 else "ok" for i in range(5)}


# -- answers that are not Easemob's verdict -------------------------------------------------------


class BareNotFound(httpx.AsyncBaseTransport):
    """Answers the first `times` msg_recall requests with a gateway's 404 page."""

    def __init__(self, inner: httpx.AsyncBaseTransport, times: int) -> None:
        self.inner = inner
        self.times = times
        self.given = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/msg_recall") and self.given < self.times:
            self.given += 1
            return httpx.Response(404, text="<html>404 Not Found</html>")
        return await self.inner.handle_async_request(request)


async def test_a_404_without_an_easemob_body_is_tried_again(harness: Harness) -> None:
    harness.write_job(recall_rows(1))
    harness.seed()
    harness.set_lane(EASEMOB, batch_recall=False)
    gateway: list[BareNotFound] = []

    def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        gateway.append(BareNotFound(inner, times=2))
        return gateway[0]

    harness.wrap_transport = wrap
    outcome = await harness.run()
    (row,) = outcome.rows
    assert (row["status"], row["attempts"]) == ("ok", 3)
    assert gateway[0].given == 2


async def test_a_404_without_an_easemob_body_every_time_is_left_to_resume(
    harness: Harness,
) -> None:
    harness.write_job(recall_rows(1))
    harness.seed()
    harness.set_lane(EASEMOB, batch_recall=False)
    harness.wrap_transport = lambda inner: BareNotFound(inner, times=10_000)
    outcome = await harness.run()
    (row,) = outcome.rows
    assert (row["status"], row["error"], row["http_status"]) == (
        "failed",
        "vendor-unavailable",
        404,
    )
    harness.wrap_transport = None
    again = await harness.run(resume=True)
    assert again.statuses() == {msg_id(0): "ok"}


# -- a user's own 429 on user_channel -------------------------------------------------------------


async def test_a_users_429_holds_that_users_deletes_only(harness: Harness) -> None:
    """The user's client used up its 5 calls a minute. The first 429 is taken as the app's
    limit (the lane pauses once, SPEC §4); the same user refused again is their own window:
    only that user's delete waits (a minute), other users' deletes go meanwhile."""
    rows = [delete_row("busy", "peer"), *(delete_row(f"user{i}", "peer") for i in range(6))]
    harness.write_job(rows)
    harness.seed()
    state = harness.emulators.easemob.state
    for _ in range(5):
        assert state.admit_user_channel("busy")  # the user's own client calls, just now
    outcome = await harness.run()
    assert set(outcome.statuses().values()) == {"ok"}
    assert outcome.summary.throttles.get("easemob.default", 0) == 1, "one pause, not more"
    deletes: list[LoggedRequest] = calls(harness, "user_channel")
    busy = [r for r in deletes if r.items == ("busy/peer",)]
    assert [r.status for r in busy] == [429, 429, 200]
    assert busy[2].time - busy[1].time >= 60.0
    others = [r for r in deletes if r.items != ("busy/peer",)]
    assert [r.status for r in others] == [200] * 6
    # Virtual time jumps to the next deadline whenever the lane waits, so order tells: every
    # other user's delete left before the busy user's came the last time.
    assert all(r.seq < busy[2].seq for r in others), "not held by the busy user"
    assert outcome.by_target()["busy/peer"]["attempts"] == 3


async def test_several_users_429s_are_the_apps_limit_and_pause_the_lane(tmp_path: Path) -> None:
    """Easemob answers its app key's limit with the same 429 as a user's window: refusals of
    several users' deletes within a second pause and slow the whole lane (SPEC §4), so the job
    ends in seconds, not a minute a refused user."""
    harness = Harness(tmp_path, EmulatorSettings(rate=10))
    harness.write_job([delete_row(f"user{i}", "peer") for i in range(40)])
    harness.seed()
    started = harness.clock.now()
    outcome = await harness.run()
    assert set(outcome.statuses().values()) == {"ok"}
    assert outcome.summary.throttles.get("easemob.default", 0) >= 1, "the lane paused"
    assert harness.clock.now() - started < 30.0
