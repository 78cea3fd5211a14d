"""Delta backend cost against native Spark Parquet, measured side by side in one run.

    .venv/bin/python bench/bench_delta.py [--rows 5000000] [--repeat 3]

Figures (median of --repeat runs, interleaved so drift hits both sides alike):
  write ratio   spark_flow.delta.write / df.write.parquet of the same DataFrame   target <= 1.15
  read ratio    delta.read + aggregate / spark.read.parquet + the same aggregate  target <= 1.2
  replay        seconds and Spark jobs for a replayed (app_id, version)           target < 0.5 s, 0
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

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_flow import delta, get_session
from spark_flow.testing import count_spark_jobs


def source(spark: SparkSession, rows: int) -> DataFrame:
    """rows x (long, string, double, timestamp), generated so no input I/O blurs the figures."""
    return spark.range(rows).select(
        F.col("id"),
        F.concat(F.lit("device-"), (F.col("id") % 10_000).cast("string")).alias("name"),
        (F.col("id") * 0.37).alias("value"),
        F.timestamp_seconds(F.lit(1_700_000_000) + F.col("id") % 86_400).alias("ts"),
    )


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def aggregate(df: DataFrame) -> list[object]:
    return (
        df.groupBy((F.col("id") % 100).alias("bucket")).agg(F.sum("value"), F.max("ts")).collect()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=Path("bench/results/delta.json"))
    args = parser.parse_args()

    spark = get_session(
        "bench-delta", conf={"spark.master": "local[2]", "spark.sql.shuffle.partitions": "2"}
    )
    work = Path(tempfile.mkdtemp(prefix="bench-delta-"))
    df = source(spark, args.rows)
    parquet_writes, delta_writes, parquet_reads, delta_reads = [], [], [], []
    try:
        df.write.parquet(str(work / "warm-up"))  # JIT and Python workers warm for both sides
        for i in range(args.repeat):
            parquet_path, table = str(work / f"parquet-{i}"), str(work / f"delta-{i}")
            steps = [
                (parquet_writes, lambda p=parquet_path: df.write.parquet(p)),
                (delta_writes, lambda t=table, v=i: delta.write(df, t, app_id="b", txn_version=v)),
            ]
            for figures, step in steps if i % 2 == 0 else steps[::-1]:  # alternate who goes first
                figures.append(timed(step))
            parquet_reads.append(timed(lambda p=parquet_path: aggregate(spark.read.parquet(p))))
            delta_reads.append(timed(lambda t=table: aggregate(delta.read(spark, t))))
        with count_spark_jobs(spark) as jobs:
            replay = timed(
                lambda: delta.write(df, str(work / "delta-0"), app_id="b", txn_version=0)
            )
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)

    figures = {
        "rows": args.rows,
        "parquet_write_s": statistics.median(parquet_writes),
        "delta_write_s": statistics.median(delta_writes),
        "write_ratio": statistics.median(delta_writes) / statistics.median(parquet_writes),
        "parquet_read_aggregate_s": statistics.median(parquet_reads),
        "delta_read_aggregate_s": statistics.median(delta_reads),
        "read_ratio": statistics.median(delta_reads) / statistics.median(parquet_reads),
        "replay_s": replay,
        "replay_spark_jobs": jobs.count,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"rows                        {args.rows:,} (long, string, double, timestamp), local[2]")
    print(
        f"seconds (median)            parquet write {figures['parquet_write_s']:.2f}, "
        f"delta write {figures['delta_write_s']:.2f}, parquet read+agg "
        f"{figures['parquet_read_aggregate_s']:.2f}, delta read+agg "
        f"{figures['delta_read_aggregate_s']:.2f}"
    )
    print(f"write  delta / parquet      {figures['write_ratio']:.3f}   (target <= 1.15)")
    print(f"read   delta / parquet      {figures['read_ratio']:.3f}   (target <= 1.2)")
    print(
        f"replay                      {replay:.3f} s, {jobs.count} Spark jobs (target < 0.5 s, 0)"
    )


if __name__ == "__main__":
    main()
