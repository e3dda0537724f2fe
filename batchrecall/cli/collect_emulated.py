"""`collect --emulate --seed JOB...`: every vendor's emulator in this process, holding the messages
and conversations of those job files (sent just now), and lanes pointing at them: a collect
rehearsed end to end with no config and no network."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from batchrecall.emulators.inprocess import EmulatedLanes, EmulatedRun
from batchrecall.intake.encoding import DEFAULT_ENCODING
from batchrecall.intake.reader import read_job
from batchrecall.models import Item

__all__ = ["emulated_history"]


def emulated_history(jobs: Sequence[str]) -> tuple[EmulatedLanes, int]:
    """The seeded emulators' lanes, and how many messages and conversations they hold."""
    rehearsal = EmulatedRun()
    for job in jobs:
        for row in read_job(Path(job), job_name=job, encoding=DEFAULT_ENCODING):
            if isinstance(row, Item):
                rehearsal.seed(row)
    return rehearsal.lanes(), sum(rehearsal.named.values())
