"""Command line: argument parsing, the confirmation gate and exit codes."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from batchrecall.cli import output
from batchrecall.cli.arguments import build_parser
from batchrecall.cli.guard import run_command
from batchrecall.cli.sharding import shard_reader, shard_results_path, shards_of_results
from batchrecall.config import (
    Config,
    check_run_settings,
    load_config,
    resolve_config_path,
)
from batchrecall.errors import ConfigError, JobFileError, UsageError
from batchrecall.intake.distinct import DistinctKeys
from batchrecall.intake.encoding import DEFAULT_ENCODING
from batchrecall.intake.partition import Partition
from batchrecall.intake.plan import Plan
from batchrecall.intake.reader import read_job
from batchrecall.intake.shard import Shard
from batchrecall.logs import configure_logging
from batchrecall.models import InvalidRow, Item, JobRef, Vendor
from batchrecall.results.manifest import Manifest, recorded_encodings
from batchrecall.results.store import (
    Format,
    ResultsLock,
    ResumeIndex,
    default_results_path,
    format_of,
    load_resume_index,
    sniff_format,
)
from batchrecall.results.summary import ExitCode, count_phrase


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(words)
    args.words = words
    # Until a command sets up its own log (run, collect), events go to stderr, secrets redacted.
    configure_logging(level=logging.WARNING)
    return run_command(_handlers()[args.command], args)


_JOB_SUFFIXES = (".jsonl", ".ndjson", ".csv")


def _jobs(paths: Sequence[str], encoding: str | None = None) -> list[JobRef]:
    """The job files, refused now (JobFileError) if one cannot be a job file; they are opened
    once, by the pass that reads them."""
    refs = [JobRef(path=Path(p), name=p, encoding=encoding or DEFAULT_ENCODING) for p in paths]
    for ref in refs:
        if ref.path.suffix.lower() not in _JOB_SUFFIXES or not ref.path.is_file():
            read_job(ref.path, job_name=ref.name, encoding=ref.encoding)  # the reader's message
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
    # The HTTP stack and the display load here: validate, plan and collect do without them.
    import anyio
    from rich.console import Console

    from batchrecall.cli.progress import TerminalProgress
    from batchrecall.cli.progress_log import LogProgress
    from batchrecall.cli.tracking import RunTracker
    from batchrecall.run.runner import RunRequest, new_run_id, plan_job, run_request

    console = Console(stderr=True)
    show_display = not args.no_progress and console.is_terminal
    # A live display owns the terminal: stderr then gets only what needs attention. Otherwise
    # the log is how a run shows life (progress every 10 s, retries, throttles).
    level = logging.INFO if log_stream is not None or not show_display else logging.WARNING
    configure_logging(fmt=args.log_format, stream=log_stream, level=level)
    if args.emulate_scenario and not args.emulate:
        raise UsageError("--emulate-scenario needs --emulate")
    jobs = _jobs(args.jobs, args.encoding)
    rehearsal = None
    if args.emulate:
        from batchrecall.emulators.inprocess import EmulatedRun

        rehearsal = EmulatedRun(scenario=args.emulate_scenario)
        # Its lanes are known after the pass (below): the --rate overrides wait until then.
        config = _apply_run_overrides(rehearsal.lanes().config, args)
    else:
        config = _apply_overrides(load_config(resolve_config_path(args.config)), args)
    out, fmt = _results_path(args, jobs)
    # Held from before the results are read: a second run on this file stops here.
    lock = ResultsLock(out) if not args.dry_run else None
    # The one pass over the jobs leaves each lane's items here for the run; removed at the end,
    # when the run is refused, and at exit whatever happens.
    partition = Partition() if not args.dry_run else None
    with lock if lock is not None else nullcontext(), _closing(partition):
        resume = _resume_index(args, out)
        select = args.shard.contains if args.shard is not None else None
        plan = plan_job(
            jobs,
            config=None if rehearsal is not None else config,
            resume=resume,
            keep=select,
            partition=partition,
            observe=rehearsal.seed if rehearsal is not None else None,
        )
        emulated = None
        if rehearsal is not None:  # the seeded apps' lanes, at the product's default rates
            emulated = rehearsal.lanes()
            config = _apply_overrides(emulated.config, args)
            for key, lane_plan in plan.lanes.items():
                lane_plan.rate = config.lane(key).rate
        stdout = sys.stdout
        _print_shard(args.shard, stdout)
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
        run_id = new_run_id()
        manifest.start(
            run_id=run_id,
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
            lock=lock,
            select=select,
            run_id=run_id,
            partition=partition,
        )
        # What is built by now (modules, config, the plan, emulators' seeded messages) lives to
        # the end: out of the collector's sight, a full collection no longer stalls the sends
        # some 30 ms (a gap the vendor's 1-second windows never give back).
        gc.freeze()
        tracker = RunTracker(plan)
        if show_display:
            with TerminalProgress(tracker, console) as display:
                if log_stream is None:  # log lines go above the display, not through it
                    configure_logging(fmt=args.log_format, stream=sys.stderr, level=level)
                summary = anyio.run(run_request, replace(request, progress=display))
            configure_logging(fmt=args.log_format, stream=log_stream, level=level)
        else:
            say = None
            if log_stream is not None or sys.stderr.isatty():

                def say(text: str) -> None:
                    print(text, file=sys.stderr, flush=True)

            with LogProgress(tracker, say=say) as progress_log:
                summary = anyio.run(run_request, replace(request, progress=progress_log))
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
def _closing(partition: Partition | None) -> Iterator[None]:
    try:
        yield
    finally:
        if partition is not None:
            partition.close()


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
    config = _apply_run_overrides(config, args)
    for spec in args.rate:
        config = _apply_rate(config, spec)
    return config


def _apply_run_overrides(config: Config, args: argparse.Namespace) -> Config:
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
    return replace(config, run=run)


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
        # Every file opened (and a CSV's header read) before a row is checked: one that cannot
        # be read at all is refused before any problem is printed.
        sources = [
            read_job(job.path, job_name=job.name, encoding=job.encoding)
            for job in _jobs(args.jobs, args.encoding)
        ]
    except JobFileError as exc:
        print(f"batchrecall: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    valid = invalid = 0
    seen = DistinctKeys()  # counted at the end: a run's per-key answers cost three times more
    try:
        for source in sources:
            for row in source:
                if isinstance(row, InvalidRow):
                    invalid += 1
                    print(f"{row.job}:{row.line}: {row.problem}")
                else:
                    valid += 1
                    seen.add(row.item_key)
        items = seen.count()
    finally:
        seen.close()
    duplicates = valid - items
    print(count_phrase(items, invalid, duplicates))
    return ExitCode.INCOMPLETE if invalid else ExitCode.OK


def _cmd_plan(args: argparse.Namespace) -> int:
    jobs = _jobs(args.jobs, args.encoding)
    config: Config | None = None
    path = resolve_config_path(args.config)
    if args.config or os.environ.get("BATCHRECALL_CONFIG") or path.exists():
        config = load_config(path)
    from batchrecall.run.runner import plan_job

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

    def optional(value: str | None) -> Path | None:
        return Path(value) if value else None

    paths = [Path(p) for p in args.results]
    encodings = recorded_encodings(paths)

    def whole_jobs(path: Path, name: str) -> Iterator[Item | InvalidRow]:
        encoding = args.encoding or encodings.get(name, DEFAULT_ENCODING)
        return read_job(path, job_name=name, encoding=encoding)

    return run_report(
        paths,
        failed_jobs=optional(args.failed_jobs),
        all_failures=optional(args.all_failures),
        html=optional(args.html),
        read_job=shard_reader(whole_jobs, shards_of_results(paths)),
    )


def _handlers() -> dict[str, Callable[[argparse.Namespace], int]]:
    from batchrecall.cli.collect import cmd_collect
    from batchrecall.cli.emulate import cmd_emulate

    return {
        "run": _cmd_run,
        "validate": _cmd_validate,
        "plan": _cmd_plan,
        "report": _cmd_report,
        "emulate": cmd_emulate,
        "collect": cmd_collect,
    }


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
