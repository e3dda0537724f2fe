"""batchrecall: bulk recall and one-way delete of IM messages, safely and fast."""

from batchrecall.config import Config, load_config
from batchrecall.engine import JobRef
from batchrecall.jobs import read_job
from batchrecall.models import Item, Op, ResultRow, Status, Vendor
from batchrecall.plan import Plan, build_plan
from batchrecall.runner import RunRequest, run_job
from batchrecall.summary import ExitCode, Summary

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
    "build_plan",
    "load_config",
    "read_job",
    "run_job",
]
