"""batchrecall: bulk recall and one-way delete of IM messages, safely and fast."""

from batchrecall.config import Config, load_config
from batchrecall.intake.plan import Plan
from batchrecall.intake.reader import read_job
from batchrecall.models import Item, JobRef, Op, ResultRow, Status, Vendor
from batchrecall.results.summary import ExitCode, Summary
from batchrecall.run.runner import RunRequest, plan_job, run_job, run_request

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
