"""Yunxin adapter against its emulator: signatures, URL encoding, batches, types, throttles."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from batchrecall.emulators.common import LoggedRequest
from batchrecall.models import Vendor
from batchrecall.results.summary import ExitCode
from tests.harness import Harness

Row = dict[str, Any]
DAY_S = 86400.0
CONVERSATIONS = "/im/v2/conversations"


@dataclass(frozen=True)
class Wire:
    """One request as the server received it: raw (still encoded) path and query, headers."""

    raw_path: str
    query: str
    headers: dict[str, str]


def record_wire(harness: Harness) -> list[Wire]:
    """Wraps the emulators' app so that every Yunxin request's wire form is kept."""
    inner = harness.emulators.app
    seen: list[Wire] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope["path"]).startswith("/yunxin/"):
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            raw = bytes(scope["raw_path"]).decode().removeprefix("/yunxin")
            seen.append(Wire(raw, bytes(scope["query_string"]).decode(), headers))
        await inner(scope, receive, send)

    harness.emulators.app = cast(Starlette, app)
    return seen


def recall(conversation_id: str, message_id: str, **extra: Any) -> Row:
    return {
        "vendor": "yunxin",
        "op": "recall",
        "conversation_id": conversation_id,
        "message_server_id": message_id,
        **extra,
    }


def delete_conversation(conversation_id: str, **extra: Any) -> Row:
    return {
        "vendor": "yunxin",
        "op": "delete_conversation",
        "conversation_id": conversation_id,
        **extra,
    }


def clear_history(conversation_id: str, **extra: Any) -> Row:
    return {"vendor": "yunxin", "op": "clear_history", "conversation_id": conversation_id, **extra}


def batch_deletes(harness: Harness) -> list[LoggedRequest]:
    return [r for r in harness.requests("yunxin") if r.path.endswith("/actions/conversation_ids")]


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


@pytest.mark.anyio
async def test_every_request_is_signed_and_a_retry_signs_afresh(harness: Harness) -> None:
    harness.write_job(
        [
            recall("a|1|b", "1001"),
            recall("a|1|b", "1002"),
            delete_conversation("a|1|c"),
            clear_history("a|2|team", type=1),
        ]
    )
    harness.seed()
    harness.emulators.yunxin.faults.push("code_500", only_path_contains="/messages/1001")
    wire = record_wire(harness)
    outcome = await harness.run()
    assert set(outcome.statuses().values()) == {"ok"}
    state = harness.emulators.yunxin.state
    assert len(wire) == 5
    for request in wire:
        headers = request.headers
        assert headers["appkey"] == state.app_key
        assert headers["curtime"].isdigit()
        assert abs(int(headers["curtime"]) - harness.clock.now()) < 60
        assert 0 < len(headers["nonce"]) <= 128
        expected = hashlib.sha1(
            (state.app_secret + headers["nonce"] + headers["curtime"]).encode()
        ).hexdigest()
        assert headers["checksum"] == expected
        assert headers["checksum"] == headers["checksum"].lower()
    nonces = [request.headers["nonce"] for request in wire]
    assert len(set(nonces)) == len(nonces), "a fresh Nonce for every request"
    retried = [request for request in wire if "/messages/1001" in request.raw_path]
    assert len(retried) == 2
    assert outcome.by_target()["1001"]["attempts"] == 2
    assert state.app_secret not in str(outcome.rows)


@pytest.mark.anyio
async def test_conversation_ids_are_url_encoded(harness: Harness) -> None:
    harness.write_job(
        [
            recall("alice|1|bob", "2001"),
            clear_history("alice|2|team-1"),
            delete_conversation("alice|1|carol"),
            delete_conversation("alice|3|big-team"),
        ]
    )
    harness.seed()
    wire = record_wire(harness)
    outcome = await harness.run()
    assert set(outcome.statuses().values()) == {"ok"}
    raw = sorted(request.raw_path for request in wire)
    assert raw == [
        f"{CONVERSATIONS}/actions/conversation_ids",
        f"{CONVERSATIONS}/alice%7C1%7Cbob/messages/2001",
        f"{CONVERSATIONS}/alice%7C2%7Cteam-1/messages",
    ]
    (batch,) = [request for request in wire if request.raw_path.endswith("/conversation_ids")]
    assert batch.query == (
        "conversation_ids=alice%7C1%7Ccarol,alice%7C3%7Cbig-team&clear_message=false"
    )
    assert not any("|" in request.raw_path + request.query for request in wire)


@pytest.mark.anyio
async def test_delete_conversation_rows_of_different_clear_message_never_share_a_call(
    harness: Harness,
) -> None:
    harness.write_job(
        [
            delete_conversation("o|1|p1"),
            delete_conversation("o|1|p2", clear_message=True),
            delete_conversation("o|1|p3", clear_message=False),
            delete_conversation("o|1|p4", clear_message=True),
            delete_conversation("o|1|p5"),
        ]
    )
    harness.seed()
    harness.emulators.yunxin.state.add_message("o|1|p2", "3001")
    harness.emulators.yunxin.state.add_message("o|1|p3", "3002")
    outcome = await harness.run()
    sent = {r.query["clear_message"]: sorted(r.items) for r in batch_deletes(harness)}
    assert sent == {"true": ["o|1|p2", "o|1|p4"], "false": ["o|1|p1", "o|1|p3", "o|1|p5"]}
    assert len(batch_deletes(harness)) == 2
    state = harness.emulators.yunxin.state
    assert state.is_recalled("o|1|p2", "3001"), "clear_message=true deleted the messages"
    assert not state.is_recalled("o|1|p3", "3002")
    assert set(outcome.statuses().values()) == {"ok"}


@pytest.mark.anyio
async def test_101_conversations_take_two_calls(harness: Harness) -> None:
    ids = [f"owner|1|peer-{i:03d}" for i in range(101)]
    harness.write_job([delete_conversation(cid) for cid in ids])
    harness.seed()
    outcome = await harness.run()
    sent = batch_deletes(harness)
    assert sorted(len(r.items) for r in sent) == [1, 100]
    assert sorted(item for r in sent for item in r.items) == ids
    assert all(r.code == 200 for r in sent)
    assert len(outcome.rows) == 101
    assert set(outcome.statuses().values()) == {"ok"}
    assert Counter(row["call_id"] for row in outcome.rows).most_common(1)[0][1] == 100


@pytest.mark.anyio
async def test_failed_list_is_mapped_conversation_by_conversation(harness: Harness) -> None:
    known = ["o|1|k1", "o|2|k2", "o|1|k3"]
    unknown = ["o|1|gone-1", "o|3|gone-2"]
    harness.write_job([delete_conversation(cid) for cid in [known[0], *unknown, *known[1:]]])
    harness.seed({("yunxin", cid): {"absent": True} for cid in unknown})
    outcome = await harness.run()
    (call,) = batch_deletes(harness)
    assert len(call.items) == 5
    rows = outcome.by_target()
    for cid in known:
        assert (rows[cid]["status"], rows[cid]["error"]) == ("ok", "")
        assert not harness.emulators.yunxin.state.conversation_exists(cid)
    for cid in unknown:
        assert (rows[cid]["status"], rows[cid]["error"]) == ("not_found", "not-found")
        assert rows[cid]["vendor_code"] == "404"
    assert {row["attempts"] for row in outcome.rows} == {1}
    assert outcome.summary.exit_code() == ExitCode.OK


@pytest.mark.anyio
async def test_clear_history_types(harness: Harness) -> None:
    harness.write_job(
        [
            clear_history("o|1|roaming-only", type=1),
            clear_history("o|1|history-only", type=2),
            clear_history("o|1|both", type=3),
            clear_history("o|1|default"),
        ]
    )
    harness.seed()
    outcome = await harness.run()
    assert set(outcome.statuses().values()) == {"ok"}
    sent = {r.items[0]: r for r in harness.requests("yunxin")}
    assert {cid: r.query["type"] for cid, r in sent.items()} == {
        "o|1|roaming-only": "1",
        "o|1|history-only": "2",
        "o|1|both": "3",
        "o|1|default": "3",
    }
    assert all(r.path == f"{CONVERSATIONS}/{cid}/messages" for cid, r in sent.items())
    state = harness.emulators.yunxin.state
    assert state.history_cleared("o|1|roaming-only") == {"roaming"}
    assert state.history_cleared("o|1|history-only") == {"history"}
    assert state.history_cleared("o|1|both") == {"roaming", "history"}
    assert state.history_cleared("o|1|default") == {"roaming", "history"}


@pytest.mark.anyio
async def test_delete_message_and_recall_types(harness: Harness) -> None:
    harness.write_job(
        [
            {
                "vendor": "yunxin",
                "op": "delete_message",
                "conversation_id": "a|1|b",
                "message_server_id": "4001",
            },
            recall("a|1|b", "4002", type=1),
            recall("a|1|b", "4003", type=2),
            recall("a|1|b", "4004"),
        ]
    )
    harness.seed()
    outcome = await harness.run()
    assert set(outcome.statuses().values()) == {"ok"}
    sent = {r.items[0]: r.query["type"] for r in harness.requests("yunxin")}
    assert sent == {"4001": "3", "4002": "1", "4003": "2", "4004": "2"}
    state = harness.emulators.yunxin.state
    assert [state.removed_by("a|1|b", m) for m in ("4001", "4002", "4003", "4004")] == [3, 1, 2, 2]


@pytest.mark.anyio
async def test_ignore_revoke_time_recalls_past_the_two_way_window(harness: Harness) -> None:
    harness.write_job(
        [
            recall("a|1|b", "5001", ignore_revoke_time=True),
            recall("a|1|b", "5002"),
            recall("a|1|b", "5003", ignore_revoke_time=True),
        ]
    )
    harness.seed(
        {
            ("yunxin", "5001"): {"age_s": 2 * DAY_S},
            ("yunxin", "5002"): {"age_s": 2 * DAY_S},
            ("yunxin", "5003"): {"age_s": 31 * DAY_S},  # past even the 30-day limit
        }
    )
    outcome = await harness.run()
    queries = {r.items[0]: r.query for r in harness.requests("yunxin")}
    assert queries["5001"].get("ingore_revoke_time") == "1", "seed 003's own spelling"
    assert "ignore_revoke_time" not in queries["5001"]
    assert "ignore_revoke_time" not in queries["5002"]
    assert "ingore_revoke_time" not in queries["5002"]
    rows = outcome.by_target()
    assert (rows["5001"]["status"], rows["5001"]["error"]) == ("ok", "")
    assert (rows["5002"]["status"], rows["5002"]["error"]) == ("failed", "recall-window-exceeded")
    assert rows["5002"]["vendor_code"] == "508"
    assert (rows["5003"]["status"], rows["5003"]["error"]) == ("failed", "recall-window-exceeded")


@pytest.mark.anyio
async def test_a_416_pauses_the_whole_lane_for_ten_seconds(harness: Harness) -> None:
    harness.write_job([recall("a|1|b", str(6000 + i)) for i in range(12)])
    harness.seed()
    harness.emulators.yunxin.faults.push("throttle", only_path_contains="/messages/6003")
    outcome = await harness.run()
    assert set(outcome.statuses().values()) == {"ok"}
    sent = harness.requests("yunxin")
    (throttled,) = [r for r in sent if r.code == 416]
    later = [r for r in sent if r.seq > throttled.seq]
    assert len(later) == 12 - 3, "the throttled message and every one not yet sent"
    # Requests already under way when the answer came may still arrive; none starts later.
    started_later = [r for r in later if r.time > throttled.time]
    assert started_later
    assert min(r.time for r in started_later) - throttled.time >= 10.0
    assert outcome.by_target()["6003"]["attempts"] == 2
    assert outcome.summary.throttles["yunxin.default"] == 1


@pytest.mark.anyio
async def test_wrong_app_secret_stops_the_lane_with_auth_failed(harness: Harness) -> None:
    harness.write_job([recall("a|1|b", str(7000 + i)) for i in range(5)])
    harness.seed()
    harness.break_secret(Vendor.YUNXIN)
    outcome = await harness.run()
    sent = harness.requests("yunxin")
    assert {(r.status, r.code) for r in sent} == {(200, 414)}
    counts = Counter((row["status"], row["error"]) for row in outcome.rows)
    assert counts.keys() <= {("failed", "auth-failed"), ("skipped", "lane-stopped")}
    # Each item a refused request carried is failed; the lane stopped before sending the rest.
    assert counts[("failed", "auth-failed")] == len({r.items for r in sent if r.items})
    assert sum(counts.values()) == 5
    assert outcome.summary.stopped_lanes == {"yunxin.default": "auth-failed"}
    assert outcome.summary.exit_code() == ExitCode.HALTED
    assert not any(harness.emulators.yunxin.state.is_recalled("a|1|b", 7000 + i) for i in range(5))


@pytest.mark.anyio
async def test_every_option_goes_through_a_server_that_refuses_unknown_parameters(
    harness: Harness,
) -> None:
    """The emulator is strict (a parameter seed 003 does not name is refused with 414): every
    option a row can give is sent under a name the API page documents."""
    harness.write_job(
        [
            recall("a|1|b", "5101", ignore_revoke_time=True, description="spam", type=1),
            recall("a|2|t1", "5102", check_team_member_valid=True),
            {**recall("a|2|t1", "5103", check_team_member_valid=False), "op": "delete_message"},
            clear_history("a|1|b", type=1),
            delete_conversation("a|1|c", clear_message=True),
        ]
    )
    harness.seed({("yunxin", "5101"): {"age_s": 2 * DAY_S}})
    assert harness.emulators.yunxin.state.strict_params
    outcome = await harness.run()
    assert set(outcome.statuses().values()) == {"ok"}, outcome.rows
    assert {r.code for r in harness.requests("yunxin")} == {200}


@pytest.mark.anyio
async def test_check_team_member_valid_lifts_the_check_for_a_sender_who_left(
    harness: Harness,
) -> None:
    """A spam cleanup: the spammer was removed from the team first. Its team messages answer
    403 unless the row sends check_team_member_valid=false (seed 003, default true)."""
    harness.write_job(
        [
            recall("spammer|2|t1", "5201"),
            recall("spammer|2|t1", "5202", check_team_member_valid=False),
            {
                **recall("spammer|2|t1", "5203", check_team_member_valid=False),
                "op": "delete_message",
            },
            recall("spammer|1|u1", "5204"),
        ]
    )
    harness.seed()
    state = harness.emulators.yunxin.state
    state.leave_team("t1", "spammer")
    outcome = await harness.run()
    rows = outcome.by_target()
    assert (rows["5201"]["status"], rows["5201"]["error"]) == ("failed", "permission-denied")
    assert rows["5201"]["message"] == "not allow!"
    assert [rows[m]["status"] for m in ("5202", "5203", "5204")] == ["ok"] * 3
    queries = {r.items[0]: r.query for r in harness.requests("yunxin")}
    assert "check_team_member_valid" not in queries["5201"], "sent only when the row gives it"
    assert queries["5202"]["check_team_member_valid"] == "false"
    assert [state.removed_by("spammer|2|t1", m) for m in ("5201", "5202", "5203")] == [None, 2, 3]


# -- 414: a bad parameter or a checksum failure, told apart by the answers ---------------------


def probes(harness: Harness) -> list[LoggedRequest]:
    """The read-only requests that tell a signature refusal from a bad row."""
    return [r for r in harness.requests("yunxin") if r.method == "GET"]


@pytest.mark.anyio
async def test_rows_refused_for_their_content_first_never_stop_the_lane(harness: Harness) -> None:
    """The first ten rows are refused with 414 for their own content (moderated messages): they
    fail, the rest are recalled, and the lane runs to the end, however many come first."""
    harness.write_job([recall("a|1|b", str(7400 + i)) for i in range(30)])
    harness.seed()
    state = harness.emulators.yunxin.state
    state.checksum_refusal = "parameter error"  # a signature refusal would say the same
    for i in range(10):
        state.refusals[("a|1|b", str(7400 + i))] = "parameter error"
    outcome = await harness.run()
    rows = outcome.by_target()
    for i in range(10):
        row = rows[str(7400 + i)]
        assert (row["status"], row["error"], row["vendor_code"]) == ("failed", "bad-request", "414")
    assert {rows[str(7400 + i)]["status"] for i in range(10, 30)} == {"ok"}
    assert outcome.summary.stopped_lanes == {}
    assert {r.code for r in probes(harness)} == {200}
    # A resume sends nothing again: each refusal is the row's own, for good.
    before = len(harness.requests("yunxin"))
    again = await harness.run(resume=True)
    assert len(harness.requests("yunxin")) == before
    assert again.summary.stopped_lanes == {}


def refuse_after(harness: Harness, answered: int, action: Any) -> None:
    """Runs `action()` once the Yunxin emulator has answered `answered` requests."""
    inner = harness.emulators.app
    count = 0

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal count
        await inner(scope, receive, send)
        if scope["type"] == "http" and str(scope["path"]).startswith("/yunxin/"):
            count += 1
            if count == answered:
                action()

    harness.emulators.app = cast(Starlette, app)


@pytest.mark.anyio
async def test_a_414_about_one_message_fails_it_and_the_lane_goes_on(harness: Harness) -> None:
    """A parameter error whose text says "author" is no credential failure."""
    harness.write_job([recall("a|1|b", str(7100 + i)) for i in range(6)])
    harness.seed()
    text = "operator is not the author of this message"
    harness.emulators.yunxin.state.refusals[("a|1|b", "7100")] = text
    outcome = await harness.run()
    rows = outcome.by_target()
    bad = rows["7100"]
    assert (bad["status"], bad["error"], bad["message"]) == ("failed", "bad-request", text)
    assert bad["vendor_code"] == "414"
    assert bad["attempts"] == 1, "a probe, not a second try, showed the signature passes"
    assert [r.code for r in probes(harness)] == [200]
    assert {rows[str(7100 + i)]["status"] for i in range(1, 6)} == {"ok"}
    assert outcome.summary.stopped_lanes == {}
    assert outcome.summary.exit_code() == ExitCode.INCOMPLETE


@pytest.mark.anyio
async def test_a_checksum_refusal_in_any_words_stops_the_lane(harness: Harness) -> None:
    """The wording of a signature refusal is undocumented: the answers decide, not the words."""
    harness.write_job([recall("a|1|b", str(7200 + i)) for i in range(8)])
    harness.seed()
    harness.emulators.yunxin.state.checksum_refusal = "illegal request"
    harness.break_secret(Vendor.YUNXIN)
    outcome = await harness.run()
    counts = Counter((row["status"], row["error"]) for row in outcome.rows)
    assert counts.keys() <= {("failed", "auth-failed"), ("skipped", "lane-stopped")}
    assert sum(counts.values()) == 8
    assert probes(harness), "a probe refused alike decided it"
    assert {r.code for r in harness.requests("yunxin")} == {414}
    assert outcome.summary.stopped_lanes == {"yunxin.default": "auth-failed"}


@pytest.mark.anyio
async def test_a_secret_that_changes_mid_run_stops_the_lane(harness: Harness) -> None:
    harness.write_job([recall("a|1|b", str(7300 + i)) for i in range(20)])
    harness.seed()
    state = harness.emulators.yunxin.state
    refuse_after(harness, 3, lambda: setattr(state, "app_secret", "rotated-secret"))
    outcome = await harness.run()
    counts = Counter((row["status"], row["error"]) for row in outcome.rows)
    assert counts[("ok", "")] == 3
    assert counts.keys() <= {("ok", ""), ("failed", "auth-failed"), ("skipped", "lane-stopped")}
    assert outcome.summary.stopped_lanes == {"yunxin.default": "auth-failed"}


@pytest.mark.anyio
async def test_a_secret_that_changes_after_content_refusals_still_stops_the_lane(
    harness: Harness,
) -> None:
    """Content refusals and a signature refusal in the same words: the probes tell them apart."""
    harness.write_job([recall("a|1|b", str(7500 + i)) for i in range(20)])
    harness.seed()
    state = harness.emulators.yunxin.state
    state.checksum_refusal = "parameter error"
    for i in range(3):
        state.refusals[("a|1|b", str(7500 + i))] = "parameter error"
    refuse_after(harness, 10, lambda: setattr(state, "app_secret", "rotated-secret"))
    outcome = await harness.run()
    rows = outcome.by_target()
    assert {rows[str(7500 + i)]["error"] for i in range(3)} == {"bad-request"}
    counts = Counter((row["status"], row["error"]) for row in outcome.rows)
    assert counts.keys() <= {
        ("ok", ""),
        ("failed", "bad-request"),
        ("failed", "auth-failed"),
        ("skipped", "lane-stopped"),
    }
    assert counts[("failed", "auth-failed")] >= 1
    assert outcome.summary.stopped_lanes == {"yunxin.default": "auth-failed"}
    assert not any(state.is_recalled("a|1|b", 7500 + i) for i in range(3))


@pytest.mark.anyio
@pytest.mark.parametrize("code", [0, 201, 4100])
async def test_an_unrecognised_code_is_unknown_and_resent_by_resume(
    harness: Harness, code: int
) -> None:
    """Code 0 is the API page's placeholder example; 200 is success. Any code the documents do
    not name may have acted: unknown, with Yunxin's answer in message, never a verdict."""

    class Odd(httpx.AsyncBaseTransport):
        def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
            self.inner = inner

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if "/messages/7600" in request.url.path:
                return httpx.Response(200, json={"code": code, "msg": "string", "data": {}})
            return await self.inner.handle_async_request(request)

    harness.write_job([recall("a|1|b", "7600"), recall("a|1|b", "7601")])
    harness.seed()
    harness.wrap_transport = Odd
    first = await harness.run()
    row = first.by_target()["7600"]
    assert (row["status"], row["error"], row["vendor_code"]) == (
        "unknown",
        "vendor-error",
        str(code),
    )
    assert "string" in row["message"]
    assert first.by_target()["7601"]["status"] == "ok"
    harness.wrap_transport = None
    again = await harness.run(resume=True)
    assert again.statuses() == {"7600": "ok", "7601": "ok"}
    resent = [r for r in harness.requests("yunxin") if r.items == ("7600",)]
    assert len(resent) == 1, "the emulator saw only the resumed request"
