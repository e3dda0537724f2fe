"""The Tencent Cloud IM adapter: its UserSig, its query, batching, and the answers it reads."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from structlog.testing import capture_logs

from batchrecall.config import LaneSettings, Secret
from batchrecall.emulators.tencent_usersig import SigCheck, check_usersig, decode_usersig
from batchrecall.errors import ThrottledError
from batchrecall.intake.reader import read_job
from batchrecall.models import Call, Item, LaneKey, Vendor
from batchrecall.redact import redact
from batchrecall.results.summary import ExitCode
from batchrecall.vendors.tencent import USERSIG_LIFETIME_S, TencentAdapter
from batchrecall.vendors.tencent_usersig import build_usersig, signature, signed_content
from tests.harness import Harness

# research/vendors-tencent-rongcloud.md §T2.4 [CALC]: the vendor's Python reference with the
# SDKs' demo inputs and time.time frozen at 1700000000 (Python's zlib at its default level).
VECTOR_KEY = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
VECTOR_CONTENT = (
    "TLS.identifier:xiaojun\nTLS.sdkappid:1400000000\nTLS.time:1700000000\nTLS.expire:15552000\n"
)
VECTOR_SIG = "LvA7d/Iw7gSsnskvVzBDPOCCDbuNCw4GHwTC0bip+B4="
VECTOR_USERSIG = (
    "eJyrVgrxCdYrSy1SslJQMtIzUNJRAItkpqTmlWSmZUIkKjIT87NK82CSxSnZiQUFmSlAKUMTAyiAyqVWFGQWpYJkTE1NjR"
    "DiJZm5YFFzNPXFmekgG3zKHM1T9D3LzdODi-OKs8vCqpxcAvydnV2SSv2cy03cPcpDnA2SMgu0nUxslWoBHdYzUg__"
)
DAY = 86400.0


def test_usersig_matches_the_reference_known_answer() -> None:
    assert signed_content("xiaojun", 1400000000, 1700000000, 15552000) == VECTOR_CONTENT
    assert signature(VECTOR_KEY, VECTOR_CONTENT) == VECTOR_SIG
    usersig = build_usersig(
        sdkappid=1400000000,
        identifier="xiaojun",
        secret_key=VECTOR_KEY,
        issued_at=1700000000,
        expire_s=180 * 86400,
    )
    assert usersig == VECTOR_USERSIG


# -- the adapter alone, against a recording transport --------------------------------------


def settings(**credentials: str) -> LaneSettings:
    return LaneSettings(
        lane=LaneKey(vendor=Vendor.TENCENT, app="default"),
        base_url="https://console.tim.qq.com",
        rate=100.0,
        credentials={"sdkappid": "1400000000", "identifier": "administrator", **credentials},
        secrets={"secret_key": Secret("adapter-test-key")},
    )


def c2c_call(tmp_path: Path, n: int = 1) -> Call:
    job = tmp_path / "job.jsonl"
    rows = [
        {
            "vendor": "tencent",
            "op": "recall",
            "From_Account": "a",
            "To_Account": "b",
            "MsgKey": f"{i}_1_1",
        }
        for i in range(n)
    ]
    job.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    items = tuple(item for item in read_job(job) if isinstance(item, Item))
    return Call(call_id="c", lane=items[0].lane, op=items[0].op, items=items[:1])


def group_call(tmp_path: Path, seqs: list[int]) -> Call:
    job = tmp_path / "group.jsonl"
    row = {"vendor": "tencent", "op": "recall", "GroupId": "g1", "MsgSeq": seqs}
    job.write_bytes(orjson.dumps(row) + b"\n")
    items = tuple(item for item in read_job(job) if isinstance(item, Item))
    return Call(call_id="g", lane=items[0].lane, op=items[0].op, items=items)


class Recorder:
    def __init__(self, answer: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.seen: list[httpx.Request] = []
        self._answer = answer

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if self._answer is not None:
            return self._answer(request)
        return httpx.Response(200, json={"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0})

    def usersigs(self) -> list[str]:
        return [request.url.params["usersig"] for request in self.seen]


class Clocks:
    def __init__(self) -> None:
        self.mono = 0.0
        self.wall = 1_800_000_000.0


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


def adapter_for(client: httpx.AsyncClient, clocks: Clocks, **kwargs: Any) -> TencentAdapter:
    return TencentAdapter(
        settings(), client, clock=lambda: clocks.mono, wall_clock=lambda: clocks.wall, **kwargs
    )


@pytest.mark.anyio
async def test_one_usersig_serves_every_call_until_half_its_lifetime(
    tmp_path: Path, clocks: Clocks
) -> None:
    recorder = Recorder()
    call = c2c_call(tmp_path)
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as client:
        adapter = adapter_for(client, clocks)
        await adapter.send(call)
        clocks.mono += USERSIG_LIFETIME_S / 2 - 1
        clocks.wall += USERSIG_LIFETIME_S / 2 - 1
        await adapter.send(call)
        clocks.mono += 2
        clocks.wall += 2
        await adapter.send(call)
    first, second, third = recorder.usersigs()
    assert first == second != third
    issued = [decode_usersig(sig) for sig in (first, third)]
    assert [doc["TLS.time"] for doc in issued if doc] == [1_800_000_000, 1_800_000_000 + 43201]
    assert {doc["TLS.expire"] for doc in issued if doc} == {24 * 3600}
    for sig, doc in zip((first, third), issued, strict=True):
        assert doc is not None
        check = check_usersig(
            sig,
            sdkappid=1400000000,
            identifier="administrator",
            secret_key="adapter-test-key",
            now=doc["TLS.time"],
        )
        assert check is SigCheck.OK


@pytest.mark.anyio
async def test_every_request_draws_a_fresh_32_bit_random(tmp_path: Path, clocks: Clocks) -> None:
    recorder = Recorder()
    call = c2c_call(tmp_path)
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as client:
        adapter = adapter_for(client, clocks)
        for _ in range(5):
            await adapter.send(call)
    randoms = [int(request.url.params["random"]) for request in recorder.seen]
    assert all(0 <= r < 2**32 for r in randoms)
    assert len(set(randoms)) == 5
    assert list(recorder.seen[0].url.params) == [
        "sdkappid",
        "identifier",
        "usersig",
        "random",
        "contenttype",
    ]


@pytest.mark.anyio
async def test_the_usersig_and_the_key_are_redacted_from_any_output(
    tmp_path: Path, clocks: Clocks
) -> None:
    recorder = Recorder()
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as client:
        await adapter_for(client, clocks).send(c2c_call(tmp_path))
    (usersig,) = recorder.usersigs()
    shown = redact(f"{recorder.seen[0].url} key=adapter-test-key")
    assert usersig not in shown
    assert "adapter-test-key" not in shown


def _answering(body: Any, status: int = 200, **headers: str) -> Recorder:
    def answer(request: httpx.Request) -> httpx.Response:
        content = body if isinstance(body, bytes) else orjson.dumps(body)
        return httpx.Response(status, content=content, headers=headers)

    return Recorder(answer)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [b"<html>gateway</html>", {"ActionStatus": "OK"}, {"ErrorCode": "0"}, []],
    ids=["not-json", "no-code", "code-as-text", "not-an-object"],
)
async def test_an_answer_it_cannot_read_is_unknown(
    tmp_path: Path, clocks: Clocks, body: Any
) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(_answering(body))) as client:
        (outcome,) = await adapter_for(client, clocks).send(c2c_call(tmp_path))
    assert (outcome.status, outcome.error) == ("unknown", "vendor-error")


@pytest.mark.anyio
async def test_a_seq_the_answer_does_not_name_is_retried_and_an_odd_retcode_unknown(
    tmp_path: Path, clocks: Clocks
) -> None:
    answer = {
        "ActionStatus": "OK",
        "ErrorInfo": "",
        "ErrorCode": 0,
        "RecallRetList": [
            {"MsgSeq": 1, "RetCode": 0},
            {"MsgSeq": 3, "RetCode": "0"},
            {"MsgSeq": 4, "RetCode": 10002},
            {"MsgSeq": 5, "RetCode": 10006},
        ],
    }
    async with httpx.AsyncClient(transport=httpx.MockTransport(_answering(answer))) as client:
        outcomes = await adapter_for(client, clocks).send(group_call(tmp_path, [1, 2, 3, 4, 5]))
    assert [(o.status, o.error) for o in outcomes] == [
        ("ok", ""),
        ("failed", "vendor-unavailable"),  # transient: sent again
        ("unknown", "vendor-error"),
        ("failed", "vendor-unavailable"),  # 10002 "服务端内部错误,请重试"
        ("failed", "rate-limited"),  # 10006 "操作频率限制"
    ]


@pytest.mark.anyio
async def test_an_http_429_is_a_throttle_honouring_retry_after(
    tmp_path: Path, clocks: Clocks
) -> None:
    recorder = _answering(b"busy", 429, **{"Retry-After": "7"})
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as client:
        with pytest.raises(ThrottledError) as caught:
            await adapter_for(client, clocks).send(c2c_call(tmp_path))
    assert (caught.value.retry_after, caught.value.http_status) == (7.0, 429)


# -- through the engine, against the emulator -----------------------------------------------


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def c2c(i: int) -> dict[str, Any]:
    return {
        "vendor": "tencent",
        "op": "recall",
        "From_Account": "user-a",
        "To_Account": "user-b",
        "MsgKey": f"{i}_833502_1572869830",
    }


def stale_wall_clock(harness: Harness, *, stale_calls: int) -> Callable[[], float]:
    """The lane's wall clock: two days behind for its first `stale_calls` readings, so that the
    UserSig built then has expired by the emulator's clock."""
    readings: Iterator[int] = iter(range(10**6))

    def wall() -> float:
        late = next(readings) < stale_calls
        return harness.clock.now() - (2 * DAY if late else 0.0)

    return wall


