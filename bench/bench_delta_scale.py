"""Delta write time as the data grows: 1, 2, 4 and 8 million rows, to show the cost is linear.

    .venv/bin/python bench/bench_delta_scale.py [--millions 1,2,4,8] [--repeat 2]

The same generated rows as bench_delta.py, written with spark_flow.delta.write (delta-rs backend)
to a fresh table; median of --repeat writes per size after a warm-up write of the smallest size.
A write costs a fixed part (planning, the commit) plus a part per row, so the figure is a
least-squares line through the four times: seconds per million rows, the fixed seconds, and R^2
(linear growth: close to 1).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from bench_delta import source  # the same rows as the backend bench (bench/ is on the path)

from spark_flow import delta, get_session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--millions", default="1,2,4,8", help="sizes, in millions of rows")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--output", type=Path, default=Path("bench/results/delta_scale.json"))
    args = parser.parse_args()
    sizes = [int(part) for part in args.millions.split(",")]
    spark = get_session(
        "bench-delta-scale", conf={"spark.master": "local[2]", "spark.sql.shuffle.partitions": "2"}
    )
    root = Path(tempfile.mkdtemp(prefix="bench-delta-scale-"))
    seconds: dict[int, float] = {}
    try:
        delta.write(source(spark, sizes[0] * 1_000_000), str(root / "warm-up"))
        for size in sizes:
            runs = []
            for attempt in range(args.repeat):
                started = time.perf_counter()
                delta.write(source(spark, size * 1_000_000), str(root / f"{size}-{attempt}"))
                runs.append(time.perf_counter() - started)
            seconds[size] = statistics.median(runs)
    finally:
        spark.stop()

    fit = statistics.linear_regression(sizes, [seconds[size] for size in sizes])
    predicted = {size: fit.intercept + fit.slope * size for size in sizes}
    mean = statistics.mean(seconds.values())
    residual = sum((seconds[size] - predicted[size]) ** 2 for size in sizes)
    r_squared = 1 - residual / sum((s - mean) ** 2 for s in seconds.values())
    figures = {
        "seconds": {str(size): s for size, s in seconds.items()},
        "seconds_per_million": fit.slope,
        "fixed_seconds": fit.intercept,
        "linear_fit_r2": r_squared,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")
    for size, s in seconds.items():
        print(f"{size} M rows   {s:6.2f} s   (linear fit {predicted[size]:6.2f} s)")
    print(f"fit: {fit.intercept:.2f} s + {fit.slope:.3f} s per million rows, R^2 {r_squared:.3f}")


if __name__ == "__main__":
    main()
