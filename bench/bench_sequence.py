"""Local Sequencer restart boundary: resuming a failed run vs running it in full, one run.

    .venv/bin/python bench/bench_sequence.py [--rows 4000000] [--rounds 8]

A costly first step (hashing rounds over --rows rows, then an aggregate) is a restart boundary;
the last step fails on the first attempt. The rerun with the same run id resumes after the
boundary. Figure: resume time / full-run time (target <= 0.3).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_flow import get_session
from spark_flow.errors import StepFailedError
from spark_flow.sequence import LocalSequencer, step


def costly(rounds: int) -> Callable[[DataFrame], DataFrame]:
    def hash_and_aggregate(df: DataFrame) -> DataFrame:
        digest = F.col("id").cast("string")
        for _ in range(rounds):
            digest = F.sha2(digest, 256)
        return (
            df.select((F.col("id") % 1000).alias("key"), digest.alias("digest"))
            .groupBy("key")
            .agg(F.count("*").alias("n"), F.max("digest").alias("top"))
        )

    return hash_and_aggregate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--output", type=Path, default=Path("bench/results/sequence.json"))
    args = parser.parse_args()
    spark = get_session("bench-sequence", conf={"spark.master": "local[2]"})
    checkpoints = tempfile.mkdtemp(prefix="bench-sequence-")
    attempts = {"fail": True}

    def load(df: DataFrame) -> int:
        rows = len(df.collect())
        if attempts["fail"]:
            raise RuntimeError("the load failed")  # e.g. the target database was down
        return rows

    sequence = LocalSequencer(
        "bench",
        [
            step("costly", costly(args.rounds), boundary=True),
            step("ranked", lambda df: df.withColumn("rank", F.col("n") * 2)),
        ],
    )
    source = spark.range(0, args.rows, numPartitions=4)
    try:
        attempts["fail"] = False  # warm the JVM and Python workers on a small input first
        small = spark.range(0, 10_000, numPartitions=4)
        sequence.run(small, run_id="warm-up", checkpoint_dir=checkpoints, sink=load)
        started = time.perf_counter()
        sequence.run(source, run_id="full", checkpoint_dir=checkpoints, sink=load)
        full = time.perf_counter() - started

        attempts["fail"] = True
        with suppress(StepFailedError):
            sequence.run(source, run_id="retried", checkpoint_dir=checkpoints, sink=load)
        attempts["fail"] = False
        started = time.perf_counter()
        result = sequence.run(source, run_id="retried", checkpoint_dir=checkpoints, sink=load)
        resume = time.perf_counter() - started
    finally:
        spark.stop()

    figures = {
        "rows": args.rows,
        "full_run_s": full,
        "resume_s": resume,
        "resume_ratio": resume / full,
        "resumed_from": result.resumed_from,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"rows                   {args.rows:,}, {args.rounds} sha2 rounds, local[2]")
    print(f"seconds                full run {full:.2f}, resume after the boundary {resume:.2f}")
    print(f"resume / full run      {resume / full:.3f}   (target <= 0.3)")


if __name__ == "__main__":
    main()
