"""One contract every adapter passes against its own emulator (engine, lanes and results included).

Batch limits here are the vendors' documented numbers, written out again on purpose: a wrong limit
in an adapter must fail these tests, not agree with them.

A vendor plugin runs the same contract (README: vendor plugins): with the plugin installed,
`BATCHRECALL_CONTRACT_PROFILES=package.module:PROFILES` names a list of its profiles (dicts of
Profile's fields), and `BATCHRECALL_CONTRACT_VENDOR=name` keeps only that vendor's.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from batchrecall.models import Vendor
from batchrecall.results.summary import ExitCode
from tests.harness import FAST_RUN, Harness

Row = dict[str, Any]


@dataclass(frozen=True)
class Profile:
    name: str
    vendor: Vendor
    limit: int
    row: Callable[[int], Row]
    target: Callable[[int], str]
    has_window: bool = True
    item_path: str = "/"

    def rows(self, n: int) -> list[Row]:
        return [self.row(i) for i in range(n)]


PROFILES = [
    Profile(
        name="easemob-recall",
        vendor=Vendor.EASEMOB,
        limit=30,  # Easemob batch_recall: at most 30 messages a request
        row=lambda i: {
            "vendor": "easemob",
            "op": "recall",
            "msg_id": str(1_300_000_000_000_000_000 + i),
            "to": "user-b",
            "chat_type": "chat",
            "from": "user-a",
        },
        target=lambda i: str(1_300_000_000_000_000_000 + i),
        item_path="/messages/",
    ),
    Profile(
        name="goeasy-recall",
        vendor=Vendor.GOEASY,
        limit=20,  # GoEasy: at most 20 timestamps a call
        row=lambda i: {
            "vendor": "goeasy",
            "op": "recall",
            "userAId": "user-a",
            "userBId": "user-b",
            "messages": [1_763_000_000_000 + i],
        },
        target=lambda i: str(1_763_000_000_000 + i),
    ),
    Profile(
        name="yunxin-recall",
        vendor=Vendor.YUNXIN,
        limit=1,  # Yunxin v2: one message a call
        row=lambda i: {
            "vendor": "yunxin",
            "op": "recall",
            "conversation_id": "user-a|1|user-b",
            "message_server_id": str(770_000_000_000 + i),
        },
        target=lambda i: str(770_000_000_000 + i),
    ),
    Profile(
        name="yunxin-delete-conversation",
        vendor=Vendor.YUNXIN,
        limit=100,  # Yunxin batch conversation delete: at most 100 ids a call
        row=lambda i: {
            "vendor": "yunxin",
            "op": "delete_conversation",
            "conversation_id": f"owner|1|peer-{i}",
        },
        target=lambda i: f"owner|1|peer-{i}",
        has_window=False,
    ),
    # Tencent's admin recalls have no time limit, only the roaming period (research §T3.1,
    # §T3.2): past it a message "does not exist" (not_found), so no profile has a window.
    Profile(
        name="tencent-recall-c2c",
        vendor=Vendor.TENCENT,
        limit=1,  # admin_msgwithdraw: one MsgKey a call
        row=lambda i: {
            "vendor": "tencent",
            "op": "recall",
            "From_Account": "user-a",
            "To_Account": "user-b",
            "MsgKey": f"{31906 + i}_833502_1572869830",
        },
        target=lambda i: f"{31906 + i}_833502_1572869830",
        has_window=False,
        item_path="/admin_msgwithdraw",
    ),
    Profile(
        name="tencent-recall-group",
        vendor=Vendor.TENCENT,
        limit=10,  # group_msg_recall: at most 10 seqs a call
        row=lambda i: {
            "vendor": "tencent",
            "op": "recall",
            "GroupId": "@TGS#2J4SZEAEL",
            "MsgSeq": 100 + i,
        },
        target=lambda i: f"@TGS#2J4SZEAEL#{100 + i}",
        has_window=False,
        item_path="/group_msg_recall",
    ),
    Profile(
        name="tencent-delete-message",
        vendor=Vendor.TENCENT,
        limit=30,  # delete_c2c_msg_ramble: at most 30 MsgKeys a call
        row=lambda i: {
            "vendor": "tencent",
            "op": "delete_message",
            "Operator_Account": "user0",
            "Peer_Account": "user1",
            "MsgKey": f"{1472765512 + i}_1000001_1697790495",
        },
        target=lambda i: f"user0/{1472765512 + i}_1000001_1697790495",
        has_window=False,
        item_path="/delete_c2c_msg_ramble",
    ),
    Profile(
        name="tencent-delete-conversation",
        vendor=Vendor.TENCENT,
        limit=1,  # recentcontact/delete: one conversation a call
        row=lambda i: {
            "vendor": "tencent",
            "op": "delete_conversation",
            "From_Account": f"owner-{i}",
            "To_Account": "peer",
            "ClearRamble": 1,
        },
        target=lambda i: f"owner-{i}/peer",
        has_window=False,
        item_path="/recentcontact/",
    ),
    Profile(
        name="rongcloud-recall",
        vendor=Vendor.RONGCLOUD,
        limit=1,  # RongCloud /message/recall.json: one messageUID a call
        row=lambda i: {
            "vendor": "rongcloud",
            "op": "recall",
            "fromUserId": "user-a",
            "conversationType": 1,
            "targetId": "user-b",
            "messageUID": f"C{i:03d}-7VA9-G4DD-4V5P",
            "sentTime": 1_763_000_000_000 + i,
        },
        target=lambda i: f"C{i:03d}-7VA9-G4DD-4V5P",
        has_window=False,  # no recall window is documented for the server API
        item_path="/message/recall",
    ),
    Profile(
        name="rongcloud-clear-history",
        vendor=Vendor.RONGCLOUD,
        limit=1,  # one conversation a call
        row=lambda i: {
            "vendor": "rongcloud",
            "op": "clear_history",
            "fromUserId": "owner",
            "conversationType": 3,
            "targetId": f"group-{i}",
        },
        target=lambda i: f"owner/3/group-{i}",
        has_window=False,
        item_path="/clean",
    ),
]


def _plugin_profiles(ref: str) -> list[Profile]:
    """The profiles a plugin gives (`package.module:NAME`, a list of dicts of Profile's fields)."""
    module, _, name = ref.partition(":")
    given: list[dict[str, Any]] = getattr(importlib.import_module(module), name)
    return [Profile(**{**entry, "vendor": Vendor(entry["vendor"])}) for entry in given]


if os.environ.get("BATCHRECALL_CONTRACT_PROFILES"):
    PROFILES += _plugin_profiles(os.environ["BATCHRECALL_CONTRACT_PROFILES"])
if os.environ.get("BATCHRECALL_CONTRACT_VENDOR"):
    _only = os.environ["BATCHRECALL_CONTRACT_VENDOR"]
    SELECTED = [p for p in PROFILES if p.vendor == _only]
else:
    SELECTED = PROFILES


def _item_requests(harness: Harness, vendor: Vendor) -> list[Any]:
    """Requests that carried items (Easemob token requests carry none)."""
    return [r for r in harness.requests(str(vendor)) if not r.path.endswith("/token")]


@pytest.fixture(params=SELECTED, ids=lambda p: p.name)
def profile(request: pytest.FixtureRequest) -> Profile:
    param: Profile = request.param
    return param


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


@pytest.mark.anyio
async def test_recall_ok(profile: Profile, harness: Harness) -> None:
    harness.write_job(profile.rows(3))
    harness.seed()
    outcome = await harness.run()
    assert set(outcome.statuses().values()) == {"ok"}
    assert {row["attempts"] for row in outcome.rows} == {1}
    assert outcome.summary.exit_code() == ExitCode.OK


@pytest.mark.anyio
@pytest.mark.parametrize("extra", [0, 1], ids=["at-limit", "one-over"])
async def test_calls_are_split_at_the_vendor_limit(
    profile: Profile, harness: Harness, extra: int
) -> None:
    harness.write_job(profile.rows(profile.limit + extra))
    harness.seed()
    outcome = await harness.run()
    requests = _item_requests(harness, profile.vendor)
    assert set(outcome.statuses().values()) == {"ok"}
    assert max(len(r.items) for r in requests) <= profile.limit
    expected_calls = -(-(profile.limit + extra) // profile.limit)
    assert len(requests) == expected_calls
    assert len({row["call_id"] for row in outcome.rows}) == expected_calls


@pytest.mark.anyio
async def test_not_found(profile: Profile, harness: Harness) -> None:
    harness.write_job(profile.rows(1))
    outcome = await harness.run()  # nothing seeded: the vendor has never seen it
    row = outcome.by_target()[profile.target(0)]
    assert (row["status"], row["error"]) == ("not_found", "not-found")
    assert outcome.summary.exit_code() == ExitCode.OK


@pytest.mark.anyio
async def test_window_exceeded(profile: Profile, harness: Harness) -> None:
    if not profile.has_window:
        pytest.skip("this op has no recall window")
    harness.write_job(profile.rows(1))
    harness.seed({(str(profile.vendor), profile.target(0)): {"age_s": 5 * 3600}})
    outcome = await harness.run()
    row = outcome.by_target()[profile.target(0)]
    assert (row["status"], row["error"]) == ("failed", "recall-window-exceeded")
    assert row["attempts"] == 1  # permanent: never retried
    assert outcome.summary.exit_code() == ExitCode.INCOMPLETE


@pytest.mark.anyio
@pytest.mark.parametrize("retry_after", [None, 3.0], ids=["no-retry-after", "retry-after"])
async def test_throttled_then_recovered(
    profile: Profile, harness: Harness, retry_after: float | None
) -> None:
    harness.write_job(profile.rows(1))
    harness.seed()
    vendor = harness.emulators.by_vendor[str(profile.vendor)]
    vendor.faults.push("throttle", retry_after=retry_after, only_path_contains=profile.item_path)
    outcome = await harness.run()
    row = outcome.by_target()[profile.target(0)]
    assert (row["status"], row["attempts"]) == ("ok", 2)
    first, second = _item_requests(harness, profile.vendor)
    waited = second.time - first.time
    floor = 10.0 if profile.vendor is Vendor.YUNXIN else (retry_after or 0.0)
    assert waited >= floor
    assert outcome.summary.throttles[f"{profile.vendor}.default"] == 1


@pytest.mark.anyio
async def test_server_error_is_retried(profile: Profile, harness: Harness) -> None:
    harness.write_job(profile.rows(2))
    harness.seed()
    vendor = harness.emulators.by_vendor[str(profile.vendor)]
    vendor.faults.push("http_503", only_path_contains=profile.item_path)
    outcome = await harness.run()
    assert set(outcome.statuses().values()) == {"ok"}
    assert max(row["attempts"] for row in outcome.rows) == 2


@pytest.mark.anyio
async def test_auth_failure_stops_only_its_lane(profile: Profile, harness: Harness) -> None:
    other = next(p for p in PROFILES if p.vendor is not profile.vendor)
    harness.write_job([*profile.rows(3), *other.rows(2)])
    harness.seed()
    harness.break_secret(profile.vendor)
    outcome = await harness.run()
    mine = [outcome.by_target()[profile.target(i)] for i in range(3)]
    assert {(r["status"], r["error"]) for r in mine} <= {
        ("failed", "auth-failed"),
        ("skipped", "lane-stopped"),
    }
    if profile.vendor is Vendor.EASEMOB:
        # The token request is refused: no item was sent, so none is `failed` (SPEC §4).
        assert {(r["status"], r["attempts"]) for r in mine} == {("skipped", 0)}
    else:
        assert ("failed", "auth-failed") in {(r["status"], r["error"]) for r in mine}
    theirs = [outcome.by_target()[other.target(i)] for i in range(2)]
    assert {r["status"] for r in theirs} == {"ok"}
    assert outcome.summary.exit_code() == ExitCode.HALTED
    assert outcome.summary.stopped_lanes == {f"{profile.vendor}.default": "auth-failed"}


@pytest.mark.anyio
async def test_partial_failure_is_mapped_item_by_item(profile: Profile, harness: Harness) -> None:
    n = min(3, max(profile.limit, 3))
    harness.write_job(profile.rows(n))
    harness.seed({(str(profile.vendor), profile.target(1)): {"absent": True}})
    outcome = await harness.run()
    statuses = outcome.statuses()
    assert statuses[profile.target(1)] == "not_found"
    assert statuses[profile.target(0)] == statuses[profile.target(2)] == "ok"


@pytest.mark.anyio
async def test_a_lone_item_is_one_call_of_one(profile: Profile, harness: Harness) -> None:
    harness.write_job(profile.rows(1))
    harness.seed()
    outcome = await harness.run()
    (request,) = _item_requests(harness, profile.vendor)
    assert len(request.items) == 1
    assert outcome.statuses() == {profile.target(0): "ok"}


@pytest.mark.anyio
async def test_resume_after_a_stopped_lane_sends_each_item_once_more(
    profile: Profile, harness: Harness
) -> None:
    n = profile.limit + 1
    harness.write_job(profile.rows(n))
    harness.seed()
    good = harness.config
    harness.break_secret(profile.vendor)
    first = await harness.run()
    assert first.summary.stopped_lanes == {f"{profile.vendor}.default": "auth-failed"}
    before = len(_item_requests(harness, profile.vendor))
    harness.config = good
    again = await harness.run(resume=True)
    assert set(again.statuses().values()) == {"ok"}
    assert len(again.statuses()) == n
    resent = _item_requests(harness, profile.vendor)[before:]
    carried = [item for request in resent for item in request.items]
    assert sorted(carried) == sorted({*carried}), "no item sent twice"
    assert len(carried) == n


@pytest.mark.anyio
async def test_resume_sends_only_what_is_left(profile: Profile, harness: Harness) -> None:
    harness.write_job(profile.rows(3))
    harness.seed()
    vendor = harness.emulators.by_vendor[str(profile.vendor)]
    vendor.faults.push("http_503", only_path_contains=profile.item_path)
    first = await harness.run(replace(FAST_RUN, max_attempts=1))
    left = {t for t, status in first.statuses().items() if status != "ok"}
    assert left, "the 503 left some item to do"
    assert {first.by_target()[t]["error"] for t in left} == {"vendor-unavailable"}
    sent_before = len(_item_requests(harness, profile.vendor))
    second = await harness.run(resume=True)
    resent = _item_requests(harness, profile.vendor)[sent_before:]
    assert sorted(i for r in resent for i in r.items) == sorted(
        i for t in left for i in _carried(profile, t)
    )
    assert set(second.statuses().values()) == {"ok"}
    assert second.summary.exit_code() == ExitCode.OK


def _carried(profile: Profile, target: str) -> tuple[str, ...]:
    """The ids a request names for an item of this target (its log's `items`)."""
    if profile.vendor is Vendor.RONGCLOUD and "/" in target:
        return (target.rsplit("/", 1)[1],)  # the clean names the conversation's targetId
    if profile.vendor is Vendor.TENCENT and "#" in target:
        return (target.rsplit("#", 1)[1],)  # a group recall names its seqs
    if profile.vendor is Vendor.TENCENT and profile.item_path == "/delete_c2c_msg_ramble":
        return (target.rsplit("/", 1)[1],)  # a one-side delete names the MsgKeys
    return (target,)
