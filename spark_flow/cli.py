"""`spark-flow`: the command line of the toolkit.

Each subcommand's parser names its handler (`set_defaults(handler=...)`); `main` parses and
calls it. A `SparkFlowError` escaping a handler is a request refused before any work (an
unknown job, a range that ends before it starts, a sequential job asked for concurrent runs):
like argparse's own errors it exits 2. Runs that start and fail are reported, and exit 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from spark_flow._command_line import logical_date_value, pop_option, run_date, runner_flags
from spark_flow._signals import sigterm_as_interrupt
from spark_flow.arguments import (
    count,
    fraction,
    hours,
    identifier,
    iso_date,
    positive_int,
    seconds,
)
from spark_flow.errors import (
    ConcurrentRunError,
    DependsOnPastError,
    InvalidArgumentError,
    SparkFlowError,
)
from spark_flow.isolation import ISOLATION_MODES
from spark_flow.jobs import split_at_double_dash

if TYPE_CHECKING:
    from spark_flow.runners import Progress, RunOutcome
    from spark_flow.runners.state import RunRecord

Handler = Callable[[argparse.Namespace], int]
# What the library's runner errors leave to the caller: here, the flags that do it.
_RUN_ADVICE: Mapping[type[SparkFlowError], str] = {
    ConcurrentRunError: "Pass --wait SECONDS to wait for it.",
    DependsOnPastError: "Pass --first if this date is the job's first.",
}
_BACKFILL_ADVICE: Mapping[type[SparkFlowError], str] = {
    ConcurrentRunError: "Pass --wait SECONDS to wait for it.",
    DependsOnPastError: "Rerun the backfill once the earlier date succeeds (dates that "
    "succeeded are not run again), or start the range (--start) on the refused date with "
    "--first to run it regardless.",
}
# The library's parameters that a refusal names, as the command line's flags, and what to do
# with the flag: a refusal names the flag the user typed, not the function argument behind it.
_FLAGS: Mapping[str, tuple[str, str]] = {
    "max_active_runs": (
        "--max-active-runs",
        "Backfill it with --max-active-runs 1: slow, but correct.",
    ),
}
# FAIR: concurrent runs in one session share the executors instead of queueing behind the first.
_FAIR = {"spark.scheduler.mode": "FAIR"}


def main(argv: Sequence[str] | None = None) -> int:
    """Run `spark-flow ARGS`; the exit code: 0 done, 1 a run failed, 2 a usage error."""
    own, after_dash = split_at_double_dash(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(own)
    usage: argparse.ArgumentParser = args.usage
    if after_dash and not args.takes_after_dash:
        usage.error(f"unrecognized arguments: -- {' '.join(after_dash)}")
    args.after_dash = after_dash
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handler: Handler = args.handler
    try:
        # Runs hold locks and write history: SIGTERM ends them as Ctrl-C does. The other
        # commands hold neither and keep the default (`submit` only waits for spark-submit).
        with sigterm_as_interrupt() if args.command in ("run", "backfill") else nullcontext():
            return handler(args)
    except SparkFlowError as exc:  # refused before any work: a usage error
        usage.error(_refusal(exc))


# -- the parsers ---------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spark-flow", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = _command(commands, "demo", _demo, "run the demo pipeline on generated data")
    demo.add_argument("--workdir", type=Path, default=Path("data/demo"), help="demo folder")
    demo.add_argument("--rows", type=positive_int, default=50, help="devices to generate")
    demo.add_argument(
        "--dataset",
        choices=("generated", "flights"),
        default="generated",
        help="flights: the hourly fan-in on real NYC 2013 flights (needs spark-flow[flights])",
    )

    generate = commands.add_parser("generate", help="generate a dataset")
    datasets = generate.add_subparsers(dest="dataset", required=True)
    devices = _command(
        datasets, "devices", _generate_devices, "devices JSON lines (type, full_name, version)"
    )
    devices.add_argument("--rows", type=count, required=True)
    devices.add_argument("--output", type=Path, required=True, help="folder to write into")
    devices.add_argument("--invalid-ratio", type=fraction, default=0.1)
    devices.add_argument("--seed", type=int, default=42)

    visits = _command(
        datasets, "visits", _generate_visits, "hourly visit partitions date=D/hour=HH/"
    )
    visits.add_argument("--date", type=iso_date, required=True, help="YYYY-MM-DD")
    visits.add_argument("--rows-per-hour", type=count, required=True)
    visits.add_argument("--output", type=Path, required=True, help="folder to write into")
    visits.add_argument(
        "--skip-hours", type=hours, default=(), help="hours not written, e.g. 3,7 (late data)"
    )
    visits.add_argument("--seed", type=int, default=42)

    _command(commands, "jobs", _jobs, "list the bundled jobs")
    run = _command(
        commands,
        "run",
        _run,
        "run a bundled job once, as a Single Runner: spark-flow run [options] JOB"
        " --date YYYY-MM-DD [job args] [-- triggered job's args]",
        takes_after_dash=True,
    )
    run.add_argument(
        "--date",
        type=logical_date_value,
        default=None,
        help="the run's logical date, YYYY-MM-DD or 'today'; before or after JOB, the job gets"
        " it too when it takes --date",
    )
    # A name: the key names the lock's folder (`../x` would leave the locks' folder).
    run.add_argument("--key", type=identifier, default=None, help="lock per key instead of per job")
    _runner_options(run)
    run.add_argument(
        "--first", action="store_true", help="exempt this date from depends_on_past (a start)"
    )
    run.add_argument("job")
    run.add_argument("job_args", nargs=argparse.REMAINDER, help="arguments for the job")

    _submit_command(commands)

    backfill = _command(
        commands,
        "backfill",
        _backfill,
        "run a job for every date in a range: ... -- job args ({ds} macros)",
        takes_after_dash=True,
    )
    backfill.add_argument("job")
    backfill.add_argument("--start", type=iso_date, required=True, help="first date, YYYY-MM-DD")
    backfill.add_argument("--end", type=iso_date, required=True, help="last date, included")
    backfill.add_argument("--max-active-runs", type=positive_int, default=1, help="runs at once")
    backfill.add_argument(
        "--isolation",
        choices=ISOLATION_MODES,
        default="thread",
        help="thread: the runs share one Spark session; process: one spark-submit per run",
    )
    backfill.add_argument("--rerun", action="store_true", help="run dates that succeeded too")
    backfill.add_argument(
        "--first",
        action="store_true",
        help="exempt --start from depends_on_past even when its previous date failed",
    )
    backfill.add_argument("--fail-fast", action="store_true", help="cancel the rest on a failure")
    _runner_options(backfill)

    cluster = commands.add_parser("cluster", help="a standalone Spark cluster on 127.0.0.1")
    actions = cluster.add_subparsers(dest="action", required=True)
    up = _command(actions, "up", _cluster_up, "start a master and a worker; print the URL")
    down = _command(actions, "down", _cluster_down, "stop them")
    for action in (up, down):
        action.add_argument("--dir", type=Path, default=Path("data/cluster"), help="pids and logs")
    up.add_argument("--port", type=int, default=7077, help="the master's port")
    up.add_argument("--ui-port", type=int, default=8080, help="the master's web UI port")

    runs = _command(commands, "runs", _runs, "the run history of a job")
    runs.add_argument("job")
    runs.add_argument(
        "--last", type=positive_int, default=20, help="attempts to show (newest first)"
    )
    return parser


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    handler: Handler,
    help_text: str,
    *,
    takes_after_dash: bool = False,
) -> argparse.ArgumentParser:
    """A subcommand whose parser names its handler (and reports its usage errors)."""
    command = commands.add_parser(name, help=help_text)
    command.set_defaults(handler=handler, usage=command, takes_after_dash=takes_after_dash)
    return command


def _submit_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    submit = _command(
        commands,
        "submit",
        _submit,
        "spark-submit a bundled job from any shell, with this environment's Spark and Python:"
        " spark-flow submit JOB [--profile P] [spark-submit options] -- [job args]",
        takes_after_dash=True,
    )
    submit.add_argument("--profile", default=None, help="profile name or .toml (default: local)")
    submit.add_argument("job", help="a bundled job's name (spark-flow jobs) or a .py script")
    submit.add_argument("spark_options", nargs=argparse.REMAINDER, help="spark-submit's options")


def _runner_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--depends-on-past",
        action="store_true",
        default=None,
        help="start a date only if the previous one succeeded (default: the job's policy)",
    )
    command.add_argument(
        "--wait", type=seconds, default=None, metavar="SECONDS", help="wait for a running holder"
    )


# -- the handlers --------------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    from spark_flow.demo import run_demo, run_flights_demo

    if args.dataset == "flights":
        run_flights_demo(args.workdir, sys.stdout)
    else:
        run_demo(args.workdir, sys.stdout, rows=args.rows)
    return 0


def _generate_devices(args: argparse.Namespace) -> int:
    from spark_flow.generate import generate_devices

    path = generate_devices(
        args.output, rows=args.rows, invalid_ratio=args.invalid_ratio, seed=args.seed
    )
    sys.stdout.write(f"{args.rows} devices -> {path}\n")
    return 0


def _generate_visits(args: argparse.Namespace) -> int:
    from spark_flow.generate import generate_visits

    files = generate_visits(
        args.output, date=args.date.isoformat(), rows_per_hour=args.rows_per_hour,
        skip_hours=args.skip_hours, seed=args.seed,
    )  # fmt: skip
    sys.stdout.write(f"{len(files)} hours x {args.rows_per_hour} visits -> {args.output}\n")
    return 0


def _jobs(args: argparse.Namespace) -> int:
    from spark_flow.jobs import available_jobs, describe

    for name in available_jobs():
        sys.stdout.write(f"{name:<24} {describe(name)}\n")
    return 0


def _cluster_up(args: argparse.Namespace) -> int:
    from spark_flow.cluster import start

    started = start(args.dir, port=args.port, ui_port=args.ui_port)
    sys.stdout.write(f"{started.url}\n")
    return 0


def _cluster_down(args: argparse.Namespace) -> int:
    from spark_flow.cluster import stop

    stopped = stop(args.dir)
    sys.stdout.write(f"stopped {len(stopped)} processes {stopped}\n")
    return 0


def _runs(args: argparse.Namespace) -> int:
    from spark_flow.jobs import resolve
    from spark_flow.runners.state import RunState

    records = RunState.from_profile().history(args.job)[: args.last]
    if not records:  # a typo, more likely than a job that never ran: say which jobs there are
        resolve(args.job)
    sys.stdout.write(_history_table(records) + "\n")
    return 0


def _run(args: argparse.Namespace) -> int:
    """One run as a Single Runner: one lock per job (or key), whatever the job's policy."""
    from spark_flow.isolation import ThreadIsolation
    from spark_flow.jobs import check_triggered, job_arguments, load, policy, run_and_report
    from spark_flow.runners import SingleRunner, expand
    from spark_flow.runners.state import RunState

    declared = policy(args.job)
    past = declared.depends_on_past if args.depends_on_past is None else args.depends_on_past
    module = load(args.job)
    job_parser = module.parser()
    day, job_args = run_date(args.job, args.date, args.job_args, job_parser)
    first, wait, job_args = runner_flags(job_args, job_parser, first=args.first, wait=args.wait)
    # Parsed up front: bad job arguments exit 2 before any lock is taken or JVM started.
    trigger = getattr(job_arguments(module, job_args, day), "trigger", None)
    # The triggered job runs as of the same day: its {ds} macros are this run's date.
    downstream = expand(args.after_dash, day)
    check_triggered(trigger, downstream)
    runner = SingleRunner(
        args.job, state=RunState.from_profile(), key=args.key, depends_on_past=past,
        wait=wait, rerun=True,
    )  # fmt: skip
    return run_and_report(
        args.job,
        # The session starts once the lock is ours: a refused run never starts Spark.
        lambda session: (
            runner.run(day, ThreadIsolation(args.job, job_args, session), first=first).report
        ),
        trigger=trigger,
        downstream=downstream,
        context={"logical_date": day.isoformat()},
        advice=partial(_advice, _RUN_ADVICE),
    )


