"""Command line: argument parsing, the confirmation gate and exit codes."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TextIO

import anyio
import structlog
from rich.console import Console

from batchrecall.cli import output
from batchrecall.cli.sharding import shard_argument, shard_results_path
from batchrecall.config import (
    Config,
    check_run_settings,
    load_config,
    resolve_config_path,
)
from batchrecall.errors import ConfigError, JobFileError, UsageError
from batchrecall.intake.plan import Plan
from batchrecall.intake.reader import read_job
from batchrecall.intake.shard import Shard
from batchrecall.logs import configure_logging
from batchrecall.models import InvalidRow, JobRef, Vendor
from batchrecall.redact import redact
from batchrecall.results.recorder import ProgressSink
from batchrecall.results.store import (
    Format,
    ResultsLock,
    ResumeIndex,
    default_results_path,
    format_of,
    load_resume_index,
    sniff_format,
)
from batchrecall.results.summary import ExitCode
from batchrecall.run.runner import RunRequest, plan_job, run_request


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(words)
    args.words = words
    try:
        code: int = args.handler(args)
    except UsageError as exc:
        print(f"batchrecall: {redact(str(exc))}", file=sys.stderr)
        return ExitCode.USAGE
    except Exception as exc:  # a bug: say so, keep the traceback, and exit with its own code
        structlog.get_logger("batchrecall").exception(
            "batchrecall.internal_error", error=exc.__class__.__name__
        )
        print(
            f"batchrecall: internal error ({exc.__class__.__name__}); this is a bug, "
            "the traceback is in the log. Rows written so far are kept: --resume continues.",
            file=sys.stderr,
        )
        return ExitCode.INTERNAL
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batchrecall", description="Bulk recall and one-way delete of IM messages."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="send the jobs' requests (destructive)")
    run.add_argument("jobs", nargs="+", metavar="JOB")
    run.add_argument("--config")
    run.add_argument("--out")
    run.add_argument("--format", choices=("jsonl", "csv"))
    again = run.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true")
    again.add_argument("--overwrite", action="store_true")
    run.add_argument("--emulate", action="store_true", help="use the built-in emulators")
    run.add_argument("--emulate-scenario", metavar="P", help=argparse.SUPPRESS)
    run.add_argument("--dry-run", action="store_true")
    run.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    run.add_argument("--concurrency", type=int)
    run.add_argument("--rate", action="append", default=[], metavar="VENDOR[.APP]=R")
    run.add_argument("--max-attempts", type=int)
    run.add_argument("--halt-failure-rate", type=float)
    run.add_argument("--no-progress", action="store_true")
    run.add_argument("--shard", type=shard_argument, metavar="I/N", help="send shard I of N")
    _log_options(run)
    run.set_defaults(handler=_cmd_run)

    validate = sub.add_parser("validate", help="check job rows; send nothing")
    validate.add_argument("jobs", nargs="+", metavar="JOB")
    validate.set_defaults(handler=_cmd_validate)

    plan = sub.add_parser("plan", help="items and calls per lane, duplicates, duration")
    plan.add_argument("jobs", nargs="+", metavar="JOB")
    plan.add_argument("--config")
    plan.add_argument("--shard", type=shard_argument, metavar="I/N", help="plan shard I of N")
    plan.set_defaults(handler=_cmd_plan)

    report = sub.add_parser("report", help="summarise a results file")
    report.add_argument("results", nargs="+", metavar="RESULTS", help="one run's results files")
    report.add_argument("--failed-jobs", metavar="P")
    report.add_argument("--html", metavar="P")
    report.set_defaults(handler=_cmd_report)

    from batchrecall.cli.emulate import add_emulate_parser

    add_emulate_parser(sub)
    return parser


def _log_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-format", choices=("console", "json"))
    parser.add_argument("--log-file", metavar="P")


def _jobs(paths: Sequence[str]) -> list[JobRef]:
    refs = [JobRef(path=Path(p), name=p) for p in paths]
    for ref in refs:
        read_job(ref.path, job_name=ref.name)  # raises JobFileError now if unreadable
    return refs


# -- run ---------------------------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    log_stream = _open_log(args.log_file)
    # On stderr only what needs attention; a log file gets the whole story.
    level = logging.INFO if log_stream is not None else logging.WARNING
    configure_logging(fmt=args.log_format, stream=log_stream, level=level)
    jobs = _jobs(args.jobs)
    emulated = None
    if args.emulate:
        from batchrecall.emulators.inprocess import emulated_lanes

        emulated = emulated_lanes(jobs, scenario=args.emulate_scenario)
        config = emulated.config
    else:
        config = load_config(resolve_config_path(args.config))
    args.emulated = emulated
    config = _apply_overrides(config, args)
    out, fmt = _results_path(args, jobs)
    lock = None if args.dry_run else ResultsLock(out)
    if lock is not None:
        lock.acquire()  # before the results are read: a second run on this file stops here
    try:
        return _run_locked(args, jobs, config, out, fmt, lock)
    finally:
        if lock is not None:
            lock.release()
        if log_stream is not None:
            log_stream.close()


def _run_locked(
    args: argparse.Namespace,
    jobs: list[JobRef],
    config: Config,
    out: Path,
    fmt: Format,
    lock: ResultsLock | None,
) -> int:
    resume = _resume_index(args, out)
    select = args.shard.contains if args.shard is not None else None
    plan = plan_job(jobs, config=config, resume=resume, keep=select)
    stdout = sys.stdout
    _print_shard(args.shard, stdout)
    output.print_plan(plan, out=out, stream=stdout, emulated=args.emulate)
    if args.dry_run:
        print("Dry run: nothing was sent.", file=stdout)
        return ExitCode.OK
    if not _confirmed(args, plan, stdout):
        return ExitCode.USAGE
    console = Console(stderr=True)
    show_progress = not args.no_progress and console.is_terminal
    progress: ProgressSink = ProgressSink()
    request = RunRequest(
        jobs=jobs,
        config=config,
        out=out,
        fmt=fmt,
        resume=resume,
        transport=args.emulated.transport if args.emulated else None,
        handle_signals=True,
        lock=lock,
        select=select,
    )
    if show_progress:
        from batchrecall.cli.progress import TerminalProgress

        total = plan.items + plan.invalid_count + plan.duplicates
        with TerminalProgress(total, console) as bar:
            summary = anyio.run(run_request, replace(request, progress=bar))
    else:
        summary = anyio.run(run_request, replace(request, progress=progress))
    output.print_summary(summary, out=out, stream=stdout)
    code = summary.exit_code()
    if summary.left_to_do:
        print(f"To continue: {_resume_command(args, out)}", file=stdout)
    return code


def _open_log(path: str | None) -> TextIO | None:
    if path is None:
        return None
    try:
        return open(path, "a", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--log-file {path}: {exc.strerror}") from None


def _apply_overrides(config: Config, args: argparse.Namespace) -> Config:
    run = config.run
    if args.concurrency is not None:
        run = replace(run, concurrency=args.concurrency)
    if args.max_attempts is not None:
        run = replace(run, max_attempts=args.max_attempts)
    if args.halt_failure_rate is not None:
        run = replace(run, halt_failure_rate=args.halt_failure_rate)
    try:
        check_run_settings(run)
    except ConfigError as exc:
        raise UsageError(str(exc).replace("config: run.", "--").replace("_", "-")) from None
    config = replace(config, run=run)
    for spec in args.rate:
        config = _apply_rate(config, spec)
    return config


def _apply_rate(config: Config, spec: str) -> Config:
    target, sep, value = spec.partition("=")
    try:
        rate = float(value)
    except ValueError:
        rate = 0.0
    if not sep or rate <= 0:
        raise UsageError(f"--rate {spec}: expected VENDOR[.APP]=R with R > 0")
    vendor_name, _, app = target.partition(".")
    try:
        vendor = Vendor(vendor_name)
    except ValueError:
        raise UsageError(f"--rate {spec}: unknown vendor {vendor_name!r}") from None
    keys = [k for k in config.lanes if k.vendor is vendor and (not app or k.app == app)]
    if app and not keys:
        raise UsageError(f"--rate {spec}: the config has no [{vendor}.{app}]")
    for key in keys:
        config = config.with_rate(key, rate)
    return config


def _results_path(args: argparse.Namespace, jobs: Sequence[JobRef]) -> tuple[Path, Format]:
    if args.out:
        out = Path(args.out)
        fmt = format_of(out, args.format)
        if args.format and args.format != fmt:
            raise UsageError(f"--out {out} is a {fmt} name but --format says {args.format}")
    else:
        fmt = "csv" if args.format == "csv" else "jsonl"
        if args.shard is not None:
            out = shard_results_path(jobs[0].path, fmt, args.shard)
        else:
            out = default_results_path(jobs[0].path, fmt)
    if args.resume and out.is_file() and out.stat().st_size:
        written = sniff_format(out)  # appending keeps the file's own format
        if args.format and args.format != written:
            raise UsageError(f"{out} holds {written} rows; --format {args.format} does not match")
        fmt = written
    return out, fmt


def _resume_index(args: argparse.Namespace, out: Path) -> ResumeIndex | None:
    exists = out.exists() and out.stat().st_size > 0
    if out.is_dir():
        raise UsageError(f"results path {out} is a directory")
    if args.resume:
        if not exists:
            return ResumeIndex()
        index = load_resume_index(out)
        if index.torn_lines:
            print(
                f"warning: {out}: ignored {index.torn_lines} unreadable line(s) "
                "(a run cut off mid-write)",
                file=sys.stderr,
            )
        return index
    if exists and not args.overwrite and not args.dry_run:
        raise UsageError(
            f"results file {out} exists: pass --resume to continue it or --overwrite to replace it"
        )
    return None


def _confirmed(args: argparse.Namespace, plan: Plan, stream: TextIO) -> bool:
    if args.yes or plan.items == 0:
        return True
    if not sys.stdin.isatty():
        print(
            "batchrecall: run is destructive; without a terminal to confirm on, pass --yes",
            file=sys.stderr,
        )
        return False
    answer = input(f"Send {plan.items} items in {plan.calls} calls? Type 'yes' to go on: ")
    if answer.strip().lower() in ("y", "yes"):
        return True
    print("Nothing was sent.", file=stream)
    return False


def _resume_command(args: argparse.Namespace, out: Path) -> str:
    """The command line that was run, continuing its results file."""
    words = [w for w in args.words if w not in ("--overwrite", "--dry-run")]
    if "--resume" not in words:
        words.append("--resume")
    if not args.out:
        words += ["--out", str(out)]
    if not args.yes:
        words.append("--yes")
    return shlex.join(["batchrecall", *words])


# -- validate, plan, report ----------------------------------------------------------------------


def _cmd_validate(args: argparse.Namespace) -> int:
    try:
        jobs = _jobs(args.jobs)
    except JobFileError as exc:
        print(f"batchrecall: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    items = invalid = 0
    for job in jobs:
        for row in read_job(job.path, job_name=job.name):
            if isinstance(row, InvalidRow):
                invalid += 1
                print(f"{row.job}:{row.line}: {row.problem}")
            else:
                items += 1
    print(f"{items} valid items, {invalid} invalid rows")
    return ExitCode.INCOMPLETE if invalid else ExitCode.OK


def _cmd_plan(args: argparse.Namespace) -> int:
    jobs = _jobs(args.jobs)
    config: Config | None = None
    path = resolve_config_path(args.config)
    if args.config or os.environ.get("BATCHRECALL_CONFIG") or path.exists():
        config = load_config(path)
    plan = plan_job(jobs, config=config, keep=args.shard.contains if args.shard else None)
    if config is None:
        print("(no config file: default rates assumed)")
    else:
        for key in plan.lanes:
            config.lane(key)
    _print_shard(args.shard, sys.stdout)
    output.print_plan(plan, out=None, stream=sys.stdout, emulated=False)
    return ExitCode.OK


def _print_shard(shard: Shard | None, stream: TextIO) -> None:
    if shard is not None:
        print(
            f"Shard {shard}: the items whose shard is {shard.index} of {shard.count}", file=stream
        )


def _cmd_report(args: argparse.Namespace) -> int:
    from batchrecall.results.report import run_report

    return run_report(
        [Path(p) for p in args.results],
        failed_jobs=Path(args.failed_jobs) if args.failed_jobs else None,
        html=Path(args.html) if args.html else None,
        read_job=lambda path, name: read_job(path, job_name=name),
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
