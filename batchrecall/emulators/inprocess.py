"""`run --emulate`: the three emulators in this process, seeded from the job, and their config."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from batchrecall.config import Config, parse_config
from batchrecall.emulators.common import EmulatorSettings
from batchrecall.emulators.seeding import load_scenario, seed_jobs
from batchrecall.emulators.server import EmulatorSet
from batchrecall.models import JobRef

# In-process requests never leave the process; the host only has to pass the loopback check.
IN_PROCESS_BASE = "http://127.0.0.1"
# Easemob documents 100 calls/s per API per app; the emulators enforce it here too.
EMULATED_VENDOR_RATE = 100.0
# Messages are seeded before the plan is shown: reading it and confirming must not outrun the
# recall window (the vendors' own is two minutes; a scenario's `age_s` rehearses it).
EMULATED_RECALL_WINDOW_S = 3600.0


@dataclass(frozen=True)
class EmulatedLanes:
    emulators: EmulatorSet
    config: Config
    transport: httpx.AsyncBaseTransport


def emulated_lanes(jobs: Sequence[JobRef], *, scenario: str | None = None) -> EmulatedLanes:
    emulators = EmulatorSet(
        EmulatorSettings(rate=EMULATED_VENDOR_RATE, recall_window_s=EMULATED_RECALL_WINDOW_S)
    )
    twists = load_scenario(Path(scenario)) if scenario else None
    named = seed_jobs(emulators, jobs, twists)
    # Every app a job names talks to the same emulator, at the product's default rates.
    raw = tomllib.loads(emulators.config_toml(IN_PROCESS_BASE, apps=named))
    config = parse_config(raw, environ={}, source="(built-in emulators)")
    transport = httpx.ASGITransport(app=emulators.app)
    return EmulatedLanes(emulators=emulators, config=config, transport=transport)