def with_wall_clock(harness: Harness, wall: Callable[[], float]) -> None:
    def adapter(settings: LaneSettings, client: httpx.AsyncClient) -> TencentAdapter:
        return TencentAdapter(settings, client, clock=harness.clock.now, wall_clock=wall)

    # Harness.adapter builds each lane's adapter: this lane's wall clock is the test's.
    harness.adapter = adapter  # type: ignore[method-assign]


@pytest.mark.anyio
async def test_an_expired_usersig_is_built_anew_once_and_the_call_goes_through(
    harness: Harness,
) -> None:
    harness.write_job([c2c(1)])
    harness.seed()
    with_wall_clock(harness, stale_wall_clock(harness, stale_calls=1))
    outcome = await harness.run()
    row = outcome.by_target()["1_833502_1572869830"]
    assert (row["status"], row["attempts"]) == ("ok", 2)
    codes = [r.code for r in harness.requests("tencent")]
    assert codes == [70001, 0]
    first, second = (r.query["usersig"] for r in harness.requests("tencent"))
    assert first != second
    assert outcome.summary.exit_code() == ExitCode.OK


@pytest.mark.anyio
async def test_a_usersig_refused_as_expired_again_stops_the_lane(harness: Harness) -> None:
    harness.write_job([c2c(i) for i in range(4)])
    harness.seed()
    with_wall_clock(harness, stale_wall_clock(harness, stale_calls=10**6))
    outcome = await harness.run()
    rows = [outcome.by_target()[f"{i}_833502_1572869830"] for i in range(4)]
    failed = [r for r in rows if r["status"] == "failed"]
    assert failed
    assert {(r["error"], r["vendor_code"]) for r in failed} == {("auth-failed", "70001")}
    assert {r["status"] for r in rows} <= {"failed", "skipped"}
    assert outcome.summary.stopped_lanes == {"tencent.default": "auth-failed"}
    assert outcome.summary.exit_code() == ExitCode.HALTED
    assert not any(
        harness.emulators.tencent.state.is_recalled(f"{i}_833502_1572869830") for i in range(4)
    )


