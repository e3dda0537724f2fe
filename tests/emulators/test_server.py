"""The composite app, the config it writes, and serving it over real HTTP on loopback."""

from __future__ import annotations

import tomllib

import anyio
import httpx
import pytest

from batchrecall.emulators import EmulatorSet, EmulatorSettings, running_server, serve
from batchrecall.models import LaneKey, Vendor
from tests.emulators.support import FakeClock, client_for

pytestmark = pytest.mark.anyio

GOEASY_KEY = "BC-emulator-common-key"


def recall_body(timestamp: int) -> dict[str, object]:
    return {"appkey": GOEASY_KEY, "groupId": "g1", "messages": [timestamp]}


async def test_composite_app_mounts_each_vendor_and_merges_logs(clock: FakeClock) -> None:
    emulators = EmulatorSet(clock=clock)
    emulators.goeasy.state.add_message(1, group_id="g1", sent_at=clock.now)
    async with client_for(emulators.app) as client:
        health = await client.get("/_emulator/health")
        assert health.json() == {
            "status": "ok",
            "vendors": ["easemob", "goeasy", "rongcloud", "tencent", "yunxin"],
        }
        assert (await client.post("/goeasy/v2/im/history/recall", json=recall_body(1))).json() == {
            "code": 200,
            "content": "OK",
        }
        token = await client.post("/easemob/demo-org/demo-app/token", json={})
        assert token.status_code == 400
        yunxin = await client.delete("/yunxin/im/v2/conversations/a%7C1%7Cb")
        assert yunxin.json()["code"] == 414
        rongcloud = await client.post("/rongcloud/message/recall.json", data={"messageUID": "u"})
        assert (rongcloud.status_code, rongcloud.json()["code"]) == (401, 1004)  # unsigned
        logged = (await client.get("/_emulator/requests")).json()
    assert [(entry["vendor"], entry["path"]) for entry in logged] == [
        ("goeasy", "/v2/im/history/recall"),
        ("easemob", "/demo-org/demo-app/token"),
        ("yunxin", "/im/v2/conversations/a|1|b"),
        ("rongcloud", "/message/recall.json"),
    ]
    assert logged[0]["items"] == ["1"]
    assert logged[3]["items"] == ["u"]
    assert [entry.vendor for entry in emulators.requests()] == [
        "goeasy",
        "easemob",
        "yunxin",
        "rongcloud",
    ]


def test_config_toml_points_each_vendor_at_its_mount() -> None:
    emulators = EmulatorSet(EmulatorSettings(rate=20))
    emulators.easemob.state.batch_recall_enabled = False
    config = tomllib.loads(emulators.config_toml("http://127.0.0.1:8750/"))
    assert config == {
        "easemob": {
            "default": {
                "base_url": "http://127.0.0.1:8750/easemob",
                "org_name": "demo-org",
                "app_name": "demo-app",
                "client_id": "YXA6emulator-client-id",
                "client_secret": "YXA6emulator-client-secret",
                "batch_recall": False,
                "rate": 50,
            }
        },
        "goeasy": {
            "default": {
                "base_url": "http://127.0.0.1:8750/goeasy",
                "appkey": GOEASY_KEY,
                "rate": 10,
            }
        },
        "yunxin": {
            "default": {
                "base_url": "http://127.0.0.1:8750/yunxin",
                "app_key": "emulatorappkey0000000000000000",
                "app_secret": "emulatorsecret",
                "rate": 50,
            }
        },
        "tencent": {
            "default": {
                "base_url": "http://127.0.0.1:8750/tencent",
                "sdkappid": 1400000000,
                "identifier": "administrator",
                "secret_key": emulators.tencent.state.secret_key,
                "rate": 100,
            },
        },
        "rongcloud": {
            "default": {
                "base_url": "http://127.0.0.1:8750/rongcloud",
                "app_key": "emulatorrongcloudkey",
                "app_secret": "emulatorrongsecret",
                "rate": 50,
            }
        },
    }


