"""`--shard I/N` on the command line: the argument and a shard's results file."""

from __future__ import annotations

import argparse
from pathlib import Path

from batchrecall.intake.shard import Shard
from batchrecall.results.store import Format


def shard_argument(text: str) -> Shard:
    """argparse `type=` for `--shard I/N`."""
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def shard_results_path(job: Path, fmt: Format, shard: Shard) -> Path:
    """Each shard's own results file beside the job: `<stem>.shard-I-of-N.results.jsonl`."""
    return job.with_name(f"{job.stem}.{shard.label}.results.{fmt}")
