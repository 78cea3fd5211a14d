"""Concurrent Runner vs Single Runner: a backfill of a small job with 4 active runs vs 1.

    .venv/bin/python bench/bench_runners.py [--dates 8] [--rows 2000] [--repeat 3]

The bundled devices_loader (read JSON, two steps, idempotent Delta append, readiness marker)
backfills --dates days of --rows devices each, in one Spark application (local[2], FAIR), with
max_active_runs=1 and then 4, each trial on fresh tables and a fresh run-state store.
A small job leaves the two cores idle much of the time (planning, the driver's commit, Python):
concurrent runs fill those gaps. Figure: sequential / concurrent time (target >= 1.5).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from spark_flow import get_session
from spark_flow.generate import generate_devices
from spark_flow.isolation import ThreadIsolation
from spark_flow.runners import ConcurrentRunner, daily
from spark_flow.runners.state import RunState


def backfill(spark: object, root: Path, trial: str, days: list[date], active: int) -> float:
    work = root / trial
    argv = ["--input", str(root / "input" / "{ds}"), "--output", str(work / "devices")]
    argv += ["--batch-id", "{ds_nodash}", "--checkpoint-dir", str(work / "checkpoints")]
    runner = ConcurrentRunner(
        "devices_loader", state=RunState(work / "state"), max_active_runs=active
    )
    started = time.perf_counter()
    report = runner.backfill(days, ThreadIsolation("devices_loader", argv, spark))  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    if not report.ok:
        raise SystemExit(f"backfill failed:\n{report.table()}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dates", type=int, default=8)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--active", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--warm-up", type=int, default=3, help="backfills run before timing")
    parser.add_argument("--output", type=Path, default=Path("bench/results/runners.json"))
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-runners-"))
    days = daily(date(2024, 1, 1), date(2024, 1, 1) + timedelta(days=args.dates - 1))
    for n, day in enumerate(days):
        generate_devices(root / "input" / day.isoformat(), rows=args.rows, seed=n)
    spark = get_session(
        "bench-runners", conf={"spark.master": "local[2]", "spark.scheduler.mode": "FAIR"}
    )
    timings: dict[int, list[float]] = {1: [], args.active: []}
    try:
        for warm_up in range(args.warm_up):  # the JIT compiles Spark's hot paths for a while
            backfill(spark, root, f"warm-up-{warm_up}", days, args.active)
        for trial in range(args.repeat):  # interleaved, alternating which side goes first
            order = [1, args.active] if trial % 2 == 0 else [args.active, 1]
            for active in order:
                timings[active].append(backfill(spark, root, f"{trial}-{active}", days, active))
    finally:
        spark.stop()

    sequential, concurrent = (statistics.median(timings[n]) for n in (1, args.active))
    figures = {
        "dates": args.dates,
        "rows_per_date": args.rows,
        "max_active_runs": args.active,
        "sequential_s": sequential,
        "concurrent_s": concurrent,
        "speedup": sequential / concurrent,
        "timings": {str(n): t for n, t in timings.items()},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"backfill               {args.dates} dates x {args.rows:,} devices, local[2], FAIR")
    print(f"seconds (median of {args.repeat})  max_active_runs=1 {sequential:.2f}, "
          f"max_active_runs={args.active} {concurrent:.2f}")  # fmt: skip
    print(f"speedup                {sequential / concurrent:.2f}x   (target >= 1.5)")


if __name__ == "__main__":
    main()
