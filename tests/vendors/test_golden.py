"""Golden fixtures: the request and answer examples the vendor pages and vendors.md quote.

Each file under `fixtures/` names its source, the lane and the job rows; the adapter must build
exactly the documented request from those rows and read exactly the stated outcome from the
documented answer. No emulator: an `httpx.MockTransport` plays the vendor, so a reading shared
by an adapter and its emulator cannot hide here. The format is in `fixtures/README.md`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson
import pytest

from batchrecall.config import LaneSettings, Secret
from batchrecall.emulators.agora_token import check_chat_app_token
from batchrecall.emulators.tencent_usersig import SigCheck, check_usersig
from batchrecall.errors import CallError
from batchrecall.intake.reader import read_job
from batchrecall.models import Call, Item, LaneKey, Vendor
from batchrecall.vendors import Adapter
from batchrecall.vendors.easemob import EasemobAdapter
from batchrecall.vendors.goeasy import GoEasyAdapter
from batchrecall.vendors.rongcloud import RongCloudAdapter
from batchrecall.vendors.tencent import TencentAdapter
from batchrecall.vendors.yunxin import YunxinAdapter

FIXTURES = Path(__file__).parent / "fixtures"
WALL_CLOCK = 1_700_000_000  # the wall time adapters see (Yunxin CurTime, Agora issue time)

# Lane settings a fixture leaves out: the documents' own example values where they give some.
_LANES: dict[str, dict[str, Any]] = {
    "easemob": {
        "base_url": "https://a1.easemob.com",
        # vendors.md §1.2, the token example: POST /easemob-demo/testapp/token
        "credentials": {"org_name": "easemob-demo", "app_name": "testapp",
                        "client_id": "YXA6i-Ak8Ol4Eei2l11ZjV-EAg"},
        "secrets": {"client_secret": "YXA6VunqiNxoB7IwXHInk1cGiXOOJfc"},
    },
    "goeasy": {
        "base_url": "https://rest-hz.goeasy.io",  # seed 001
        "secrets": {"appkey": "BC-xxx"},  # seed 001's examples
    },
    "yunxin": {
        "base_url": "https://open.yunxinapi.com",  # seed 003
        "credentials": {"app_key": "fixture-app-key"},
        "secrets": {"app_secret": "fixture-app-secret"},
    },
    "tencent": {
        # research §T1.1's URL example: https://xxxxxx/...?sdkappid=88888888&identifier=admin;
        # the key is the reference SDKs' demo key (§T2.4).
        "base_url": "https://xxxxxx",
        "credentials": {"sdkappid": "88888888", "identifier": "admin"},
        "secrets": {"secret_key": "5bd2850fff3ecb11d7c805251c51ee46"
                                  "3a25727bddc2385f3fa8bfee1bb93b5e"},
    },
    "rongcloud": {
        "base_url": "https://api.rong-api.com",  # research §R1.4: the BJ data center's host
        # research §R1.1: the signature page's App-Key and its PHP sample's App Secret
        "credentials": {"app_key": "uwd1c0sxdlx2"},
        "secrets": {"app_secret": "Y1W2MeFwwwRxa0"},
    },
}  # fmt: skip
# Tencent: the URL example's `random` (research §T1.1), what the adapter draws here.
TENCENT_RANDOM = 99999999
RONGCLOUD_NONCE = "14314"  # research §R1.1: the signature page's example Nonce
# vendors.md §1.2: the documented token answer, given whenever an Easemob adapter asks for one
# and the fixture is not about the token request itself.
TOKEN_ANSWER = {
    "access_token": "YWMte3bGuOukEeiTkNP4grL7iwAAAAAAAAAAAAAAAAAAAAGL4CTw6XgR6LaXXVmNX4QCAgMAAAF"
    "nKdc-ZgBPGgBFTrLhhyK8woMEI005emtrLJFJV6aoxsZSioSIZkr5kw",
    "expires_in": 1024000,
    "application": "8be024f0-e978-11e8-b697-5d598d5f8402",
}


def _fixtures() -> list[Path]:
    return sorted(FIXTURES.glob("*/*.json"))


def _loaded() -> list[Any]:
    return [
        pytest.param(orjson.loads(path.read_bytes()), id=f"{path.parent.name}/{path.stem}")
        for path in _fixtures()
    ]


@dataclass
class _Vendor:
    """Plays the vendor: answers the fixture's exchanges in order and keeps every request."""

    exchanges: list[dict[str, Any]]
    seen: list[httpx.Request] = field(default_factory=list)
    tokens_given: int = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        scripted = [e for e in self.exchanges if not e.get("token")]
        token_scripted = len(scripted) != len(self.exchanges)
        if request.url.path.endswith("/token") and not token_scripted:
            self.tokens_given += 1
            return httpx.Response(200, json=TOKEN_ANSWER)
        self.seen.append(request)
        index = len(self.seen) - 1
        if index >= len(self.exchanges):
            return httpx.Response(599, text="the fixture expects no further request")
        answer = self.exchanges[index]["answer"]
        content = (
            orjson.dumps(answer["json"]) if "json" in answer else answer.get("text", "").encode()
        )
        headers = {"Content-Type": "application/json", **answer.get("headers", {})}
        return httpx.Response(answer["status"], content=content, headers=headers)


