"""`--shard I/N` on the command line: the argument, a shard's results file and its plan."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from batchrecall.config import DEFAULT_RATES, Config
from batchrecall.intake.plan import Plan, build_plan
from batchrecall.intake.shard import Shard
from batchrecall.models import Item, JobRef, LaneKey
from batchrecall.results.store import Format, ResumeIndex
from batchrecall.vendors import ADAPTERS


def shard_argument(text: str) -> Shard:
    """argparse `type=` for `--shard I/N`."""
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def shard_results_path(job: Path, fmt: Format, shard: Shard) -> Path:
    """Each shard's own results file beside the job: `<stem>.shard-I-of-N.results.jsonl`."""
    return job.with_name(f"{job.stem}.{shard.label}.results.{fmt}")


def plan_shard(
    jobs: Sequence[JobRef], shard: Shard, *, config: Config | None, resume: ResumeIndex | None
) -> Plan:
    """The plan of one shard's share of the jobs, as `plan_job` plans a whole run."""

    def limit(item: Item) -> int:
        settings = config.lane(item.lane) if config else None
        return ADAPTERS[item.vendor].planned_items(item.op, settings)

    def rate(key: LaneKey) -> float:
        return config.lane(key).rate if config else DEFAULT_RATES[key.vendor]

    return build_plan(
        jobs,
        limit=limit,
        rate=rate,
        is_done=resume.is_done if resume is not None else None,
        keep=shard.contains,
    )
