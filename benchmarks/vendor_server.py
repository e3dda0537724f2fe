"""The vendor emulators served over real HTTP on loopback, in a process of their own.

`python -m benchmarks.vendor_server SETTINGS_JSON CONFIG_OUT [JOB...]` seeds the jobs, serves on
a free port, writes a batchrecall config pointing at it, prints the port on the first line and
serves until its standard input closes.
"""

from __future__ import annotations

import gc
import json
import sys
import threading
import time
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx

from batchrecall.config import Config, parse_config
from batchrecall.emulators.common import EmulatorSettings
from batchrecall.emulators.seeding import seed_jobs
from batchrecall.emulators.server import EmulatorSet, serve
from benchmarks.processes import serving


@dataclass(frozen=True)
class Served:
    base_url: str
    config_path: Path

    def config(self) -> Config:
        raw = tomllib.loads(self.config_path.read_text(encoding="utf-8"))
        return parse_config(raw, environ={}, source=str(self.config_path))

    def requests(self) -> list[dict[str, Any]]:
        """The emulators' request log (every request, refused ones included)."""
        answer = httpx.get(f"{self.base_url}/_emulator/requests", timeout=60)
        entries: list[dict[str, Any]] = answer.json()
        return entries


@contextmanager
def vendor_server(
    tmp: Path,
    *,
    rates: Mapping[str, float] | None = None,
    latency_ms: float = 0.0,
    jitter_ms: float = 0.0,
    seed: Sequence[Path] = (),
    history: bool = False,
) -> Iterator[Served]:
    """The emulators in another process, with these per-vendor rate limits and latency;
    `history`: the messages `collect_history` searches (benchmarks.collect_history)."""
    settings = {
        "rates": dict(rates or {}),
        "latency_ms": latency_ms,
        "jitter_ms": jitter_ms,
        "history": history,
    }
    config = tmp / f"emulators-{id(settings)}.toml"
    args = [json.dumps(settings), str(config), *(str(job) for job in seed)]
    with serving("benchmarks.vendor_server", *args, stop_within_s=30) as port:
        served = Served(base_url=f"http://127.0.0.1:{port}", config_path=config)
        _warm_up(served)
        yield served


def _warm_up(served: Served) -> None:
    """One unsigned request to each vendor, then a second for their rate windows to empty.

    A fresh emulator answers its first request some 20 ms late (Python warming up its routes);
    a run's first request would then reach it bunched up with the next ones, which a real
    vendor, warm from other clients, would not see.
    """
    with httpx.Client(timeout=30) as client:
        client.get(f"{served.base_url}/_emulator/health")
        client.post(f"{served.base_url}/easemob/org/app/token", json={})
        client.post(f"{served.base_url}/goeasy/v2/im/history/recall", json={})
        client.delete(f"{served.base_url}/yunxin/im/v2/conversations/a%7C1%7Cb/messages/1")
    time.sleep(1.1)


def main() -> None:
    settings, config, *jobs = sys.argv[1:]
    options = json.loads(settings)
    emulators = EmulatorSet(
        EmulatorSettings(
            latency_ms=options["latency_ms"],
            latency_jitter_ms=options["jitter_ms"],
            recall_window_s=24 * 3600.0,  # long benchmarks never meet the recall window
            goeasy_recall_window_s=24 * 3600.0,
        ),
        rates=options["rates"],
    )
    seed_jobs(emulators, [Path(job) for job in jobs])
    if options.get("history"):
        from benchmarks.collect_history import seed_history

        seed_history(emulators, time.time())
    # The seeded messages live to the end: keep the collector from walking them again and
    # again (a full collection over them held every answer for some 50 ms).
    gc.freeze()

    async def run() -> None:
        stop = anyio.Event()

        def ready(port: int) -> None:
            Path(config).write_text(emulators.config_toml(f"http://127.0.0.1:{port}"), "utf-8")
            print(port, flush=True)

        def wait_for_stdin() -> None:
            sys.stdin.read()
            anyio.from_thread.run_sync(stop.set)

        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, wait_for_stdin)
            await serve(emulators, "127.0.0.1", 0, ready=ready, shutdown_event=stop)

    threading.excepthook = lambda args: None  # stdin closing while we stop is expected
    anyio.run(run)


if __name__ == "__main__":
    main()