def _settings(lane: dict[str, Any]) -> LaneSettings:
    vendor = lane["vendor"]
    merged = {**_LANES[vendor], **{k: v for k, v in lane.items() if k != "vendor"}}
    return LaneSettings(
        lane=LaneKey(vendor=Vendor(vendor), app="default"),
        base_url=merged["base_url"],
        rate=50.0,
        credentials=merged.get("credentials", {}),
        secrets={name: Secret(value) for name, value in merged.get("secrets", {}).items()},
        batch_recall=merged.get("batch_recall", True),
        auth=merged.get("auth", "easemob"),
        token_lifetime_s=merged.get("token_lifetime_s", 3600),
        extras={"timestamp_unit": merged["timestamp_unit"]} if "timestamp_unit" in merged else {},
    )


def _adapter(
    settings: LaneSettings, client: httpx.AsyncClient, wall_clock: int = WALL_CLOCK
) -> Adapter:
    def wall() -> float:
        return float(wall_clock)

    if settings.lane.vendor is Vendor.EASEMOB:
        return EasemobAdapter(settings, client, clock=lambda: 0.0, wall_clock=wall)
    if settings.lane.vendor is Vendor.YUNXIN:
        return YunxinAdapter(settings, client, wall_clock=wall)
    if settings.lane.vendor is Vendor.TENCENT:
        return TencentAdapter(
            settings, client, clock=lambda: 0.0, wall_clock=wall, random=lambda: TENCENT_RANDOM
        )
    if settings.lane.vendor is Vendor.RONGCLOUD:
        return RongCloudAdapter(settings, client, wall_clock=wall, nonce=lambda: RONGCLOUD_NONCE)
    return GoEasyAdapter(settings, client)


def _call(tmp_path: Path, rows: list[dict[str, Any]]) -> Call:
    job = tmp_path / "job.jsonl"
    job.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    items = list(read_job(job))
    assert all(isinstance(item, Item) for item in items), items
    typed = tuple(item for item in items if isinstance(item, Item))
    return Call(call_id="golden", lane=typed[0].lane, op=typed[0].op, items=typed)


def _check_header(
    name: str, expected: str, request: httpx.Request, secrets: dict[str, str]
) -> None:
    actual = request.headers.get(name)
    assert actual is not None, f"header {name} missing"
    if expected == "<any>":
        assert actual, f"header {name} empty"
    elif expected == "<checksum>":
        # Yunxin: sha1(AppSecret + Nonce + CurTime), lower-case hex (vendors.md §2.2)
        text = secrets["app_secret"] + request.headers["Nonce"] + request.headers["CurTime"]
        assert actual == hashlib.sha1(text.encode()).hexdigest(), "CheckSum"
    elif expected == "<signature>":
        # RongCloud: sha1(App Secret + Nonce + Timestamp), hex (research §R1.1)
        text = secrets["app_secret"] + request.headers["Nonce"] + request.headers["Timestamp"]
        assert actual == hashlib.sha1(text.encode()).hexdigest(), "Signature"
    elif expected == "Bearer <agora-app-token>":
        token = actual.removeprefix("Bearer ")
        check = check_chat_app_token(
            token,
            app_id=secrets["app_id"],
            app_certificate=secrets["app_certificate"],
            now=WALL_CLOCK,
        )
        assert check == "ok", f"not a valid Agora Chat app token: {check}"
    else:
        assert actual == expected, f"header {name}: {actual!r} != {expected!r}"


