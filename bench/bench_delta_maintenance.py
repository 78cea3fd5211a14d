"""What full statistics cost a write, and what small files cost a read until `optimize`.

    .venv/bin/python bench/bench_delta_maintenance.py [--rows 5000000] [--repeat 3]
        [--appends 200] [--optimized-appends 120] [--cores 4]

Figures (medians of --repeat runs, interleaved so drift hits both sides alike):
  stats ratio      delta.write with min/max/nullCount / the same write with numRecords only
                   (the table's delta.dataSkippingNumIndexedCols = 0)              target <= 1.05
  small files      --appends writes of 10 rows on local[--cores]: files before / after optimize
  read after       read + aggregate after optimize / before it                     target < 1
  optimized write  files per write with optimize_write=True (--optimized-appends writes), and the
                   seconds per write with it / without it
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from deltalake import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_flow import delta, get_session


def source(spark: SparkSession, rows: int) -> DataFrame:
    """rows x (long, string, double, timestamp, date), generated: no input I/O in the figures."""
    return spark.range(rows).select(
        F.col("id"),
        F.concat(F.lit("device-"), (F.col("id") % 10_000).cast("string")).alias("name"),
        (F.col("id") * 0.37).alias("value"),
        F.timestamp_seconds(F.lit(1_700_000_000) + F.col("id") % 86_400).alias("ts"),
        F.date_add(F.lit("2024-01-01").cast("date"), (F.col("id") % 365).cast("int")).alias("day"),
    )


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def aggregate(df: DataFrame) -> list[object]:
    return df.groupBy((F.col("id") % 100).alias("bucket")).agg(F.sum("id")).collect()


def files_of(path: str) -> int:
    return len(DeltaTable(path).file_uris())


def stats_cost(spark: SparkSession, work: Path, rows: int, repeat: int) -> dict[str, float]:
    df = source(spark, rows)
    with_stats, without_stats = [], []
    delta.write(df, str(work / "warm-up"))
    for i in range(repeat):
        full, bare = str(work / f"stats-{i}"), str(work / f"bare-{i}")
        for table in (full, bare):  # both tables first: the timed writes are appends alike
            delta.write(df.limit(0), table)
        DeltaTable(bare).alter.set_table_properties({"delta.dataSkippingNumIndexedCols": "0"})
        steps = [
            (with_stats, lambda p=full: delta.write(df, p)),
            (without_stats, lambda p=bare: delta.write(df, p)),
        ]
        for figures, step in steps if i % 2 == 0 else steps[::-1]:
            figures.append(timed(step))
    return {
        "rows": rows,
        "with_stats_s": statistics.median(with_stats),
        "without_stats_s": statistics.median(without_stats),
        "stats_ratio": statistics.median(with_stats) / statistics.median(without_stats),
    }


def small_files(
    spark: SparkSession, work: Path, appends: int, optimized_appends: int, repeat: int
) -> dict[str, float]:
    scattered, optimized = str(work / "scattered"), str(work / "optimized")
    plain_writes, optimized_writes = [], []
    for batch in range(max(appends, optimized_appends)):
        df = spark.range(batch * 10, batch * 10 + 10)  # defaultParallelism partitions: one a core
        if batch < appends:
            plain_writes.append(timed(lambda d=df: delta.write(d, scattered)))
        if batch < optimized_appends:
            write = lambda d=df: delta.write(d, optimized, optimize_write=True)  # noqa: E731
            optimized_writes.append(timed(write))
    files_before = files_of(scattered)
    reads_before = [timed(lambda: aggregate(delta.read(spark, scattered))) for _ in range(repeat)]
    optimize_s = timed(lambda: delta.optimize(spark, scattered))
    files_after = files_of(scattered)
    reads_after = [timed(lambda: aggregate(delta.read(spark, scattered))) for _ in range(repeat)]
    return {
        "appends": appends,
        "files_before": files_before,
        "files_after": files_after,
        "files_ratio": files_before / files_after,
        "optimize_s": optimize_s,
        "read_before_s": statistics.median(reads_before),
        "read_after_s": statistics.median(reads_after),
        "read_after_over_before": statistics.median(reads_after) / statistics.median(reads_before),
        "optimized_appends": optimized_appends,
        "optimized_files": files_of(optimized),
        "optimized_files_per_write": files_of(optimized) / optimized_appends,
        "plain_files_per_write": files_before / appends,
        "write_s": statistics.median(plain_writes),
        "optimized_write_s": statistics.median(optimized_writes),
        "optimized_write_ratio": statistics.median(optimized_writes)
        / statistics.median(plain_writes),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--appends", type=int, default=200)
    parser.add_argument("--optimized-appends", type=int, default=120)
    parser.add_argument("--cores", type=int, default=4)
    parser.add_argument("--output", type=Path, default=Path("bench/results/delta_maintenance.json"))
    args = parser.parse_args()

    spark = get_session(
        "bench-delta-maintenance",
        conf={"spark.master": f"local[{args.cores}]", "spark.sql.shuffle.partitions": "2"},
    )
    work = Path(tempfile.mkdtemp(prefix="bench-delta-maintenance-"))
    try:
        figures = {
            "cores": args.cores,
            **stats_cost(spark, work, args.rows, args.repeat),
            **small_files(spark, work, args.appends, args.optimized_appends, args.repeat),
        }
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")
    f = figures
    print(f"rows {f['rows']:,} (long, string, double, timestamp, date), local[{args.cores}]")
    print(
        f"write with stats / without   {f['stats_ratio']:.3f}  ({f['with_stats_s']:.2f} s / "
        f"{f['without_stats_s']:.2f} s, target <= 1.05)"
    )
    print(
        f"{f['appends']} appends of 10 rows     {f['files_before']:.0f} files -> "
        f"{f['files_after']:.0f} after optimize ({f['optimize_s']:.2f} s)"
    )
    print(
        f"read+aggregate after/before  {f['read_after_over_before']:.3f}  "
        f"({f['read_after_s']:.2f} s / {f['read_before_s']:.2f} s, target < 1)"
    )
    print(
        f"optimize_write               {f['optimized_files']:.0f} files for "
        f"{f['optimized_appends']} writes ({f['plain_files_per_write']:.1f} per write without); "
        f"{f['optimized_write_ratio']:.2f}x the seconds per write"
    )


if __name__ == "__main__":
    main()
