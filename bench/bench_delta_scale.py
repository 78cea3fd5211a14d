"""Delta write time as the data grows: 1, 2, 4 and 8 million rows, to show the cost is linear.

    .venv/bin/python bench/bench_delta_scale.py [--millions 1,2,4,8] [--repeat 2]

The same generated rows as bench_delta.py, written with spark_flow.delta.write (delta-rs backend)
to a fresh table; median of --repeat writes per size after a warm-up write of the smallest size.
A write costs a fixed part (planning, the commit) plus a part per row, so the figure is the
marginal cost: seconds per extra million rows from one size to the next, and the last step's
marginal cost over the first one's (linear growth: ~1).
"""

from __future__ import annotations

import argparse
import itertools
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

    steps = list(itertools.pairwise(sizes))
    marginal = {f"{a}-{b}": (seconds[b] - seconds[a]) / (b - a) for a, b in steps}
    first, last = (
        marginal[f"{steps[0][0]}-{steps[0][1]}"],
        marginal[f"{steps[-1][0]}-{steps[-1][1]}"],
    )
    figures = {
        "seconds": {str(size): s for size, s in seconds.items()},
        "marginal_s_per_million": marginal,
        "last_over_first_marginal": last / first,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")
    for size, s in seconds.items():
        print(f"{size} M rows   {s:6.2f} s")
    for step, cost in marginal.items():
        print(f"{step} M      {cost:.3f} s per extra million rows")
    print(f"last / first marginal cost  {last / first:.2f}   (linear: ~1)")


if __name__ == "__main__":
    main()
