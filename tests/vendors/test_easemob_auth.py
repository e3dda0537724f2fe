"""Easemob credentials: a refused token request asked once per lane; Agora Chat app tokens built
locally; Agora's wording and the per-message failure body read as the vendors document them."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from batchrecall.config import LaneSettings, Secret
from batchrecall.errors import CallError
from batchrecall.models import LaneKey, Vendor
from batchrecall.vendors import Adapter
from batchrecall.vendors.easemob import EasemobAdapter
from tests.harness import FAST_RUN, Harness

EASEMOB = LaneKey(vendor=Vendor.EASEMOB, app="default")
APP_ID = "0123456789abcdef0123456789abcdef"
CERTIFICATE = "fedcba9876543210fedcba9876543210"
DAY_S = 86400.0

Row = dict[str, Any]


class VirtualTimeHarness(Harness):
    """Adapters read the virtual clock for the wall time too (Agora tokens carry it)."""

    def adapter(self, settings: LaneSettings, client: httpx.AsyncClient) -> Adapter:
        if settings.lane.vendor is Vendor.EASEMOB:
            now = self.clock.now
            return EasemobAdapter(settings, client, clock=now, wall_clock=now)
        return super().adapter(settings, client)


def recall_rows(n: int, **extra: Any) -> list[Row]:
    return [
        {
            "vendor": "easemob",
            "op": "recall",
            "msg_id": target(i),
            "to": "user-b",
            "chat_type": "chat",
            **extra,
        }
        for i in range(n)
    ]


def target(i: int) -> str:
    return str(1_800_000_000_000_000_000 + i)


def bearer_tokens(harness: Harness) -> list[str]:
    """Wraps the emulators' app to keep the bearer token of every Easemob API call."""
    inner = harness.emulators.app
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope["path"]).startswith("/easemob/"):
            headers = dict(scope["headers"])
            value = headers.get(b"authorization", b"").decode()
            if value:
                seen.append(value.removeprefix("Bearer "))
        await inner(scope, receive, send)

    harness.emulators.app = cast(Starlette, app)
    return seen


def agora_lane(harness: Harness, certificate: str = CERTIFICATE, lifetime_s: int = 3600) -> None:
    state = harness.emulators.easemob.state
    state.agora_app_id, state.agora_app_certificate = APP_ID, CERTIFICATE
    harness.set_lane(
        EASEMOB,
        auth="agora",
        credentials={"org_name": state.org_name, "app_name": state.app_name, "app_id": APP_ID},
        secrets={"app_certificate": Secret(certificate)},
        token_lifetime_s=lifetime_s,
    )


def calls(harness: Harness, api: str) -> list[Any]:
    return [r for r in harness.requests("easemob") if r.path.endswith("/" + api)]


# -- a refused token request ---------------------------------------------------------------


@pytest.mark.anyio
async def test_a_refused_token_request_is_asked_once_per_lane(tmp_path: Path) -> None:
    """Many calls waiting for the token at once: one request, one refusal, nothing sent."""
    harness = Harness(tmp_path)
    harness.write_job(recall_rows(95))
    harness.seed()
    harness.break_secret(Vendor.EASEMOB)
    outcome = await harness.run(replace(FAST_RUN, concurrency=16))
    tokens = calls(harness, "token")
    assert [(r.status, r.code) for r in tokens] == [(400, "invalid_grant")]
    assert calls(harness, "batch_recall") == []
    assert len(outcome.rows) == 95
    assert {row["attempts"] for row in outcome.rows} == {0}, "nothing reached the vendor"
    assert {(row["status"], row["error"]) for row in outcome.rows} <= {
        ("skipped", "lane-stopped"),
        ("failed", "auth-failed"),  # until the engine writes a refusal before sending as skipped
    }
    assert outcome.summary.stopped_lanes == {"easemob.default": "auth-failed"}


@pytest.mark.anyio
async def test_a_token_refusal_is_remembered_by_the_adapter(tmp_path: Path) -> None:
    """Asked by the lane again later (another call, a refresh after a 401): never re-sent."""
    harness = Harness(tmp_path)
    harness.break_secret(Vendor.EASEMOB)
    settings = harness.config.lane(EASEMOB)
    refusals: list[BaseException] = []

    async def prepare(adapter: Adapter) -> None:
        try:
            await adapter.prepare()
        except CallError as exc:
            refusals.append(exc)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=harness.emulators.app)) as http:
        adapter = harness.adapter(settings, http)
        async with anyio.create_task_group() as tasks:  # calls waiting for the token together
            for _ in range(10):
                tasks.start_soon(prepare, adapter)
        assert len(refusals) == 10
        for _ in range(3):
            with pytest.raises(CallError, match="token request refused") as caught:
                await adapter.prepare()
            error = caught.value
            assert error.code == "auth-failed"
            assert error.delivered is False
        await adapter.refresh_auth(0)
        with pytest.raises(CallError, match="token request refused"):
            await adapter.prepare()
    assert len(calls(harness, "token")) == 1


@pytest.mark.anyio
async def test_a_throttled_token_request_is_asked_again(tmp_path: Path) -> None:
    """Only a refusal is remembered: a throttle on the token endpoint is retried."""
    harness = Harness(tmp_path)
    harness.write_job(recall_rows(2))
    harness.seed()
    harness.emulators.easemob.faults.push("throttle", only_path_contains="/token")
    outcome = await harness.run()
    assert [r.status for r in calls(harness, "token")] == [429, 200]
    assert set(outcome.statuses().values()) == {"ok"}


