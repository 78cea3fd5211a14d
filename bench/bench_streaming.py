"""Streaming Parallel Split vs a single-sink foreachBatch: micro-batch throughput, same run.

    .venv/bin/python bench/bench_streaming.py [--files 8] [--rows 100000] [--per-trigger 2]

A file-source stream of devices JSON (--files files of --rows rows, --per-trigger files per
micro-batch, availableNow) is written by `foreachBatch` either to one Delta table
(`for_each_batch(DeltaOutput())`, the baseline) or through the devices split: the micro-batch
persisted once, raw and enriched Delta branches concurrently. Fresh tables and checkpoint per
trial; one warm-up each, then interleaved trials. Figure: split time / single-sink time
(target <= 1.3: the split reads each micro-batch once), and naive / split, where the naive sink
writes both outputs from the unpersisted micro-batch (reading it twice). `--decode-rounds N`
puts a Python UDF on the read path, so that reading, not writing, is what a micro-batch costs.
Also timed: writing the second (enriched) output of one micro-batch already in memory, times
the micro-batches, as a share of the single sink: what the split's second output would add if
it ran after the first instead of beside it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from argparse import Namespace
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_flow import delta, get_session
from spark_flow.fan_out import Branch, ParallelSplit
from spark_flow.generate import DEVICE_SCHEMA, generate_devices
from spark_flow.outputs import DeltaOutput, MicroBatchWriter, for_each_batch


def enrich(df: DataFrame) -> DataFrame:
    return df.withColumn("full_name", F.concat_ws(" ", "full_name", "version"))


def decoder(rounds: int):  # type: ignore[no-untyped-def]
    """Stands for a payload decoded in Python (decryption, a proprietary format)."""

    def decode(name):  # untyped: hints would make it a pandas UDF
        import hashlib

        if name is None:
            return None
        digest = name.encode()
        for _ in range(rounds):
            digest = hashlib.sha256(digest).digest()
        return name + " " + digest.hex()[:8]

    return decode


def decoded(devices: DataFrame, rounds: int) -> DataFrame:
    """`devices` with `full_name` decoded in Python `rounds` times (0: as it is)."""
    if not rounds:
        return devices
    return devices.withColumn("full_name", F.udf(decoder(rounds), "string")("full_name"))


def sink_for(kind: str, out: Path) -> MicroBatchWriter:
    if kind == "single":
        return for_each_batch(DeltaOutput(), str(out / "raw"), app_id="bench")
    if kind == "naive":  # both outputs from the micro-batch as it comes: it is read twice

        def write_both(batch: DataFrame, batch_id: int) -> None:
            delta.write(batch, str(out / "raw"), app_id="bench.raw", txn_version=batch_id)
            delta.write(
                enrich(batch), str(out / "enriched"), app_id="bench.en", txn_version=batch_id
            )

        return MicroBatchWriter("naive", write_both)
    branches = [Branch("raw", str(out / "raw")), Branch("enriched", str(out / "enriched"), enrich)]
    return ParallelSplit("bench", branches).for_each_batch(app_id="bench")


def trial(spark: SparkSession, source: Path, out: Path, kind: str, args: Namespace) -> float:
    sink = sink_for(kind, out)
    stream = (
        spark.readStream.schema(DEVICE_SCHEMA)
        .option("maxFilesPerTrigger", args.per_trigger)
        .json(str(source))
    )
    stream = decoded(stream, args.decode_rounds)
    started = time.perf_counter()
    (
        stream.writeStream.foreachBatch(sink)
        .option("checkpointLocation", str(out / "checkpoint"))
        .trigger(availableNow=True)
        .start()
        .awaitTermination()
    )
    return time.perf_counter() - started


def second_write(spark: SparkSession, source: Path, out: Path, args: Namespace) -> float:
    """Seconds to write the enriched output of one micro-batch already in memory (median)."""
    files = sorted(str(f) for f in source.glob("*.json"))[: args.per_trigger]
    cached = decoded(spark.read.schema(DEVICE_SCHEMA).json(files), args.decode_rounds).cache()
    cached.count()
    timings = []
    for n in range(args.repeat + 1):  # the first one warms up
        started = time.perf_counter()
        delta.write(enrich(cached), str(out / f"second-{n}"), app_id="bench.en", txn_version=0)
        timings.append(time.perf_counter() - started)
    cached.unpersist()
    return statistics.median(timings[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--per-trigger", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--decode-rounds", type=int, default=0,
        help="N > 0: each record goes through a Python UDF (N sha256 rounds) as it is read",
    )  # fmt: skip
    parser.add_argument("--output", type=Path, default=None, help="default: results/streaming-X")
    args = parser.parse_args()
    output = args.output or Path(f"bench/results/streaming-decode-{args.decode_rounds}.json")
    root = Path(tempfile.mkdtemp(prefix="bench-streaming-"))
    source = root / "incoming"
    source.mkdir()
    for n in range(args.files):
        made = generate_devices(root / f"made-{n}", rows=args.rows, seed=n)
        shutil.move(made, source / f"devices-{n:03d}.json")
    spark = get_session("bench-streaming", conf={"spark.master": "local[2]"})
    timings: dict[str, list[float]] = {"single": [], "split": [], "naive": []}
    try:
        for kind in timings:  # warm-up: JIT, Python workers, the first Delta commits
            trial(spark, source, root / f"warm-{kind}", kind, args)
        for n in range(args.repeat):
            order = ["single", "split", "naive"][:: 1 if n % 2 == 0 else -1]
            for kind in order:
                out = root / f"{kind}-{n}"
                timings[kind].append(trial(spark, source, out, kind, args))
        second = second_write(spark, source, root / "second", args)  # warm by now
    finally:
        spark.stop()
        shutil.rmtree(root, ignore_errors=True)

    rows = args.files * args.rows
    micro_batches = -(-args.files // args.per_trigger)
    single, split, naive = (statistics.median(timings[k]) for k in ("single", "split", "naive"))
    figures = {
        "files": args.files,
        "decode_rounds": args.decode_rounds,
        "rows": rows,
        "micro_batches": micro_batches,
        "single_s": single,
        "split_s": split,
        "single_rows_per_s": rows / single,
        "split_rows_per_s": rows / split,
        "naive_s": naive,
        "second_write_s": second * micro_batches,
        "second_write_over_single": second * micro_batches / single,
        "split_over_single": split / single,
        "naive_over_split": naive / split,
        "timings": timings,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"stream                 {rows:,} rows in {figures['micro_batches']} micro-batches, "
          f"Python decode rounds: {args.decode_rounds}")  # fmt: skip
    print(f"single sink            {single:.2f} s, {rows / single:,.0f} rows/s")
    print(f"split, 2 branches      {split:.2f} s, {rows / split:,.0f} rows/s")
    print(f"naive, 2 writes        {naive:.2f} s, {rows / naive:,.0f} rows/s (reads twice)")
    print(f"second output's write  {second * micro_batches:.2f} s from memory, "
          f"{second * micro_batches / single:.2f} of the single sink")  # fmt: skip
    print(f"split / single         {split / single:.2f}   (target <= 1.3)")
    print(f"naive / split          {naive / split:.2f}")


if __name__ == "__main__":
    main()
