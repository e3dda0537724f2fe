"""`batchrecall emulate`: serve the vendor emulators over HTTP for rehearsals."""

from __future__ import annotations

import argparse
import errno
import gc
import signal
import socket
import time
from pathlib import Path
from typing import Any

from batchrecall import catalog
from batchrecall.cli.job_options import encoding_option
from batchrecall.errors import ExitCode, UsageError
from batchrecall.intake.encoding import DEFAULT_ENCODING
from batchrecall.models import JobRef, Vendor

REHEARSAL_RECALL_WINDOW_S = 3600.0
"""Long enough that reading the plan and confirming never outruns it; --recall-window-s
rehearses the vendors' real two minutes."""

_EPILOG = """\
example:
  batchrecall emulate --write-config /tmp/rehearsal.toml --seed jobs/spam.jsonl --rate easemob=20
  batchrecall run jobs/spam.jsonl --config /tmp/rehearsal.toml
"""


def add_emulate_parser(sub: Any) -> None:
    emulate = sub.add_parser(
        "emulate",
        help="serve the vendor emulators on loopback, for rehearsals",
        description="Serve every installed vendor's API under its prefix (/easemob, /goeasy, "
        "/yunxin, /tencent, /rongcloud and any plugin vendor's) until Ctrl-C.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    emulate.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; name another than loopback explicitly (default: 127.0.0.1)",
    )
    emulate.add_argument(
        "--port", type=int, default=8750, help="port; 0 picks a free one (default: 8750)"
    )
    emulate.add_argument(
        "--write-config",
        metavar="P",
        help="write a config whose lanes point here: default and every app the seeded jobs "
        "name, at the product's default rates (default: none)",
    )
    emulate.add_argument(
        "--seed",
        nargs="+",
        default=[],
        metavar="JOB",
        help="make every message and conversation these jobs name exist, sent at start "
        "(default: none)",
    )
    encoding_option(emulate, default="utf-8, with or without BOM")
    emulate.add_argument(
        "--scenario",
        metavar="P",
        help="with --seed: a JSON list of items that differ (age_s, to, absent), as in "
        "samples/demo.scenario.json (default: none)",
    )
    emulate.add_argument(
        "--rate",
        action="append",
        default=[],
        metavar="VENDOR=R",
        help="the emulator's own limit, requests/s per app; stricter than the written config "
        "to rehearse throttling; repeatable (default: no limit)",
    )
    emulate.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        metavar="MS",
        help="added to every answer (default: 0)",
    )
    emulate.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        metavar="F",
        help="share of requests answered with a random 5xx (default: 0)",
    )
    emulate.add_argument(
        "--recall-window-s",
        type=float,
        default=REHEARSAL_RECALL_WINDOW_S,
        metavar="S",
        help="Easemob and Yunxin recall window, counted from the start; the vendors' own is "
        f"120 (default: {REHEARSAL_RECALL_WINDOW_S:g})",
    )


def parse_vendor_rates(specs: list[str]) -> dict[Vendor, float]:
    rates: dict[Vendor, float] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        try:
            rate = float(value)
        except ValueError:
            raise UsageError(f"--rate {spec}: expected VENDOR=R, e.g. easemob=20") from None
        emulated = [n for n, vendor in catalog.vendors().items() if vendor.emulator is not None]
        if name not in emulated:
            raise UsageError(
                f"--rate {spec}: no emulator of a vendor {name!r} (one of {', '.join(emulated)})"
            )
        vendors = [Vendor(name)]
        if not sep or rate <= 0:
            raise UsageError(f"--rate {spec}: R must be a positive number")
        for vendor in vendors:
            rates[vendor] = rate
    return rates


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, or a UsageError that says what to do."""
    from batchrecall.emulators.server import bind_socket

    try:
        return bind_socket(host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} is in use; pass --port 0 for a free one") from None
        raise UsageError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None


def _window(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def _clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(epoch))


def cmd_emulate(args: argparse.Namespace) -> int:
    import anyio

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
    if args.scenario and not args.seed:
        raise UsageError("--scenario needs --seed")
    emulators = EmulatorSet(settings, rates=parse_vendor_rates(args.rate))
    scenario = load_scenario(Path(args.scenario)) if args.scenario else None
    started = emulators.clock()
    encoding = args.encoding or DEFAULT_ENCODING
    jobs = [JobRef(path=Path(p), name=p, encoding=encoding) for p in args.seed]
    seeded = seed_jobs(emulators, jobs, scenario)
    gc.freeze()  # the seeded messages stay: a full collection over them stalled answers ~50 ms
    sock = bind(args.host, args.port)

    def ready(port: int) -> None:
        base = f"http://{args.host}:{port}"
        print(f"Emulators serving at {base} ({', '.join(emulators.prefixes())})", flush=True)
        if seeded:
            print(
                f"Seeded {sum(seeded.values()):,} messages and conversations from the job files "
                f"(apps: {', '.join(sorted(str(key) for key in seeded))})",
                flush=True,
            )
        until = started + settings.recall_window_s
        print(
            f"Recall window: {_window(settings.recall_window_s)} for Easemob and Yunxin "
            f"(seeded messages count as sent at {_clock(started)}: recall them by "
            f"{_clock(until)}), {_window(settings.goeasy_recall_window_s)} for GoEasy, "
            "none for Tencent IM (7 days of roaming storage) or RongCloud (none documented)",
            flush=True,
        )
        if args.rate:
            limits = parse_vendor_rates(args.rate)
            named = ", ".join(f"{vendor} {rate:g}/s" for vendor, rate in sorted(limits.items()))
            print(
                f"Emulator rate limits: {named} (stricter than the written config's rates)",
                flush=True,
            )
        if args.write_config:
            text = emulators.config_toml(base, apps=seeded.keys())
            _write_whole(Path(args.write_config), text)
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
            await serve(
                emulators, args.host, args.port, ready=ready, shutdown_event=stop, sock=sock
            )
            tg.cancel_scope.cancel()

    anyio.run(main)
    return ExitCode.OK


def _write_whole(path: Path, text: str) -> None:
    """Write the file under another name, then rename it: whoever waits for it to appear (a
    script, a test) never reads it half written."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
