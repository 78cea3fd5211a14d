"""`spark-flow`: the command line of the toolkit."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from spark_flow._common import failure_details, one_line
from spark_flow.errors import SparkFlowError
from spark_flow.runners import expand


def _hours(value: str) -> tuple[int, ...]:
    try:
        hours = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected hours like 3,7; got {value!r}") from None
    if any(not 0 <= hour <= 23 for hour in hours):
        raise argparse.ArgumentTypeError(f"hours go from 0 to 23; got {value!r}")
    return hours


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spark-flow", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="run the demo pipeline on generated data")
    demo.add_argument("--workdir", type=Path, default=Path("data/demo"), help="demo folder")
    demo.add_argument("--rows", type=int, default=50, help="devices to generate")
    demo.add_argument(
        "--dataset",
        choices=("generated", "flights"),
        default="generated",
        help="flights: the hourly fan-in on real NYC 2013 flights (needs spark-flow[flights])",
    )

    generate = commands.add_parser("generate", help="generate a dataset")
    datasets = generate.add_subparsers(dest="dataset", required=True)
    devices = datasets.add_parser("devices", help="devices JSON lines (type, full_name, version)")
    devices.add_argument("--rows", type=int, required=True)
    devices.add_argument("--output", type=Path, required=True, help="folder to write into")
    devices.add_argument("--invalid-ratio", type=float, default=0.1)
    devices.add_argument("--seed", type=int, default=42)

    visits = datasets.add_parser("visits", help="hourly visit partitions date=D/hour=HH/")
    visits.add_argument("--date", required=True, help="YYYY-MM-DD")
    visits.add_argument("--rows-per-hour", type=int, required=True)
    visits.add_argument("--output", type=Path, required=True, help="folder to write into")
    visits.add_argument(
        "--skip-hours", type=_hours, default=(), help="hours not written, e.g. 3,7 (late data)"
    )
    visits.add_argument("--seed", type=int, default=42)

    commands.add_parser("jobs", help="list the bundled jobs")
    run = commands.add_parser(
        "run",
        help="run a bundled job once, as a Single Runner: spark-flow run [options] JOB [job args]",
    )
    run.add_argument("--date", type=_date, default=None, help="logical date (default: today)")
    run.add_argument("--key", default=None, help="lock per key instead of per job")
    _runner_options(run)
    run.add_argument(
        "--first", action="store_true", help="exempt this date from depends_on_past (a start)"
    )
    run.add_argument("job")
    run.add_argument("job_args", nargs=argparse.REMAINDER, help="arguments for the job")

    backfill = commands.add_parser(
        "backfill", help="run a job for every date in a range: ... -- job args ({ds} macros)"
    )
    backfill.add_argument("job")
    backfill.add_argument("--start", type=_date, required=True, help="first date, YYYY-MM-DD")
    backfill.add_argument("--end", type=_date, required=True, help="last date, included")
    backfill.add_argument("--max-active-runs", type=int, default=1, help="runs at once")
    backfill.add_argument("--isolation", choices=("thread", "process"), default="thread")
    backfill.add_argument("--rerun", action="store_true", help="run dates that succeeded too")
    backfill.add_argument("--fail-fast", action="store_true", help="cancel the rest on a failure")
    _runner_options(backfill)

    cluster = commands.add_parser("cluster", help="a standalone Spark cluster on 127.0.0.1")
    cluster.add_argument("action", choices=("up", "down"))
    cluster.add_argument("--dir", type=Path, default=Path("data/cluster"), help="pids and logs")
    cluster.add_argument("--port", type=int, default=7077, help="the master's port")
    cluster.add_argument("--ui-port", type=int, default=8080, help="the master's web UI port")

    runs = commands.add_parser("runs", help="the run history of a job")
    runs.add_argument("job")
    runs.add_argument("--last", type=int, default=20, help="attempts to show (newest first)")
    return parser


def _runner_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--depends-on-past",
        action="store_true",
        default=None,
        help="start a date only if the previous one succeeded (default: the job's policy)",
    )
    command.add_argument(
        "--wait", type=float, default=None, metavar="SECONDS", help="wait for a running holder"
    )


def _date(value: str) -> date:
    from spark_flow.runners import parse_date

    try:
        return parse_date(value)
    except SparkFlowError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    job_args: list[str] = []
    if "--" in argv and "backfill" in argv[: argv.index("--")]:
        argv, job_args = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "demo" and args.dataset == "flights":
        from spark_flow.demo import run_flights_demo

        run_flights_demo(args.workdir, sys.stdout)
    elif args.command == "demo":
        from spark_flow.demo import run_demo

        run_demo(args.workdir, sys.stdout, rows=args.rows)
    elif args.command == "generate" and args.dataset == "visits":
        from spark_flow.generate import generate_visits

        files = generate_visits(
            args.output, date=args.date, rows_per_hour=args.rows_per_hour,
            skip_hours=args.skip_hours, seed=args.seed,
        )  # fmt: skip
        sys.stdout.write(f"{len(files)} hours x {args.rows_per_hour} visits -> {args.output}\n")
    elif args.command == "generate":
        from spark_flow.generate import generate_devices

        path = generate_devices(
            args.output, rows=args.rows, invalid_ratio=args.invalid_ratio, seed=args.seed
        )
        sys.stdout.write(f"{args.rows} devices -> {path}\n")
    elif args.command == "jobs":
        from spark_flow.jobs import available_jobs, describe

        for name in available_jobs():
            sys.stdout.write(f"{name:<24} {describe(name)}\n")
    elif args.command == "cluster" and args.action == "up":
        from spark_flow.cluster import start

        started = start(args.dir, port=args.port, ui_port=args.ui_port)
        sys.stdout.write(f"{started.url}\n")
    elif args.command == "cluster":
        from spark_flow.cluster import stop

        stopped = stop(args.dir)
        sys.stdout.write(f"stopped {len(stopped)} processes {stopped}\n")
    elif args.command == "runs":
        from spark_flow.runners.state import RunState

        records = RunState.from_profile().history(args.job)[: args.last]
        sys.stdout.write(_history_table(records) + "\n")
    elif args.command in ("run", "backfill"):
        try:
            return _run_or_backfill(args, job_args)
        except SparkFlowError as exc:  # a definition the runner refuses: a usage error
            parser.error(str(exc))
    return 0


def _run_or_backfill(args: argparse.Namespace, job_args: list[str]) -> int:
    from spark_flow.jobs import InSession, InSubprocess, policy
    from spark_flow.runners import daily, runner_for
    from spark_flow.runners.state import RunState
    from spark_flow.session import get_session

    declared = policy(args.job)
    state = RunState.from_profile()
    past = declared.depends_on_past if args.depends_on_past is None else args.depends_on_past
    if args.command == "run":
        return _run_once(args, state, past)
    dates = daily(args.start, args.end)
    runner = runner_for(
        args.job, state=state, policy=declared, depends_on_past=past,
        max_active_runs=args.max_active_runs, fail_fast=args.fail_fast, rerun=args.rerun,
        wait=args.wait, on_progress=_show_progress,
    )  # fmt: skip
    if args.isolation == "process":
        task: InSession | InSubprocess = InSubprocess(args.job, job_args)
        task.check(dates)
        report = runner.backfill(dates, task, cancel=task.cancel)
    else:
        # FAIR: concurrent runs share the executors instead of queueing behind the first one.
        spark = get_session(f"spark-flow backfill {args.job}", conf=_FAIR)
        try:
            task = InSession(args.job, job_args, spark)
            task.check(dates)
            report = runner.backfill(dates, task, cancel=task.cancel)
        finally:
            spark.stop()
    sys.stdout.write(report.table() + "\n")
    sys.stdout.write(json.dumps(report.as_dict(), default=str) + "\n")
    return 0 if report.ok else 1


def _run_once(args: argparse.Namespace, state: Any, depends_on_past: bool) -> int:
    """One run as a Single Runner: one lock per job (or key), whatever the job's policy."""
    from spark_flow.jobs import InSession, load, report_and_trigger
    from spark_flow.runners import RunContext, SingleRunner
    from spark_flow.session import get_session

    own, downstream = _split(args.job_args)
    day = args.date or datetime.now(timezone.utc).date()
    # Parsed up front: bad job arguments exit 2 before any lock is taken or JVM started.
    trigger = getattr(load(args.job).parser().parse_args(expand(own, day)), "trigger", None)
    runner = SingleRunner(
        args.job, state=state, key=args.key, depends_on_past=depends_on_past,
        wait=args.wait, rerun=True,
    )  # fmt: skip
    sessions: list[Any] = []

    def task(run: RunContext) -> Any:  # the session starts once the lock is ours
        sessions.append(get_session(args.job))
        return InSession(args.job, own, sessions[0])(run)

    started = time.perf_counter()
    report: dict[str, Any] = {"job": args.job, "logical_date": day.isoformat()}
    try:
        try:
            report |= {"status": "success", **runner.run(day, task, first=args.first).report}
        except Exception as exc:  # noqa: BLE001 - the run is recorded failed; so is the report
            report |= {"status": "failed", "error": one_line(exc), **failure_details(exc)}
        report["seconds"] = round(time.perf_counter() - started, 3)
        return report_and_trigger(report, trigger, downstream)
    finally:
        for spark in sessions:
            spark.stop()


_FAIR = {"spark.scheduler.mode": "FAIR"}


def _split(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--" not in argv:
        return argv, []
    return argv[: argv.index("--")], argv[argv.index("--") + 1 :]


def _show_progress(progress: Any) -> None:
    sys.stderr.write(
        f"{progress.job}: {progress.done} done, {progress.running} running, "
        f"{progress.queued} queued\n"
    )


def _history_table(records: Sequence[Any]) -> str:
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
