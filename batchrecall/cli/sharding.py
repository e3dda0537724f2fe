"""`--shard I/N` on the command line: the argument, a shard's results file, and which shards
a report's results files hold."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from batchrecall.intake.shard import Shard
from batchrecall.models import InvalidRow, Item
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


_SHARD_IN_NAME = re.compile(r"\.shard-(\d+)-of-(\d+)\.results\.[a-z]+$")


def shards_of_results(paths: Sequence[Path]) -> list[Shard] | None:
    """The shards these results files hold, from the runs their manifests recorded (or a
    shard's default file name); None when any of them holds a whole job."""
    shards: list[Shard] = []
    for path in paths:
        shard = _recorded_shard(path)
        if shard is None:
            found = _SHARD_IN_NAME.search(path.name)
            if found is None:
                return None
            shard = Shard(int(found[1]), int(found[2]))
        shards.append(shard)
    return shards


def _recorded_shard(results: Path) -> Shard | None:
    from batchrecall.results.manifest import manifest_path, read_manifest

    try:
        runs = read_manifest(manifest_path(results))["runs"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    for run in runs:
        words = [str(word) for word in run.get("command") or []]
        for i, word in enumerate(words):
            value = words[i + 1] if word == "--shard" and i + 1 < len(words) else ""
            if word.startswith("--shard="):
                value = word.partition("=")[2]
            if value:
                try:
                    return Shard.parse(value)
                except ValueError:
                    return None
    return None


def shard_reader(
    read: Callable[[Path, str], Iterable[Item | InvalidRow]], shards: Sequence[Shard] | None
) -> Callable[[Path, str], Iterable[Item | InvalidRow]]:
    """A job reader that yields only the rows of these shards (all rows when None): a report
    over some shards never counts, nor writes as left to do, another shard's items."""
    if shards is None:
        return read

    def reading(path: Path, name: str) -> Iterator[Item | InvalidRow]:
        rows = read(path, name)
        return (row for row in rows if any(shard.contains(row) for shard in shards))

    return reading
