"""Row accounting in devices_loader: the loader with accounting / without, one run.

    .venv/bin/python bench/bench_accounting.py [--rows 1000000] [--invalid 0.2] [--repeat 3]

The input is --rows generated devices, --invalid of them invalid. "With" is the bundled loader:
malformed lines kept, rows classified, the valid ones written to the output and the rejected
ones to the quarantine table by one Spark job that counts them (`delta.write_routed`).
"Without" is the loader as it was before: the same read, a SQL step dropping invalid rows, the
same enrichment, Delta write and readiness marker. Each round runs both on a fresh batch
(alternating which goes first); the figure is the median of with / without (target <= 1.05).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from spark_flow import delta, get_session
from spark_flow.generate import DEVICE_SCHEMA, generate_devices
from spark_flow.jobs import load
from spark_flow.markers import mark_ready
from spark_flow.sequence import LocalSequencer, sql_step, step

loader = load("devices_loader")
WITHOUT = LocalSequencer(
    "without",
    [
        sql_step(
            "drop_invalid", "SELECT * FROM {input} WHERE length(type) > 3 AND full_name IS NOT NULL"
        ),
        step("enrich", loader.enrich),
    ],
)


def without_accounting(spark: SparkSession, source: str, output: str, batch: int) -> None:
    def write_and_mark(devices: DataFrame) -> None:
        result = delta.write(devices, output, app_id=f"without.{batch}", txn_version=batch)
        mark_ready(output, run_id=str(batch), row_count=result.rows_written,
                   table_version=result.table_version, batch_id=batch)  # fmt: skip

    raw = spark.read.schema(DEVICE_SCHEMA).json(source)
    WITHOUT.run(raw, run_id=str(batch), checkpoint_dir=f"{output}-ck", sink=write_and_mark)


def with_accounting(spark: SparkSession, source: str, output: str, batch: int) -> dict[str, Any]:
    argv = ["--input", source, "--output", output, "--batch-id", str(batch),
            "--checkpoint-dir", f"{output}-ck"]  # fmt: skip
    report: dict[str, Any] = loader.run(spark, loader.parser().parse_args(argv)).as_dict()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--invalid", type=float, default=0.2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=Path("bench/results/accounting.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-accounting-"))
    source = str(
        generate_devices(work / "input", rows=args.rows, invalid_ratio=args.invalid).parent
    )
    small = str(generate_devices(work / "small", rows=10_000, invalid_ratio=args.invalid).parent)
    spark = get_session("bench-accounting", conf={"spark.master": "local[2]"})
    seconds: dict[str, list[float]] = {"with": [], "without": []}
    report: dict[str, Any] = {}
    try:
        without_accounting(spark, small, str(work / "warm-without"), 0)  # JVM and workers warm
        with_accounting(spark, small, str(work / "warm-with"), 0)
        for batch in range(1, args.repeat + 1):
            order = ("with", "without") if batch % 2 else ("without", "with")
            for kind in order:
                started = time.perf_counter()
                if kind == "with":
                    report = with_accounting(spark, source, str(work / "with"), batch)
                else:
                    without_accounting(spark, source, str(work / "without"), batch)
                seconds[kind].append(time.perf_counter() - started)
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)

    ratios = [w / wo for w, wo in zip(seconds["with"], seconds["without"], strict=True)]
    figures = {
        "rows": args.rows,
        "invalid_ratio": args.invalid,
        "with_s": statistics.median(seconds["with"]),
        "without_s": statistics.median(seconds["without"]),
        "ratios": ratios,
        "with_over_without": statistics.median(ratios),
        "accounting": report["accounting"],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"rows                 {args.rows:,}, {args.invalid:.0%} invalid, local[2]")
    print(f"seconds (median)     with {figures['with_s']:.2f}, without {figures['without_s']:.2f}")
    print(f"with / without       {figures['with_over_without']:.3f}   (target <= 1.05)")
    print(f"ratios per round     {', '.join(f'{r:.3f}' for r in ratios)}")
    print(f"accounting           {json.dumps(report['accounting'])}")


if __name__ == "__main__":
    main()