def test_config_toml_keeps_the_products_default_rates_whatever_the_emulators_limit() -> None:
    """A stricter emulator than the config is what rehearses throttling."""
    for settings in (EmulatorSettings(), EmulatorSettings(rate=3)):
        config = tomllib.loads(EmulatorSet(settings).config_toml("http://[::1]:9000"))
        rates = {vendor: config[vendor]["default"]["rate"] for vendor in config}
        assert rates == {"easemob": 50, "goeasy": 10, "yunxin": 50, "tencent": 100, "rongcloud": 50}


def test_config_toml_has_a_lane_for_every_app_named() -> None:
    apps = [LaneKey(vendor=Vendor.EASEMOB, app="prod"), LaneKey(vendor=Vendor.YUNXIN, app="eu")]
    config = tomllib.loads(EmulatorSet().config_toml("http://127.0.0.1:1", apps=apps))
    assert sorted(config["easemob"]) == ["default", "prod"]
    assert sorted(config["yunxin"]) == ["default", "eu"]
    assert config["easemob"]["prod"] == config["easemob"]["default"]


async def test_rates_override_the_rate_per_vendor(clock: FakeClock) -> None:
    emulators = EmulatorSet(EmulatorSettings(rate=50), clock=clock, rates={"goeasy": 1})
    for timestamp in (1, 2):
        emulators.goeasy.state.add_message(timestamp, group_id="g1", sent_at=clock.now)
    async with client_for(emulators.app) as client:
        first = await client.post("/goeasy/v2/im/history/recall", json=recall_body(1))
        second = await client.post("/goeasy/v2/im/history/recall", json=recall_body(2))
    assert (first.status_code, second.status_code) == (200, 429)
    with pytest.raises(ValueError, match="unknown vendors"):
        EmulatorSet(rates={"wechat": 5})


@pytest.mark.slow
async def test_real_server_serves_and_shuts_down() -> None:
    emulators = EmulatorSet()
    emulators.goeasy.state.add_message(7, group_id="g1", sent_at=emulators.clock())
    async with (
        running_server(emulators) as base_url,
        httpx.AsyncClient(base_url=base_url) as client,
    ):
        assert base_url.startswith("http://127.0.0.1:")
        assert (await client.get("/_emulator/health")).status_code == 200
        answer = await client.post("/goeasy/v2/im/history/recall", json=recall_body(7))
        assert answer.json() == {"code": 200, "content": "OK"}
    assert emulators.goeasy.state.is_recalled(7, group_id="g1")
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(f"{base_url}/_emulator/health")


@pytest.mark.slow
async def test_real_server_drops_connections_and_delays_answers() -> None:
    emulators = EmulatorSet()
    for timestamp in (1, 2):
        emulators.goeasy.state.add_message(timestamp, group_id="g1", sent_at=emulators.clock())
    emulators.goeasy.faults.push("drop")
    emulators.goeasy.faults.push("delay", delay_s=0.5)
    async with (
        running_server(emulators) as base_url,
        httpx.AsyncClient(base_url=base_url) as client,
    ):
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post("/goeasy/v2/im/history/recall", json=recall_body(1))
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/goeasy/v2/im/history/recall", json=recall_body(2), timeout=0.1)
    assert emulators.goeasy.state.is_recalled(1, group_id="g1")
    assert emulators.goeasy.state.is_recalled(2, group_id="g1")
    assert [entry.fault for entry in emulators.goeasy.log] == ["drop", "delay"]


@pytest.mark.slow
async def test_serve_reports_its_port_and_stops_on_the_event() -> None:
    ports: list[int] = []
    listening = anyio.Event()
    stop = anyio.Event()

    def ready(port: int) -> None:
        ports.append(port)
        listening.set()

    async def probe() -> None:
        await listening.wait()
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"http://127.0.0.1:{ports[0]}/_emulator/health")
        assert answer.status_code == 200
        stop.set()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(probe)
            await serve(EmulatorSet(), port=0, ready=ready, shutdown_event=stop)
    assert ports[0] > 0


@pytest.mark.slow
async def test_a_busy_port_fails_at_once() -> None:
    async with running_server(EmulatorSet()) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        with pytest.raises(OSError, match="in use"):
            async with running_server(EmulatorSet(), port=port):
                pass