@pytest.mark.anyio
async def test_a_wrong_key_stops_the_lane_and_resume_finishes_it(harness: Harness) -> None:
    rows = [c2c(i) for i in range(3)]
    rows.append({"vendor": "tencent", "op": "recall", "GroupId": "g1", "MsgSeq": [1, 2, 3]})
    harness.write_job(rows)
    harness.seed()
    good = harness.config
    harness.break_secret(Vendor.TENCENT)
    first = await harness.run()
    assert first.summary.stopped_lanes == {"tencent.default": "auth-failed"}
    assert {r["vendor_code"] for r in first.rows if r["status"] == "failed"} == {"70009"}
    sent_before = len(harness.requests("tencent"))
    harness.config = good
    again = await harness.run(resume=True)
    assert set(again.statuses().values()) == {"ok"}
    assert again.summary.exit_code() == ExitCode.OK
    resent = harness.requests("tencent")[sent_before:]
    assert sorted(len(r.items) for r in resent) == [1, 1, 1, 3], "each item sent once more"


@pytest.mark.anyio
async def test_resume_keeps_what_was_done_and_sends_only_the_rest(harness: Harness) -> None:
    harness.write_job([c2c(i) for i in range(4)])
    harness.seed()

    class Busy(httpx.AsyncBaseTransport):
        """The third recall meets 91000 "服务内部错误,请重试" on every attempt."""

        def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
            self.inner = inner

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if b"2_833502_1572869830" in request.content:
                body = {
                    "ActionStatus": "FAIL",
                    "ErrorInfo": "服务内部错误,请重试",
                    "ErrorCode": 91000,
                }
                return httpx.Response(200, json=body)
            return await self.inner.handle_async_request(request)

    harness.wrap_transport = Busy
    first = await harness.run()
    statuses = first.statuses()
    assert sorted(statuses.values()) == ["failed", "ok", "ok", "ok"]
    left = "2_833502_1572869830"
    assert (statuses[left], first.by_target()[left]["error"]) == ("failed", "vendor-unavailable")
    assert first.by_target()[left]["attempts"] == 4  # FAST_RUN's max_attempts
    sent_before = len(harness.requests("tencent"))
    harness.wrap_transport = None
    again = await harness.run(resume=True)
    assert set(again.statuses().values()) == {"ok"}
    assert [r.items for r in harness.requests("tencent")[sent_before:]] == [(left,)]