# -- Agora Chat: app tokens built here -----------------------------------------------------


@pytest.mark.anyio
async def test_an_agora_lane_builds_its_app_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    harness = VirtualTimeHarness(tmp_path)
    harness.write_job(recall_rows(3))
    harness.seed()
    agora_lane(harness)
    seen = bearer_tokens(harness)
    outcome = await harness.run()
    assert set(outcome.statuses().values()) == {"ok"}
    assert calls(harness, "token") == [], "Agora Chat has no token endpoint"
    assert len(seen) == 1
    assert seen[0].startswith("007")
    printed = capsys.readouterr()
    for text in (printed.out, printed.err, harness.out.read_text()):
        assert seen[0] not in text
        assert CERTIFICATE not in text


@pytest.mark.anyio
async def test_an_agora_token_is_built_afresh_before_it_expires(tmp_path: Path) -> None:
    harness = VirtualTimeHarness(tmp_path)
    harness.write_job(recall_rows(40))
    harness.seed()
    agora_lane(harness, lifetime_s=60)
    harness.set_lane(EASEMOB, rate=1.0, batch_recall=False)  # 40 calls: about 40 s
    seen = bearer_tokens(harness)
    outcome = await harness.run()
    assert set(outcome.statuses().values()) == {"ok"}
    assert [r.status for r in harness.requests("easemob")] == [200] * 40, "never a 401"
    assert len(set(seen)) >= 2, "a new token at half the lifetime"
    assert len(set(seen)) <= 3


@pytest.mark.anyio
async def test_a_wrong_app_certificate_stops_the_agora_lane(tmp_path: Path) -> None:
    harness = VirtualTimeHarness(tmp_path)
    harness.write_job(recall_rows(30))
    harness.seed()
    agora_lane(harness, certificate="00000000000000000000000000000000")
    outcome = await harness.run(replace(FAST_RUN, concurrency=1))
    recalls = calls(harness, "batch_recall")
    assert [(r.status, r.code) for r in recalls] == [
        (401, "auth_bad_access_token"),
        (401, "auth_bad_access_token"),
    ], "a 401, one token built afresh, a second 401"
    counts = Counter((row["status"], row["error"]) for row in outcome.rows)
    assert counts == {("failed", "auth-failed"): 30}
    assert outcome.summary.stopped_lanes == {"easemob.default": "auth-failed"}


# -- Agora Chat's wording, and the per-message failure body on any status ------------------


@pytest.mark.anyio
@pytest.mark.parametrize("batch", [True, False], ids=["batch_recall", "msg_recall"])
async def test_agora_wording_is_read(tmp_path: Path, batch: bool) -> None:
    harness = VirtualTimeHarness(tmp_path)
    harness.write_job(recall_rows(3))
    harness.seed(
        {
            ("easemob", target(1)): {"to": "someone-else"},
            ("easemob", target(2)): {"age_s": 3600},
        }
    )
    agora_lane(harness)
    harness.emulators.easemob.state.wording = "agora"
    harness.set_lane(EASEMOB, batch_recall=batch)
    outcome = await harness.run()
    rows = outcome.by_target()
    assert (rows[target(0)]["status"], rows[target(0)]["error"]) == ("ok", "")
    assert (rows[target(1)]["status"], rows[target(1)]["error"], rows[target(1)]["message"]) == (
        "failed",
        "recipient-not-found",
        "can't find message to",
    )
    assert (rows[target(2)]["status"], rows[target(2)]["error"], rows[target(2)]["message"]) == (
        "failed",
        "recall-window-exceeded",
        "exceed call time limit",
    )


@pytest.mark.anyio
@pytest.mark.parametrize("batch", [True, False], ids=["batch_recall", "msg_recall"])
async def test_per_message_failures_are_read_on_any_http_status(
    tmp_path: Path, batch: bool
) -> None:
    """Seed 000's failure body `{"msgs":[{"msg_id","recalled"}]}`, here with HTTP 403/400:
    every message gets its own outcome, the recalled ones `ok`."""
    harness = Harness(tmp_path)
    harness.write_job(recall_rows(4))
    harness.seed(
        {
            ("easemob", target(1)): {"absent": True},
            ("easemob", target(2)): {"to": "someone-else"},
            ("easemob", target(3)): {"age_s": 3600},
        }
    )
    harness.emulators.easemob.state.recall_failure_shape = "msgs"
    harness.set_lane(EASEMOB, batch_recall=batch)
    outcome = await harness.run()
    answers = calls(harness, "batch_recall" if batch else "msg_recall")
    assert {r.status for r in answers} == ({403} if batch else {200, 403, 400})
    rows = outcome.by_target()
    assert {t: (rows[t]["status"], rows[t]["error"]) for t in rows} == {
        target(0): ("ok", ""),
        target(1): ("not_found", "not-found"),
        target(2): ("failed", "recipient-not-found"),
        target(3): ("failed", "recall-window-exceeded"),
    }
    assert {row["attempts"] for row in outcome.rows} == {1}
    assert harness.emulators.easemob.state.is_recalled(target(0))
