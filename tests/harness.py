"""Runs jobs through the real engine and adapters against in-process emulators on virtual time."""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import orjson

from batchrecall.config import Config, LaneSettings, RunSettings, Secret, parse_config
from batchrecall.emulators.common import EmulatorSettings
from batchrecall.emulators.seeding import Scenario, seed_jobs
from batchrecall.emulators.server import EmulatorSet
from batchrecall.models import JobRef, LaneKey, Vendor
from batchrecall.results.store import ResultsWriter, load_resume_index, read_rows
from batchrecall.results.summary import Summary
from batchrecall.run.clock import VirtualClock
from batchrecall.run.engine import Engine
from batchrecall.vendors import Adapter, adapter_class
from batchrecall.vendors.easemob import EasemobAdapter
from batchrecall.vendors.goeasy import GoEasyAdapter
from batchrecall.vendors.rongcloud import RongCloudAdapter
from batchrecall.vendors.tencent import TencentAdapter
from batchrecall.vendors.yunxin import YunxinAdapter

FAST_RUN = RunSettings(concurrency=8, max_attempts=4, halt_min_items=10_000)


@dataclass
class Outcome:
    summary: Summary
    rows: list[dict[str, Any]]

    def latest(self) -> dict[str, dict[str, Any]]:
        latest: dict[str, dict[str, Any]] = {}
        for row in self.rows:
            latest[str(row["item_key"])] = row
        return latest

    def by_target(self) -> dict[str, dict[str, Any]]:
        return {str(row["target"]): row for row in self.latest().values()}

    def statuses(self) -> dict[str, str]:
        return {target: str(row["status"]) for target, row in self.by_target().items()}


@dataclass
class Harness:
    """One emulator set, one virtual clock shared by emulators, lanes and adapters."""

    tmp: Path
    settings: EmulatorSettings = field(default_factory=EmulatorSettings)
    wrap_transport: Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport] | None = None
    """Put between the adapters and the emulators, to answer what no emulator would."""

    def __post_init__(self) -> None:
        self.clock = VirtualClock(start=time.time())
        self.emulators = EmulatorSet(self.settings, clock=self.clock.now)
        raw = tomllib.loads(self.emulators.config_toml("http://127.0.0.1"))
        self.config: Config = parse_config(raw, environ={}, source="test")
        self.job = self.tmp / "job.jsonl"
        self.out = self.tmp / "job.results.jsonl"

    def write_job(self, rows: Iterable[Mapping[str, Any]]) -> Path:
        self.job.write_bytes(b"".join(orjson.dumps(dict(r)) + b"\n" for r in rows))
        return self.job

    def seed(self, scenario: Scenario | None = None) -> None:
        seed_jobs(self.emulators, [self.job], scenario)

    def set_lane(self, key: LaneKey, **changes: Any) -> None:
        lanes = dict(self.config.lanes)
        lanes[key] = replace(lanes[key], **changes)
        self.config = replace(self.config, lanes=lanes)

    def break_secret(self, vendor: Vendor) -> None:
        key = LaneKey(vendor=vendor, app="default")
        secrets = {
            name: Secret("wrong-" + s.reveal())
            for name, s in self.config.lanes[key].secrets.items()
        }
        self.set_lane(key, secrets=secrets)

    def adapter(self, settings: LaneSettings, client: httpx.AsyncClient) -> Adapter:
        if settings.lane.vendor is Vendor.EASEMOB:
            return EasemobAdapter(settings, client, clock=self.clock.now)
        if settings.lane.vendor is Vendor.YUNXIN:
            return YunxinAdapter(settings, client, wall_clock=self.clock.now)
        if settings.lane.vendor is Vendor.TENCENT:
            return TencentAdapter(settings, client, clock=self.clock.now, wall_clock=self.clock.now)
        if settings.lane.vendor is Vendor.RONGCLOUD:
            return RongCloudAdapter(settings, client, wall_clock=self.clock.now)
        if settings.lane.vendor is Vendor.GOEASY:
            return GoEasyAdapter(settings, client)
        return adapter_class(settings.lane.vendor)(settings, client)  # a plugin vendor's

    async def run(
        self, run: RunSettings = FAST_RUN, *, resume: bool = False, engine_hook: Any = None
    ) -> Outcome:
        index = load_resume_index(self.out) if resume and self.out.exists() else None
        writer = ResultsWriter(self.out, "jsonl", append=resume)
        transport: httpx.AsyncBaseTransport = httpx.ASGITransport(app=self.emulators.app)
        if self.wrap_transport is not None:
            transport = self.wrap_transport(transport)
        try:
            async with httpx.AsyncClient(transport=transport) as client:
                engine = Engine(
                    run_settings=run,
                    writer=writer,
                    adapter_for=lambda key: self.adapter(self.config.lane(key), client),
                    rates=lambda key: self.config.lane(key).rate,
                    run_id="t" + str(len(self.emulators.requests())),
                    resume=index,
                    clock=self.clock,
                )
                if engine_hook is not None:
                    engine_hook(engine)
                summary = await engine.run([JobRef(path=self.job, name=str(self.job))])
        finally:
            writer.close()
        rows, _torn = read_rows(self.out)
        return Outcome(summary=summary, rows=list(rows))

    def requests(self, vendor: str | None = None) -> list[Any]:
        return [r for r in self.emulators.requests() if vendor is None or r.vendor == vendor]
