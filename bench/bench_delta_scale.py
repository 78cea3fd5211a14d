"""Delta write time as the data grows: 1, 2, 4 and 8 million rows, to show the cost is linear.

    .venv/bin/python bench/bench_delta_scale.py [--millions 1,2,4,8] [--repeat 2]

The same generated rows as bench_delta.py, written with spark_flow.delta.write (delta-rs backend)
to a fresh table; median of --repeat writes per size after a warm-up write. Figures: seconds per
million rows at each size, and each size's per-million cost over the 1-million one (linear: ~1).
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
        delta.write(source(spark, 200_000), str(root / "warm-up"))
        for size in sizes:
            runs = []
            for attempt in range(args.repeat):
                started = time.perf_counter()
                delta.write(source(spark, size * 1_000_000), str(root / f"{size}-{attempt}"))
                runs.append(time.perf_counter() - started)
            seconds[size] = statistics.median(runs)
    finally:
        spark.stop()

    base = seconds[sizes[0]] / sizes[0]
    figures = {
        "seconds": {str(size): s for size, s in seconds.items()},
        "seconds_per_million": {str(size): s / size for size, s in seconds.items()},
        "per_million_over_smallest": {str(size): s / size / base for size, s in seconds.items()},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")
    for size, s in seconds.items():
        print(f"{size} M rows   {s:6.2f} s   {s / size:.2f} s per million   "
              f"x{s / size / base:.2f} of the {sizes[0]} M cost per million")  # fmt: skip


if __name__ == "__main__":
    main()
