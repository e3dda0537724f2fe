"""`run --emulate`: the three emulators in this process, seeded from the job, and their config."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from batchrecall.config import DEFAULT_RATES, Config, parse_config
from batchrecall.emulators.common import EmulatorSettings
from batchrecall.emulators.seeding import load_scenario, seed_jobs
from batchrecall.emulators.server import EmulatorSet
from batchrecall.models import JobRef, LaneKey

# In-process requests never leave the process; the host only has to pass the loopback check.
IN_PROCESS_BASE = "http://127.0.0.1"
# Easemob documents 100 calls/s per API per app; the emulators enforce it here too.
EMULATED_VENDOR_RATE = 100.0


@dataclass(frozen=True)
class EmulatedLanes:
    emulators: EmulatorSet
    config: Config
    transport: httpx.AsyncBaseTransport


def emulated_lanes(jobs: Sequence[JobRef], *, scenario: str | None = None) -> EmulatedLanes:
    emulators = EmulatorSet(EmulatorSettings(rate=EMULATED_VENDOR_RATE))
    twists = load_scenario(Path(scenario)) if scenario else None
    named = seed_jobs(emulators, [job.path for job in jobs], twists)
    raw = tomllib.loads(emulators.config_toml(IN_PROCESS_BASE))
    config = parse_config(raw, environ={}, source="(built-in emulators)")
    lanes = dict(config.lanes)
    for key in named:  # every app a job names talks to the same emulator
        lanes.setdefault(key, replace(lanes[LaneKey(vendor=key.vendor, app="default")], lane=key))
    config = replace(config, lanes=lanes)
    for key in config.lanes:  # lanes keep their usual default rates, under the vendor's limit
        config = config.with_rate(key, DEFAULT_RATES[key.vendor])
    transport = httpx.ASGITransport(app=emulators.app)
    return EmulatedLanes(emulators=emulators, config=config, transport=transport)
