"""Command line: argument parsing, the confirmation gate and exit codes."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TextIO

import anyio
from rich.console import Console

from batchrecall.cli import output
from batchrecall.cli.progress import TerminalProgress
from batchrecall.cli.progress_log import LogProgress
from batchrecall.cli.tracking import RunTracker
from batchrecall.config import (
    Config,
    check_run_settings,
    load_config,
    resolve_config_path,
)
from batchrecall.errors import ConfigError, JobFileError, UsageError
from batchrecall.intake.plan import Plan
from batchrecall.intake.reader import read_job
from batchrecall.keystore import KeyStore
from batchrecall.logs import configure_logging
from batchrecall.models import InvalidRow, JobRef, Vendor
from batchrecall.redact import redact
from batchrecall.results.manifest import Manifest, tool_version
from batchrecall.results.store import (
    Format,
    ResumeIndex,
    default_results_path,
    format_of,
    load_resume_index,
    sniff_format,
)
from batchrecall.results.summary import ExitCode, count_phrase
from batchrecall.run.runner import RunRequest, new_run_id, plan_job, run_job


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(words)
    args.words = words
    try:
        code: int = args.handler(args)
    except UsageError as exc:
        print(f"batchrecall: {redact(str(exc))}", file=sys.stderr)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        print("\nbatchrecall: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    return code


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batchrecall", description="Bulk recall and one-way delete of IM messages."
    )
    parser.add_argument("--version", action="version", version=f"batchrecall {tool_version()}")
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
    _log_options(run)
    run.set_defaults(handler=_cmd_run)

    validate = sub.add_parser(
        "validate",
        help="check job rows; send nothing",
        description="Check every row of the job files and print the problems by line. "
        "Exit 0 all rows valid, 1 some invalid, 2 a file unreadable.",
    )
    _job_arguments(validate)
    validate.set_defaults(handler=_cmd_validate)

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
    plan.set_defaults(handler=_cmd_plan)

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
    report.add_argument(
        "--html",
        metavar="P",
        help="write a self-contained HTML report with charts (default: none)",
    )
    report.set_defaults(handler=_cmd_report)

    from batchrecall.cli.emulate import add_emulate_parser

    add_emulate_parser(sub)
    return parser


def _job_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "jobs", nargs="+", metavar="JOB", help="job files (.jsonl, .ndjson or .csv), in order"
    )


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


def _jobs(paths: Sequence[str]) -> list[JobRef]:
    refs = [JobRef(path=Path(p), name=p) for p in paths]
    for ref in refs:
        read_job(ref.path, job_name=ref.name)  # raises JobFileError now if unreadable
    return refs


# -- run ---------------------------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    log_stream = _open_log(args.log_file)
    try:
        return _run(args, log_stream)
    finally:
        if log_stream is not None:
            log_stream.close()


def _run(args: argparse.Namespace, log_stream: TextIO | None) -> int:
    console = Console(stderr=True)
    show_display = not args.no_progress and console.is_terminal
    # A live display owns the terminal: stderr then gets only what needs attention. Otherwise
    # the log is how a run shows life (progress every 10 s, retries, throttles).
    level = logging.INFO if log_stream is not None or not show_display else logging.WARNING
    configure_logging(fmt=args.log_format, stream=log_stream, level=level)
    if args.emulate_scenario and not args.emulate:
        raise UsageError("--emulate-scenario needs --emulate")
    jobs = _jobs(args.jobs)
    emulated = None
    if args.emulate:
        from batchrecall.emulators.inprocess import emulated_lanes

        emulated = emulated_lanes(jobs, scenario=args.emulate_scenario)
        config = emulated.config
    else:
        config = load_config(resolve_config_path(args.config))
    config = _apply_overrides(config, args)
    out, fmt = _results_path(args, jobs)
    resume = _resume_index(args, out)
    plan = plan_job(jobs, config=config, resume=resume)
    stdout = sys.stdout
    output.print_plan(plan, out=out, stream=stdout, emulated=args.emulate)
    if args.dry_run:
        print("Dry run: nothing was sent.", file=stdout)
        return ExitCode.OK
    refused = _confirm(args, plan, stdout)
    if refused is not None:
        return refused
    manifest = Manifest(out, append=args.resume)
    if manifest.warning:
        print(f"warning: {manifest.warning}", file=sys.stderr)
    manifest.start(
        run_id=new_run_id(),
        command=["batchrecall", *args.words],
        jobs=jobs,
        config=config,
        resume=args.resume,
        emulated=args.emulate,
        plan=output.plan_facts(plan),
    )
    request = RunRequest(
        jobs=jobs,
        config=config,
        out=out,
        fmt=fmt,
        resume=resume,
        transport=emulated.transport if emulated else None,
        handle_signals=True,
    )
    tracker = RunTracker(plan)
    if show_display:
        with TerminalProgress(tracker, console) as display:
            if log_stream is None:  # log lines go above the display, not through it
                configure_logging(fmt=args.log_format, stream=sys.stderr, level=level)
            summary = anyio.run(run_job, replace(request, progress=display))
        configure_logging(fmt=args.log_format, stream=log_stream, level=level)
    else:
        say = None
        if log_stream is not None or sys.stderr.isatty():

            def say(text: str) -> None:
                print(text, file=sys.stderr, flush=True)

        with LogProgress(tracker, say=say) as progress_log:
            summary = anyio.run(run_job, replace(request, progress=progress_log))
    with _interrupts_held():
        code = summary.exit_code()
        totals = output.run_totals(plan, summary)
        manifest.finish(
            summary,
            code,
            items=totals.items,
            invalid_rows=totals.invalid_rows,
            duplicates=totals.duplicates,
        )
        try:
            output.print_summary(summary, totals, out=out, stream=stdout)
        finally:
            if summary.left_to_do:
                print(f"To continue: {_resume_command(args, out)}", file=stdout, flush=True)
    return code


@contextmanager
def _interrupts_held() -> Iterator[None]:
    """Ctrl-C while the summary prints must not cut off the manifest or the --resume line: it
    is ignored until they are written."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


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