def _check_request(
    expected: dict[str, Any], request: httpx.Request, secrets: dict[str, str]
) -> None:
    assert request.method == expected["method"]
    assert str(request.url) == _expected_url(expected["url"], request, secrets)
    for name, value in expected.get("headers", {}).items():
        _check_header(name, value, request, secrets)
    if "json" in expected:
        assert orjson.loads(request.content) == expected["json"]
    elif "form" in expected:
        form = parse_qsl(request.content.decode(), keep_blank_values=True, strict_parsing=True)
        assert len(form) == len(dict(form)), "a form field sent twice"
        assert dict(form) == expected["form"]
    else:
        assert request.content == b"", "no body expected"


def _expected_url(expected: str, request: httpx.Request, secrets: dict[str, str]) -> str:
    """The expected URL, its `<usersig>` the request's own once it is a valid UserSig of the
    lane's admin (Tencent: built from the secret key and the wall time)."""
    if "<usersig>" not in expected:
        return expected
    usersig = request.url.params["usersig"]
    check = check_usersig(
        usersig,
        sdkappid=int(secrets["sdkappid"]),
        identifier=secrets["identifier"],
        secret_key=secrets["secret_key"],
        now=WALL_CLOCK,
    )
    assert check is SigCheck.OK, f"not a valid UserSig: {check}"
    return expected.replace("<usersig>", usersig)


def _check_outcome(fixture: dict[str, Any], run: Callable[[], Any]) -> Any:
    raises = fixture.get("raises")
    if raises is None:
        return run()
    with pytest.raises(CallError) as caught:
        run()
    error = caught.value
    assert type(error).__name__ == raises["type"]
    assert error.code == raises["code"]
    for name in ("http_status", "vendor_code", "delivered", "message"):
        if name in raises:
            assert getattr(error, name) == raises[name], name
    if "retry_after_at_least" in raises:
        assert error.retry_after is not None
        assert error.retry_after >= raises["retry_after_at_least"]
    return None


@pytest.mark.anyio
@pytest.mark.parametrize("fixture", _loaded())
async def test_golden_fixture(fixture: dict[str, Any], tmp_path: Path) -> None:
    assert fixture.get("source"), "every fixture names its source"
    settings = _settings(fixture["lane"])
    secrets = {**settings.credentials, **{k: v.reveal() for k, v in settings.secrets.items()}}
    vendor = _Vendor(fixture["exchanges"])
    call = _call(tmp_path, fixture["rows"])
    async with httpx.AsyncClient(transport=httpx.MockTransport(vendor)) as client:
        adapter = _adapter(settings, client, fixture.get("wall_clock", WALL_CLOCK))
        outcomes: list[Any] = []
        try:
            outcomes = await adapter.send(call)
        except CallError as exc:
            error: CallError | None = exc
        else:
            error = None

    assert len(vendor.seen) == len(fixture["exchanges"]), "one request per documented exchange"
    for exchange, request in zip(fixture["exchanges"], vendor.seen, strict=True):
        _check_request(exchange["request"], request, secrets)

    def outcome() -> list[Any]:
        if error is not None:
            raise error
        return outcomes

    got = _check_outcome(fixture, outcome)
    if got is not None:
        assert len(got) == len(fixture["outcomes"])
        for actual, expected in zip(got, fixture["outcomes"], strict=True):
            for name, value in expected.items():
                assert getattr(actual, name) == value, f"{name}: {getattr(actual, name)!r}"


def test_every_vendor_has_fixtures() -> None:
    assert {path.parent.name for path in _fixtures()} == {
        "easemob",
        "goeasy",
        "yunxin",
        "tencent",
        "rongcloud",
    }