def _submit(args: argparse.Namespace) -> int:
    from spark_flow.submit import submit

    profiles, spark_options = pop_option(args.spark_options, "--profile")
    profile = profiles[-1] if profiles else args.profile
    return submit(args.job, spark_options, args.after_dash, profile=profile)


def _backfill(args: argparse.Namespace) -> int:
    from spark_flow.isolation import isolation
    from spark_flow.jobs import LazySession, policy
    from spark_flow.runners import daily, runner_for
    from spark_flow.runners.state import RunState

    if args.end < args.start:
        raise InvalidArgumentError(
            "--end",
            f"expected a date on or after --start {args.start}, got {args.end}",
            "Give the range's first date as --start and its last as --end.",
        )
    dates = daily(args.start, args.end)
    runner = runner_for(
        args.job, state=RunState.from_profile(), policy=policy(args.job),
        depends_on_past=args.depends_on_past, max_active_runs=args.max_active_runs,
        fail_fast=args.fail_fast, rerun=args.rerun, wait=args.wait, on_progress=_show_progress,
    )  # fmt: skip
    session = LazySession(f"spark-flow backfill {args.job}", conf=_FAIR)
    try:
        task = isolation(args.isolation, args.job, args.after_dash, session=session)
        task.check(dates)
        report = runner.backfill(dates, task, cancel=task.cancel, first=args.first)
    finally:
        session.stop()
    report = replace(report, runs=tuple(_in_cli_words(r, _BACKFILL_ADVICE) for r in report.runs))
    sys.stdout.write(report.table() + "\n")
    sys.stdout.write(json.dumps(report.as_dict(), default=str) + "\n")
    advice = (_advice(_BACKFILL_ADVICE, run.exception) for run in report.runs)
    for line in dict.fromkeys(filter(None, advice)):
        sys.stderr.write(f"spark-flow backfill: {line}\n")
    return 0 if report.ok else 1


