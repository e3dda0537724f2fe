"""`batchrecall emulate`: serve the vendor emulators over HTTP for rehearsals."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

import anyio

from batchrecall.errors import UsageError
from batchrecall.models import Vendor
from batchrecall.results.summary import ExitCode


def add_emulate_parser(sub: Any) -> None:
    emulate = sub.add_parser("emulate", help="serve the vendor emulators on loopback")
    emulate.add_argument("--host", default="127.0.0.1")
    emulate.add_argument("--port", type=int, default=8750)
    emulate.add_argument("--write-config", metavar="P")
    emulate.add_argument("--seed", nargs="+", default=[], metavar="JOB")
    emulate.add_argument("--scenario", metavar="P", help=argparse.SUPPRESS)
    emulate.add_argument("--rate", action="append", default=[], metavar="VENDOR=R")
    emulate.add_argument("--latency-ms", type=float, default=0.0)
    emulate.add_argument("--fault-rate", type=float, default=0.0)
    emulate.add_argument("--recall-window-s", type=float, default=120.0)
    emulate.set_defaults(handler=_cmd_emulate)


def parse_vendor_rates(specs: list[str]) -> dict[Vendor, float]:
    rates: dict[Vendor, float] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        try:
            rate = float(value)
            vendors = [Vendor(name)]
        except ValueError:
            raise UsageError(f"--rate {spec}: expected VENDOR=R, e.g. easemob=20") from None
        if not sep or rate <= 0:
            raise UsageError(f"--rate {spec}: R must be a positive number")
        for vendor in vendors:
            rates[vendor] = rate
    return rates


def _cmd_emulate(args: argparse.Namespace) -> int:
    from batchrecall.emulators.common import EmulatorSettings
    from batchrecall.emulators.seeding import load_scenario, seed_jobs
    from batchrecall.emulators.server import EmulatorSet, serve

    try:
        settings = EmulatorSettings(
            latency_ms=args.latency_ms,
            fault_rate=args.fault_rate,
            recall_window_s=args.recall_window_s,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    emulators = EmulatorSet(settings, rates=parse_vendor_rates(args.rate))
    scenario = load_scenario(Path(args.scenario)) if args.scenario else None
    seeded = sum(seed_jobs(emulators, [Path(p) for p in args.seed], scenario).values())

    def ready(port: int) -> None:
        base = f"http://{args.host}:{port}"
        print(f"Emulators serving at {base} (/easemob, /goeasy, /yunxin)", flush=True)
        if seeded:
            print(f"Seeded {seeded} messages and conversations from the job files", flush=True)
        if args.write_config:
            Path(args.write_config).write_text(emulators.config_toml(base), encoding="utf-8")
            print(f"Wrote a config for these emulators to {args.write_config}", flush=True)
        print("Stop with Ctrl-C.", flush=True)

    async def main() -> None:
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:

            async def on_signal() -> None:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        stop.set()
                        return

            tg.start_soon(on_signal)
            await serve(emulators, args.host, args.port, ready=ready, shutdown_event=stop)
            tg.cancel_scope.cancel()

    try:
        anyio.run(main)
    except OSError as exc:
        print(f"batchrecall: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    return ExitCode.OK
