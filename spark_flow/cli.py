"""`spark-flow`: the command line of the toolkit."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path


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
    run = commands.add_parser("run", help="run a bundled job: spark-flow run JOB [job args]")
    run.add_argument("job")
    run.add_argument("job_args", nargs=argparse.REMAINDER, help="arguments for the job")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "demo":
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
    elif args.command == "run":
        from spark_flow.errors import UnknownValueError
        from spark_flow.jobs import resolve, run_job

        try:
            resolve(args.job)
        except UnknownValueError as exc:
            parser.error(str(exc))
        return run_job(args.job, args.job_args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