# -- output ------------------------------------------------------------------------------------


def _advice(advice: Mapping[type[SparkFlowError], str], exc: BaseException | None) -> str | None:
    """The command line's flag for a runner error that leaves the choice to its caller."""
    return next((text for kind, text in advice.items() if isinstance(exc, kind)), None)


def _in_cli_words(run: RunOutcome, advice: Mapping[type[SparkFlowError], str]) -> RunOutcome:
    """`run` with its error or refusal told again from its exception, with the command line's
    advice in place of the library's (an outcome's error or reason is its exception, told)."""
    exc, text = run.exception, _advice(advice, run.exception)
    if not isinstance(exc, SparkFlowError) or text is None:
        return run
    told = " ".join(exc.told(text).split())  # one line, as in the table and the report
    return replace(run, error=told) if run.error else replace(run, reason=told)


def _refusal(exc: SparkFlowError) -> str:
    """A request refused before any work, in argparse's words: `argument --FLAG: ...`.

    An argument error names the flag the user typed: the command line's own (`--date`), or
    the flag behind the library parameter it names (`max_active_runs`), with the flag's advice.
    """
    if not isinstance(exc, InvalidArgumentError):
        return str(exc)
    if exc.argument in _FLAGS:
        flag, fix = _FLAGS[exc.argument]
        exc = InvalidArgumentError(flag, exc.problem, fix)
    return f"argument {exc}" if exc.argument.startswith("-") else str(exc)


def _show_progress(progress: Progress) -> None:
    sys.stderr.write(
        f"{progress.job}: {progress.done} done, {progress.running} running, "
        f"{progress.queued} queued\n"
    )


def _history_table(records: Sequence[RunRecord]) -> str:
    lines = [
        f"{'date':<10}  {'attempt':>7}  {'status':<8}  {'started (UTC)':<19}  "
        f"{'seconds':>8}  {'rows':>8}  {'run id':<12}  error"
    ]
    for record in records:
        seconds = "" if record.seconds is None else f"{record.seconds:.1f}"
        rows = "" if record.rows is None else str(record.rows)
        day = "" if record.logical_date is None else record.logical_date.isoformat()
        started = record.started_at.strftime("%Y-%m-%d %H:%M:%S")
        lines.append(
            f"{day:<10}  {record.attempt:>7}  {record.status:<8}  {started:<19}  {seconds:>8}  "
            f"{rows:>8}  {record.run_id:<12}  {record.error or ''}".rstrip()
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
