"""The RongCloud adapter: its signature against the document's own example, the Timestamp unit,
the form it sends, and the answers no golden fixture shows (bodies that are not RongCloud's)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson
import pytest

from batchrecall import catalog
from batchrecall.config import LaneSettings, Secret
from batchrecall.errors import (
    CallError,
    ErrorCode,
    LaneFatalError,
    ThrottledError,
    TransientCallError,
)
from batchrecall.intake.reader import read_job
from batchrecall.models import Call, Item, LaneKey, Op, Status, Vendor
from batchrecall.vendors.rongcloud import RongCloudAdapter
from batchrecall.vendors.rongcloud_signature import new_nonce, signature, timestamp

# research/vendors-tencent-rongcloud.md §R1.1: the signature page's HTTP example and the App
# Secret of its PHP sample; the page's Signature is exactly sha1(secret + nonce + timestamp).
DOC_SECRET = "Y1W2MeFwwwRxa0"
DOC_NONCE = "14314"
DOC_TIMESTAMP = "1408710653000"
DOC_SIGNATURE = "30be0bbca9c9b2e27578701e9fda2358a814c88f"
WALL = 1_700_000_000.25

ROW = {
    "vendor": "rongcloud",
    "op": "recall",
    "fromUserId": "spammer-1",
    "conversationType": 1,
    "targetId": "user-b",
    "messageUID": "5FGT-7VA9-G4DD-4V5P",
    "sentTime": 1763690000201,
}


def test_signature_matches_the_documents_example() -> None:
    assert signature(DOC_SECRET, DOC_NONCE, DOC_TIMESTAMP) == DOC_SIGNATURE


def test_the_newer_pages_timestamp_does_not_give_its_signature() -> None:
    # §R1.1: the newer page pairs Timestamp 1408710653491 with a Signature starting 45beb7cc,
    # which the sample secret does not give: it is no known-answer vector.
    made = signature(DOC_SECRET, DOC_NONCE, "1408710653491")
    assert made == "dd11a264276f438b045b3b236a2741ddc89d48df"
    assert not made.startswith("45beb7cc")


def test_timestamp_units() -> None:
    assert timestamp(1408710653.9, "s") == "1408710653"
    assert timestamp(1408710653.0, "ms") == DOC_TIMESTAMP
    with pytest.raises(ValueError, match="unit"):
        timestamp(1.0, "us")


def test_nonces_are_random_numbers_of_at_most_18_characters() -> None:
    made = {new_nonce() for _ in range(200)}
    assert len(made) == 200
    assert all(n.isdigit() and 1 <= len(n) <= 18 for n in made)


def _settings(**changes: Any) -> LaneSettings:
    values: dict[str, Any] = {
        "lane": LaneKey(vendor=Vendor.RONGCLOUD, app="default"),
        "base_url": "https://api.rong-api.com",
        "rate": 50.0,
        "credentials": {"app_key": "uwd1c0sxdlx2"},
        "secrets": {"app_secret": Secret(DOC_SECRET)},
        **changes,
    }
    return LaneSettings(**values)


def _call(tmp_path: Path, row: dict[str, Any]) -> Call:
    job = tmp_path / "job.jsonl"
    job.write_bytes(orjson.dumps(row) + b"\n")
    (item,) = list(read_job(job))
    assert isinstance(item, Item), item
    return Call(call_id="c1", lane=item.lane, op=item.op, items=(item,))


async def _send(
    tmp_path: Path,
    answer: Callable[[httpx.Request], httpx.Response],
    *,
    row: dict[str, Any] = ROW,
    **settings: Any,
) -> tuple[list[Any], list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(vendor)) as client:
        adapter = RongCloudAdapter(_settings(**settings), client, wall_clock=lambda: WALL)
        outcomes = await adapter.send(_call(tmp_path, row))
    return outcomes, seen


def _ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"code": 200})


@pytest.mark.anyio
async def test_timestamp_goes_in_seconds_by_default_and_in_ms_when_configured(
    tmp_path: Path,
) -> None:
    _, (in_seconds,) = await _send(tmp_path, _ok)
    _, (in_ms,) = await _send(tmp_path, _ok, extras={"timestamp_unit": "ms"})
    assert in_seconds.headers["Timestamp"] == "1700000000"
    assert in_ms.headers["Timestamp"] == "1700000000250"
    for request in (in_seconds, in_ms):
        text = DOC_SECRET + request.headers["Nonce"] + request.headers["Timestamp"]
        assert request.headers["Signature"] == hashlib.sha1(text.encode()).hexdigest()
        assert request.headers["App-Key"] == "uwd1c0sxdlx2"


@pytest.mark.anyio
async def test_every_request_has_its_own_nonce(tmp_path: Path) -> None:
    seen = []
    for _ in range(3):
        _, (request,) = await _send(tmp_path, _ok)
        seen.append(request.headers["Nonce"])
    assert len(set(seen)) == 3


@pytest.mark.anyio
async def test_only_the_fields_the_row_gives_are_sent(tmp_path: Path) -> None:
    outcomes, (request,) = await _send(tmp_path, _ok)
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert dict(parse_qsl(request.content.decode())) == {
        "fromUserId": "spammer-1",
        "conversationType": "1",
        "targetId": "user-b",
        "messageUID": "5FGT-7VA9-G4DD-4V5P",
        "sentTime": "1763690000201",
    }
    assert [o.status for o in outcomes] == [Status.OK]


@pytest.mark.anyio
async def test_form_values_are_percent_encoded(tmp_path: Path) -> None:
    row = {**ROW, "extra": "a&b=c 撤回", "targetId": "group+1"}
    _, (request,) = await _send(tmp_path, _ok, row=row)
    form = dict(parse_qsl(request.content.decode(), strict_parsing=True))
    assert (form["extra"], form["targetId"]) == ("a&b=c 撤回", "group+1")


def _answer(status: int, body: bytes, **headers: str) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, content=body, headers=headers)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "body", "error", "code"),
    [
        (401, b"", LaneFatalError, ErrorCode.AUTH_FAILED),
        (430, b"", LaneFatalError, ErrorCode.SERVICE_DISABLED),
        (429, b"", ThrottledError, ErrorCode.RATE_LIMITED),
        (502, b"Bad Gateway", TransientCallError, ErrorCode.VENDOR_UNAVAILABLE),
        (404, b"<html>not found</html>", TransientCallError, ErrorCode.VENDOR_UNAVAILABLE),
        (408, b"", TransientCallError, ErrorCode.VENDOR_UNAVAILABLE),
    ],
    ids=["401", "430", "429", "502", "404-page", "408"],
)
async def test_an_answer_without_a_code_is_read_by_its_http_status(
    tmp_path: Path, status: int, body: bytes, error: type[CallError], code: ErrorCode
) -> None:
    with pytest.raises(error) as caught:
        await _send(tmp_path, _answer(status, body))
    assert type(caught.value) is error
    assert (caught.value.code, caught.value.http_status) == (code, status)


@pytest.mark.anyio
async def test_a_throttle_honours_retry_after(tmp_path: Path) -> None:
    body = orjson.dumps({"code": 1008, "errorMessage": "调用频率超限"})
    with pytest.raises(ThrottledError) as caught:
        await _send(tmp_path, _answer(429, body, **{"Retry-After": "3"}))
    assert caught.value.retry_after == 3.0
    with pytest.raises(ThrottledError) as caught:
        await _send(tmp_path, _answer(429, body))
    assert caught.value.retry_after is None  # the lane pauses its adapter's default
    assert RongCloudAdapter.default_throttle_pause_s == 1.0


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, b"<html>ok</html>", Status.UNKNOWN),  # it may have acted
        (200, b'{"result": "done"}', Status.UNKNOWN),
        (200, b'{"code": true}', Status.UNKNOWN),
        (400, b"bad request", Status.FAILED),  # refused: nothing was done
        (403, b'{"code": "x"}', Status.FAILED),
    ],
)
async def test_an_unreadable_answer_is_never_ok(
    tmp_path: Path, status: int, body: bytes, expected: Status
) -> None:
    (outcome,), _ = await _send(tmp_path, _answer(status, body))
    assert (outcome.status, outcome.error) == (expected, ErrorCode.VENDOR_ERROR)
    assert outcome.http_status == status


@pytest.mark.anyio
async def test_code_200_under_another_http_status_is_not_ok(tmp_path: Path) -> None:
    (outcome,), _ = await _send(tmp_path, _answer(403, b'{"code": 200}'))
    assert (outcome.status, outcome.error) == (Status.FAILED, ErrorCode.VENDOR_ERROR)


def test_recall_window_is_the_configured_one_only() -> None:
    window = catalog.get(Vendor.RONGCLOUD).recall_window_s
    assert window(Op.RECALL, ("isDelete=0",), _settings().recall_window_s) is None
    assert window(Op.RECALL, ("isDelete=1",), _settings(recall_window_s=60.0).recall_window_s) == 60
    assert window(Op.CLEAR_HISTORY, (), 60.0) is None
