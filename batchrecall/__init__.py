"""batchrecall: bulk recall and one-way delete of IM messages, safely and fast.

The names below load on first use, so a command that needs only job intake (`validate`,
`collect --export`) does not start by importing the HTTP stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchrecall.config import Config, load_config
    from batchrecall.intake.plan import Plan
    from batchrecall.intake.reader import read_job
    from batchrecall.models import Item, JobRef, Op, ResultRow, Status, Vendor
    from batchrecall.results.summary import ExitCode, Summary
    from batchrecall.run.runner import RunRequest, plan_job, run_job, run_request

_HOMES = {
    "Config": "batchrecall.config",
    "load_config": "batchrecall.config",
    "Plan": "batchrecall.intake.plan",
    "read_job": "batchrecall.intake.reader",
    "Item": "batchrecall.models",
    "JobRef": "batchrecall.models",
    "Op": "batchrecall.models",
    "ResultRow": "batchrecall.models",
    "Status": "batchrecall.models",
    "Vendor": "batchrecall.models",
    "ExitCode": "batchrecall.results.summary",
    "Summary": "batchrecall.results.summary",
    "RunRequest": "batchrecall.run.runner",
    "plan_job": "batchrecall.run.runner",
    "run_job": "batchrecall.run.runner",
    "run_request": "batchrecall.run.runner",
}

__all__ = [
    "Config",
    "ExitCode",
    "Item",
    "JobRef",
    "Op",
    "Plan",
    "ResultRow",
    "RunRequest",
    "Status",
    "Summary",
    "Vendor",
    "load_config",
    "plan_job",
    "read_job",
    "run_job",
    "run_request",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'batchrecall' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
