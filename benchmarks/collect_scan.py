"""`collect --export` on a 1,000,000-record gzip export: records a second and peak RSS, beside
`gzip -dc FILE | grep -c SENDER` and `gzip -dc FILE | jq -c 'select(.payload.from == "SENDER")'`
on the same file in the same run (jq: `apt-get install jq`; its line is skipped without it)."""

from __future__ import annotations

import gzip
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import orjson

SENDERS = ("spammer-7", "spammer-8", "spammer-9")
_BASE_MS = 1_764_754_800_000
_USERS = 5_000


def write_export(path: Path, records: int) -> Path:
    """A documented-shape export: a few senders' spam among many users' ordinary messages."""
    with gzip.open(path, "wb", compresslevel=6) as handle:
        chunk: list[bytes] = []
        for n in range(records):
            spam = n % 997 == 0
            sender = SENDERS[n % 3] if spam else f"user-{n % _USERS}"
            to = f"group-{n % 300}" if n % 3 else f"user-{(n * 7) % _USERS}"
            chunk.append(
                orjson.dumps(
                    {
                        "msg_id": str(1_400_000_000_000_000_000 + n),
                        "timestamp": _BASE_MS + n * 3,
                        "direction": "outgoing",
                        "to": to,
                        "from": sender,
                        "chat_type": "groupchat" if n % 3 else "chat",
                        "payload": {
                            "bodies": [{"msg": f"message {n} buy now" if spam else f"hi {n}",
                                        "type": "txt"}],
                            "ext": {},
                            "from": sender,
                            "to": to,
                        },
                    }
                )
                + b"\n"
            )  # fmt: skip
            if len(chunk) == 10_000:
                handle.write(b"".join(chunk))
                chunk = []
        handle.write(b"".join(chunk))
    return path


def _timed(command: list[str] | str, *, shell: bool = False) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in KiB (of the largest process, GNU time) and stdout."""
    wrapped = ["/usr/bin/time", "-f", "%M", *(["sh", "-c", command] if shell else command)]
    start = time.perf_counter()
    done = subprocess.run(wrapped, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    rss = int(done.stderr.strip().splitlines()[-1]) if done.stderr.strip() else 0
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{command}: exit {done.returncode}: {done.stderr[-500:]}")
    return elapsed, rss, done.stdout


def _collect(export: Path, out: Path) -> tuple[float, int]:
    seconds, rss, _ = _timed(
        [sys.executable, "-m", "batchrecall", "collect", "easemob", "--export",
         str(export), "--sender", SENDERS[0], "--since", "2025-01-01T00:00Z", "--out", str(out)]
    )  # fmt: skip
    out.unlink(missing_ok=True)
    Path(str(out) + ".manifest.json").unlink(missing_ok=True)
    return seconds, rss


def bench(tmp: Path, repeats: int = 3) -> list[str]:
    lines: list[str] = []
    small = write_export(tmp / "export-100k.gz", 100_000)
    big = write_export(tmp / "export-1m.gz", 1_000_000)
    out = tmp / "collected.jsonl"
    grep_command = f"gzip -dc {big} | grep -c '\"{SENDERS[0]}\"'"
    jq_command = (
        f"gzip -dc {big} | jq -c 'select(.payload.from == \"{SENDERS[0]}\")' | wc -l"
        if shutil.which("jq")
        else ""
    )
    # One of each in turn, so that the machine's load weighs on each alike.
    ours, ours_small, grep, jq = [], [], [], []
    for _ in range(repeats):
        ours.append(_collect(big, out))
        grep.append(_timed(grep_command, shell=True)[0])
        if jq_command:
            jq.append(_timed(jq_command, shell=True)[0])
        ours_small.append(_collect(small, out))
    ours_s = statistics.median(s for s, _ in ours)
    grep_s = statistics.median(grep)
    rss_big = statistics.median(r for _, r in ours) / 1024
    rss_small = statistics.median(r for _, r in ours_small) / 1024
    lines.append(
        f"collect --export, 1,000,000 records: {1_000_000 / ours_s:,.0f} records/s "
        f"({ours_s:.2f} s); gzip -dc | grep -c: {1_000_000 / grep_s:,.0f}/s ({grep_s:.2f} s); "
        f"ratio {grep_s / ours_s:.2f} x grep (goal >= 0.3)"
    )
    if jq:
        jq_s = statistics.median(jq)
        each = ", ".join(f"{j / o:.1f}" for j, (o, _) in zip(jq, ours, strict=True))
        lines.append(
            f"gzip -dc | jq select: {1_000_000 / jq_s:,.0f}/s ({jq_s:.2f} s); "
            f"collect is {jq_s / ours_s:.1f} x jq (goal >= 10; run by run {each})"
        )
    else:
        lines.append("jq: not installed (apt-get install jq); its comparison skipped")
    lines.append(
        f"collect peak RSS: {rss_small:.0f} MiB at 100,000 records, {rss_big:.0f} MiB at "
        f"1,000,000 ({rss_big / rss_small:.2f} x; goal <= 100 MB, flat)"
    )
    return lines
