"""Fan-in: one scan over the partition list vs reduce(unionByName) of per-partition reads.

    .venv/bin/python bench/bench_fan_in.py [--rows-per-file 50] [--repeat 3]

Figures, each measured in the same run:
  240 files   24 hourly partitions x 10 small JSON files: naive / one-scan end-to-end time
  1,000       1,000 hourly partitions (42 days), one file each, one run per version:
              naive / one-scan (target >= 3)
  planning    union_by_name of N DataFrames (build + optimized plan) for N = 10, 100, 1,000,
              with reduce(DataFrame.unionByName) alongside: per-parent cost shows the growth
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_flow import get_session
from spark_flow.fan_in import list_partitions, read_partitions, union_by_name
from spark_flow.generate import VISIT_SCHEMA

PAGES = ("/", "/articles/spark", "/articles/delta", "/about")


def write_partitions(root: Path, partitions: list[dict[str, str]], files: int, rows: int) -> None:
    for number, partition in enumerate(partitions):
        folder = root.joinpath(*(f"{k}={v}" for k, v in partition.items()))
        folder.mkdir(parents=True)
        for part in range(files):
            lines = (
                json.dumps({"visit_id": f"{number}-{part}-{i}", "page": PAGES[i % len(PAGES)],
                            "duration_ms": i * 7})
                for i in range(rows)
            )  # fmt: skip
            (folder / f"part-{part:05d}.json").write_text("\n".join(lines) + "\n")


def hours(days: int, limit: int) -> list[dict[str, str]]:
    first = date(2024, 1, 1)
    every = [
        {"date": (first + timedelta(days=d)).isoformat(), "hour": f"{h:02d}"}
        for d in range(days)
        for h in range(24)
    ]
    return every[:limit]


def summary(df: DataFrame) -> list[object]:
    return df.groupBy("page").agg(F.count("*"), F.sum("duration_ms")).collect()


def one_scan(spark: SparkSession, root: Path, partitions: list[dict[str, str]]) -> list[object]:
    listing = list_partitions(root, partitions)
    return summary(read_partitions(spark, listing, format="json", schema=VISIT_SCHEMA))


def naive(spark: SparkSession, root: Path, partitions: list[dict[str, str]]) -> list[object]:
    reads = [
        spark.read.schema(VISIT_SCHEMA)
        .json(str(root.joinpath(*(f"{k}={v}" for k, v in p.items()))))
        .withColumn("date", F.to_date(F.lit(p["date"])))
        .withColumn("hour", F.lit(int(p["hour"])))
        for p in partitions
    ]
    return summary(functools.reduce(DataFrame.unionByName, reads))


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def compare(
    spark: SparkSession, root: Path, partitions: list[dict[str, str]], repeat: int
) -> dict[str, float]:
    """Median seconds of both versions, interleaved; their results must agree."""
    times: dict[str, list[float]] = {"one_scan": [], "naive": []}
    results = {}
    for attempt in range(repeat):
        order = ["one_scan", "naive"] if attempt % 2 == 0 else ["naive", "one_scan"]
        for name in order:
            runner = one_scan if name == "one_scan" else naive
            started = time.perf_counter()
            results[name] = sorted(runner(spark, root, partitions))  # type: ignore[type-var]
            times[name].append(time.perf_counter() - started)
    if results["one_scan"] != results["naive"]:
        raise SystemExit("the two versions disagree: the benchmark is wrong")
    scan, reduced = statistics.median(times["one_scan"]), statistics.median(times["naive"])
    return {"one_scan_s": scan, "naive_s": reduced, "naive_over_one_scan": reduced / scan}


def planning(spark: SparkSession, n: int, combine: Callable[[list[DataFrame]], DataFrame]) -> float:
    parents = [spark.range(i, i + 1, numPartitions=1) for i in range(n)]
    return timed(lambda: combine(parents)._jdf.queryExecution().optimizedPlan())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows-per-file", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=Path("bench/results/fan_in.json"))
    args = parser.parse_args()
    spark = get_session("bench-fan-in", conf={"spark.master": "local[2]"})
    work = Path(tempfile.mkdtemp(prefix="bench-fan-in-"))
    cases = {"240_files": (hours(1, 24), 10), "1000_partitions": (hours(42, 1000), 1)}
    figures: dict[str, object] = {"rows_per_file": args.rows_per_file}
    try:
        for case, (partitions, files) in cases.items():
            root = work / case
            write_partitions(root, partitions, files, args.rows_per_file)
            one_scan(spark, root, partitions[:4])  # warm-up: JVM, JSON reader, listing
            naive(spark, root, partitions[:4])
            # 1,000 naive reads take minutes: that case runs once per version.
            result = compare(spark, root, partitions, args.repeat if files > 1 else 1)
            figures[case] = result
            print(
                f"{case:<16} one scan {result['one_scan_s']:6.2f} s, reduce(unionByName) "
                f"{result['naive_s']:6.2f} s, ratio {result['naive_over_one_scan']:5.1f}x"
            )
        plans: dict[str, dict[str, float]] = {}
        for n in (10, 100, 1000):
            ours = planning(spark, n, union_by_name)
            chained = planning(spark, n, lambda dfs: functools.reduce(DataFrame.unionByName, dfs))
            plans[str(n)] = {"union_by_name_s": ours, "reduce_union_by_name_s": chained}
            print(
                f"planning N={n:<5} union_by_name {ours:5.2f} s ({1000 * ours / n:5.2f} ms each), "
                f"reduce(unionByName) {chained:5.2f} s ({1000 * chained / n:5.2f} ms each)"
            )
        figures["planning"] = plans
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