@pytest.mark.anyio
async def test_group_seqs_go_ten_a_call_and_the_last_call_takes_the_rest(harness: Harness) -> None:
    harness.write_job(
        [
            {"vendor": "tencent", "op": "recall", "GroupId": "g1", "MsgSeq": list(range(1, 26))},
            {"vendor": "tencent", "op": "recall", "GroupId": "g2", "MsgSeq": 7},
        ]
    )
    harness.seed()
    outcome = await harness.run()
    assert set(outcome.statuses().values()) == {"ok"}
    sizes = sorted(len(r.items) for r in harness.requests("tencent"))
    assert sizes == [1, 5, 10, 10]


@pytest.mark.anyio
async def test_seqs_with_other_reasons_never_share_a_call(harness: Harness) -> None:
    base = {"vendor": "tencent", "op": "recall", "GroupId": "g1"}
    harness.write_job(
        [
            {**base, "MsgSeq": [1, 2], "Reason": "spam"},
            {**base, "MsgSeq": [3], "Reason": "fraud"},
            {**base, "MsgSeq": [4]},
        ]
    )
    harness.seed()
    outcome = await harness.run()
    assert set(outcome.statuses().values()) == {"ok"}
    bodies = sorted(
        (r.body.get("Reason", ""), [e["MsgSeq"] for e in r.body["MsgSeqList"]])
        for r in harness.requests("tencent")
    )
    assert bodies == [("", [4]), ("fraud", [3]), ("spam", [1, 2])]


@pytest.mark.anyio
async def test_a_throttle_pauses_the_lane_and_lowers_its_rate(harness: Harness) -> None:
    harness.write_job([c2c(i) for i in range(6)])
    harness.seed()
    harness.emulators.tencent.faults.push("throttle", only_path_contains="/admin_msgwithdraw")
    with capture_logs() as events:
        outcome = await harness.run()
    assert set(outcome.statuses().values()) == {"ok"}
    assert outcome.summary.throttles["tencent.default"] == 1
    (throttle_event,) = [e for e in events if e["event"] == "batchrecall.throttled"]
    assert throttle_event["vendor_code"] == "60007"
    assert throttle_event["rate"] < 100.0  # the lane's configured rate, lowered
    sent = harness.requests("tencent")
    (throttled,) = [r for r in sent if r.code == 60007]
    later = [r for r in sent if r.time > throttled.time]
    assert min(r.time for r in later) - throttled.time >= 1.0  # the default pause


def test_lanes_of_one_sdkappid_share_one_rate_window() -> None:
    from batchrecall.run.limits import lane_identity

    assert lane_identity(settings()) == "tencent:1400000000"


@pytest.mark.anyio
async def test_a_recall_whose_answer_was_lost_ends_not_found_on_its_retry(
    harness: Harness,
) -> None:
    """The emulator recalls, then drops the connection: the retry is answered 20023 (already
    recalled), which is not_found, never a failure."""
    harness.write_job([c2c(1)])
    harness.seed()
    harness.emulators.tencent.faults.push("drop", only_path_contains="/admin_msgwithdraw")
    outcome = await harness.run()
    row = outcome.by_target()["1_833502_1572869830"]
    assert (row["status"], row["vendor_code"], row["attempts"]) == ("not_found", "20023", 2)
    assert harness.emulators.tencent.state.is_recalled("1_833502_1572869830")
