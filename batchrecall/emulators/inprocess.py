"""`run --emulate`: the emulators in this process, seeded from the job, and their config."""

from __future__ import annotations

import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

from batchrecall.config import Config, parse_config
from batchrecall.emulators.common import EmulatorSettings
from batchrecall.emulators.seeding import Scenario, load_scenario, seed_item
from batchrecall.emulators.server import EmulatorSet
from batchrecall.models import Item, LaneKey

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


class EmulatedRun:
    """The emulators of a `run --emulate`, seeded item by item as the plan's pass reads the job
    (`seed`, the pass's observer), then their config: every app the job names."""

    def __init__(self, *, scenario: str | None = None) -> None:
        self.emulators = EmulatorSet(
            EmulatorSettings(rate=EMULATED_VENDOR_RATE, recall_window_s=EMULATED_RECALL_WINDOW_S)
        )
        self._twists: Scenario = load_scenario(Path(scenario)) if scenario else {}
        self.named: Counter[LaneKey] = Counter()
        self.transport: httpx.AsyncBaseTransport = httpx.ASGITransport(app=self.emulators.app)

    def seed(self, item: Item) -> None:
        self.named[item.lane] += seed_item(self.emulators, item, self._twists)

    def lanes(self) -> EmulatedLanes:
        """Lanes pointing at the emulators: `default` of every vendor and every app seeded."""
        # Every app a job names talks to the same emulator, at the product's default rates.
        raw = tomllib.loads(self.emulators.config_toml(IN_PROCESS_BASE, apps=self.named))
        config = parse_config(raw, environ={}, source="(built-in emulators)")
        return EmulatedLanes(emulators=self.emulators, config=config, transport=self.transport)
