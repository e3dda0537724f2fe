"""The command line's commands and options: each says what it does and its default."""

from __future__ import annotations

import argparse

from batchrecall.cli.collect import add_collect_parser
from batchrecall.cli.emulate import add_emulate_parser
from batchrecall.cli.job_options import encoding_option
from batchrecall.cli.sharding import shard_argument

_RUN_EPILOG = """\
examples:
  batchrecall run jobs/spam.jsonl --emulate              try it on the built-in emulators
  batchrecall run jobs/spam.jsonl --config prod.toml     send for real, after a confirmation
  batchrecall run jobs/spam.jsonl --config prod.toml --resume --yes
                                                         continue a run that was cut short

config lookup: --config P, else $BATCHRECALL_CONFIG, else ./batchrecall.toml
"""

_REPORT_EPILOG = """\
exit codes: 0 nothing left to do, 1 items left to do (--failed-jobs writes them),
2 a results file that cannot be read
"""


def build_parser() -> argparse.ArgumentParser:
    """Every command and option, each with what it does and its default."""
    parser = argparse.ArgumentParser(
        prog="batchrecall", description="Bulk recall and one-way delete of IM messages."
    )
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="send the jobs' requests (destructive)",
        description="Send every request of the job files and write one result row per item.",
        epilog=_RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _job_arguments(run)
    _config_option(run)
    run.add_argument(
        "--out",
        metavar="P",
        help="the results file (default: <first job's stem>.results.jsonl beside it)",
    )
    run.add_argument(
        "--format",
        choices=("jsonl", "csv"),
        help="results format (default: jsonl; csv for an --out ending in .csv)",
    )
    again = run.add_mutually_exclusive_group()
    again.add_argument(
        "--resume",
        action="store_true",
        help="continue the results file: send only what is left to do (default: off)",
    )
    again.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing results file (default: off, an existing one is refused)",
    )
    run.add_argument(
        "--emulate",
        action="store_true",
        help="send to the built-in emulators in this process; no config needed (default: off)",
    )
    run.add_argument(
        "--emulate-scenario",
        metavar="P",
        help="with --emulate: a JSON list of items that differ (age_s, to, absent), "
        "as in samples/demo.scenario.json (default: none)",
    )
    run.add_argument(
        "--dry-run", action="store_true", help="show the plan, send nothing (default: off)"
    )
    run.add_argument(
        "--yes",
        action="store_true",
        help="do not ask for confirmation; needed without a terminal (default: ask)",
    )
    run.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="requests in flight, all lanes together (default: run.concurrency, 64)",
    )
    run.add_argument(
        "--rate",
        action="append",
        default=[],
        metavar="VENDOR[.APP]=R",
        help="requests/s for a vendor's lanes or one lane; repeatable (default: the config's)",
    )
    run.add_argument(
        "--max-attempts",
        type=int,
        metavar="N",
        help="tries per call, the first included (default: run.max_attempts, 6)",
    )
    run.add_argument(
        "--halt-failure-rate",
        type=float,
        metavar="F",
        help="halt when more than this share of answered items failed "
        "(default: run.halt_failure_rate, 0.5)",
    )
    run.add_argument(
        "--no-progress",
        action="store_true",
        help="no live display; a progress event every 10 s in the log instead "
        "(default: a display on a terminal)",
    )
    run.add_argument(
        "--shard",
        type=shard_argument,
        metavar="I/N",
        help="send only shard I of N of the jobs, into <stem>.shard-I-of-N.results.jsonl "
        "(default: the whole job)",
    )
    _log_options(run)

    validate = sub.add_parser(
        "validate",
        help="check job rows; send nothing",
        description="Check every row of the job files and print the problems by line. "
        "Exit 0 all rows valid, 1 some invalid, 2 a file unreadable.",
    )
    _job_arguments(validate)

    plan = sub.add_parser(
        "plan",
        help="items and calls per lane, duplicates, duration",
        description="Items and calls per lane, invalid rows, duplicates and the duration at "
        "the lanes' rates; sends nothing.",
    )
    _job_arguments(plan)
    _config_option(
        plan, default="$BATCHRECALL_CONFIG, else ./batchrecall.toml, else the default rates"
    )
    plan.add_argument(
        "--shard",
        type=shard_argument,
        metavar="I/N",
        help="plan only shard I of N of the jobs (default: the whole job)",
    )

    report = sub.add_parser(
        "report",
        help="summarise results: what is left, what failed, an HTML report",
        description="The latest outcome of every item of one or more results files, and the "
        "runs their manifests recorded.",
        epilog=_REPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument(
        "results", nargs="+", metavar="RESULTS", help="results files written by `run`"
    )
    report.add_argument(
        "--failed-jobs",
        metavar="P",
        help="write a job file of every item left to do, for a new run "
        "(JSONL; CSV for a name ending in .csv) (default: none)",
    )
    report.add_argument(
        "--all-failures",
        metavar="P",
        help="write the result row of every item not ok or not_found, invalid rows "
        "included, each with its error (JSONL; CSV for .csv) (default: none)",
    )
    encoding_option(
        report, default="the encoding each job's run recorded in the manifest, else utf-8"
    )
    report.add_argument(
        "--html",
        metavar="P",
        help="write a self-contained HTML report with charts (default: none)",
    )

    add_emulate_parser(sub)
    add_collect_parser(sub)
    return parser


def _job_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "jobs", nargs="+", metavar="JOB", help="job files (.jsonl, .ndjson or .csv), in order"
    )
    encoding_option(parser, default="utf-8, with or without BOM")


def _config_option(
    parser: argparse.ArgumentParser, default: str = "$BATCHRECALL_CONFIG, else ./batchrecall.toml"
) -> None:
    parser.add_argument("--config", metavar="P", help=f"the config file (default: {default})")


def _log_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-format",
        choices=("console", "json"),
        help="how log events look (default: console on a terminal, json elsewhere)",
    )
    parser.add_argument(
        "--log-file",
        metavar="P",
        help="append every log event to this file (default: stderr)",
    )


class _VersionAction(argparse.Action):
    """--version, looked up when asked: the package metadata is not read on every start."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        from batchrecall.results.manifest import tool_version

        print(f"batchrecall {tool_version()}")
        parser.exit()