def _confirm(args: argparse.Namespace, plan: Plan, stream: TextIO) -> int | None:
    """None to go on; else the exit code of a run that was not confirmed (nothing sent)."""
    if args.yes or plan.items == 0:
        return None
    if not sys.stdin.isatty():
        print(
            "batchrecall: run is destructive; without a terminal to confirm on, pass --yes",
            file=sys.stderr,
        )
        return ExitCode.USAGE
    what = f"{output.plural(plan.items, 'item')} in {output.plural(plan.calls, 'call')}"
    question = f"Send {what}? Type 'yes' to go on: "
    try:
        answer = input(question)
    except KeyboardInterrupt:
        print("\nNothing was sent.", file=stream)
        return ExitCode.INTERRUPTED
    except EOFError:
        print("\nNothing was sent (no answer).", file=stream)
        return ExitCode.USAGE
    if answer.strip().lower() in ("y", "yes"):
        return None
    print("Nothing was sent.", file=stream)
    return ExitCode.USAGE


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
    items = invalid = duplicates = 0
    seen = KeyStore()
    try:
        for job in jobs:
            for row in read_job(job.path, job_name=job.name):
                if isinstance(row, InvalidRow):
                    invalid += 1
                    print(f"{row.job}:{row.line}: {row.problem}")
                elif seen.add_new(row.item_key):
                    items += 1
                else:
                    duplicates += 1
    finally:
        seen.close()
    print(count_phrase(items, invalid, duplicates))
    return ExitCode.INCOMPLETE if invalid else ExitCode.OK


def _cmd_plan(args: argparse.Namespace) -> int:
    jobs = _jobs(args.jobs)
    config: Config | None = None
    path = resolve_config_path(args.config)
    if args.config or os.environ.get("BATCHRECALL_CONFIG") or path.exists():
        config = load_config(path)
    plan = plan_job(jobs, config=config)
    if config is None:
        print("(no config file: default rates assumed)")
    else:
        for key in plan.lanes:
            config.lane(key)
    output.print_plan(plan, out=None, stream=sys.stdout, emulated=False)
    return ExitCode.OK


def _cmd_report(args: argparse.Namespace) -> int:
    from batchrecall.results.report import run_report

    def optional(value: str | None) -> Path | None:
        return Path(value) if value else None

    return run_report(
        [Path(p) for p in args.results],
        failed_jobs=optional(args.failed_jobs),
        all_failures=optional(args.all_failures),
        html=optional(args.html),
        read_job=lambda path, name: read_job(path, job_name=name),
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
