"""Delta on an object store (the delta-rs backend, no JARs) against pyarrow alone, in one run.

    .venv/bin/python bench/bench_object_store.py [--rows 1000000] [--repeat 3]

A local S3 server (moto, 127.0.0.1) holds both sides. Figures (median of --repeat runs,
interleaved so drift hits both sides alike):
  write ratio   spark_flow.delta.write / pq.write_table of the same rows to the same server
                                                                                target <= 1.3
  read ratio    delta.read + aggregate / pyarrow dataset scan + aggregate of the same files
                                                                                target <= 1.3
  Delta's own   delta.write / the same Spark job writing plain Parquet with pyarrow in its
  cost          Python workers (mapInArrow, no log, no commit): what Delta adds on the store
  Spark's share the Spark job handing the rows to Python workers and writing nothing / floor
  Spark's floor the same aggregate over the rows cached in Spark (no I/O) / pyarrow's read: what
                any read through Spark costs at least
The read needs a reader that reaches the store without a Hadoop S3 filesystem; where the
session has none, the read figures are recorded as missing with the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

# The generated rows, timing and aggregate of the Delta write bench, so the figures compare.
from bench_delta import aggregate, source, timed
from deltalake import DeltaTable
from pyspark.sql import DataFrame

from spark_flow import delta, get_session, storage
from spark_flow.local_s3 import LocalS3


def arrow_aggregate(table: str) -> object:
    """The same aggregate over the table's files, scanned by pyarrow.dataset alone."""
    store, _ = storage.filesystem(table)
    files = [
        uri.removeprefix("s3://")
        for uri in DeltaTable(table, storage_options=storage.options(table)).file_uris()
    ]
    data = ds.dataset(files, format="parquet", filesystem=store).to_table()
    ids = data["id"]
    # id % 100 (pyarrow has no modulo kernel): integer division truncates
    data = data.append_column("bucket", pc.subtract(ids, pc.multiply(pc.divide(ids, 100), 100)))
    return data.group_by("bucket").aggregate([("value", "sum"), ("ts", "max")])


def plain_parquet_job(df: DataFrame, folder: str, options: dict[str, Any]) -> None:
    """The Spark job delta.write runs, minus Delta: each task writes its rows with pyarrow."""

    def write(batches: Any) -> Any:
        import uuid

        import pyarrow as pa
        from pyarrow.fs import S3FileSystem

        batches = list(batches)
        if batches:
            name = f"{folder}/part-{uuid.uuid4().hex}.parquet"
            pq.write_table(pa.Table.from_batches(batches), name, filesystem=S3FileSystem(**options))
        yield pa.RecordBatch.from_pylist([{"rows": sum(b.num_rows for b in batches)}])

    df.mapInArrow(write, "rows long").collect()


def handoff_job(df: DataFrame) -> None:
    """Only the handoff: Spark's rows to Arrow batches in Python workers, nothing written."""

    def count(batches: Any) -> Any:
        import pyarrow as pa

        yield pa.RecordBatch.from_pylist([{"rows": sum(b.num_rows for b in batches)}])

    df.mapInArrow(count, "rows long").collect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=Path("bench/results/object_store.json"))
    args = parser.parse_args()

    with LocalS3() as server:
        os.environ.update(server.environment())  # before the JVM starts: its workers inherit it
        bucket = server.create_bucket("bench")
        spark = get_session(
            "bench-object-store",
            conf={"spark.master": "local[2]", "spark.sql.shuffle.partitions": "2"},
        )
        df = source(spark, args.rows).repartition(2).cache()
        df.count()  # generate once: both sides write the same materialised rows
        rows = df.toArrow()
        store, _ = storage.filesystem(bucket)
        floor_writes, delta_writes, floor_reads, delta_reads = [], [], [], []
        job_writes, handoffs, cached_reads = [], [], []
        pyarrow_options = storage.options(bucket, client="pyarrow")
        read_problem = None
        try:
            delta.write(df, f"{bucket}/warm-up")  # Python workers and the store client warm
            for i in range(args.repeat):
                table = f"{bucket}/delta-{i}"
                floor = f"bench/parquet-{i}/part-0.parquet"
                steps = [
                    (floor_writes, lambda f=floor: pq.write_table(rows, f, filesystem=store)),
                    (
                        delta_writes,
                        lambda t=table, v=i: delta.write(df, t, app_id="b", txn_version=v),
                    ),
                    (
                        job_writes,
                        lambda v=i: plain_parquet_job(df, f"bench/job-{v}", pyarrow_options),
                    ),
                    (handoffs, lambda: handoff_job(df)),
                ]
                for figures, step in steps if i % 2 == 0 else steps[::-1]:
                    figures.append(timed(step))
                reads = [
                    (floor_reads, lambda t=table: arrow_aggregate(t)),
                    (cached_reads, lambda: aggregate(df)),
                    (delta_reads, lambda t=table: aggregate(delta.read(spark, t))),
                ]
                for figures, step in reads if i % 2 == 0 else reads[::-1]:
                    if read_problem is not None and figures is delta_reads:
                        continue
                    try:
                        figures.append(timed(step))
                    except Exception as exc:  # noqa: BLE001 - recorded as the figure's reason
                        lines = str(exc).splitlines()
                        # A JVM error's telling line is its exception's, not py4j's first.
                        cause = next((x for x in lines if "Exception:" in x), lines[0])
                        read_problem = cause.strip()[:200]
        finally:
            spark.stop()

    figures: dict[str, Any] = {
        "rows": args.rows,
        "floor_write_s": statistics.median(floor_writes),
        "delta_write_s": statistics.median(delta_writes),
        "write_ratio": statistics.median(delta_writes) / statistics.median(floor_writes),
        "plain_parquet_job_s": statistics.median(job_writes),
        "delta_over_plain_job": statistics.median(delta_writes) / statistics.median(job_writes),
        "handoff_s": statistics.median(handoffs),
        "handoff_over_floor": statistics.median(handoffs) / statistics.median(floor_writes),
        "floor_read_aggregate_s": statistics.median(floor_reads),
        "delta_read_aggregate_s": statistics.median(delta_reads) if delta_reads else None,
        "read_ratio": statistics.median(delta_reads) / statistics.median(floor_reads)
        if delta_reads
        else None,
        "read_problem": read_problem,
        "cached_aggregate_s": statistics.median(cached_reads),
        "cached_aggregate_over_floor": statistics.median(cached_reads)
        / statistics.median(floor_reads),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"rows                        {args.rows:,} (long, string, double, timestamp), local[2]")
    print(
        f"write seconds (median)      pyarrow {figures['floor_write_s']:.2f}, "
        f"delta.write {figures['delta_write_s']:.2f}"
    )
    print(f"write  delta / pyarrow      {figures['write_ratio']:.3f}   (target <= 1.3)")
    print(
        f"write  delta / same job without Delta {figures['delta_over_plain_job']:.3f} "
        f"({figures['plain_parquet_job_s']:.2f} s); Spark-to-Arrow handoff alone "
        f"{figures['handoff_s']:.2f} s = {figures['handoff_over_floor']:.2f} of the floor"
    )
    if figures["read_ratio"] is None:
        print(f"read   not measured: {read_problem}")
    else:
        print(
            f"read   delta / pyarrow      {figures['read_ratio']:.3f}   (target <= 1.3; "
            f"{figures['delta_read_aggregate_s']:.2f} s / "
            f"{figures['floor_read_aggregate_s']:.2f} s)"
        )
    print(
        "read   Spark's floor: the aggregate over the cached rows "
        f"{figures['cached_aggregate_s']:.2f} s = "
        f"{figures['cached_aggregate_over_floor']:.2f} of pyarrow's read"
    )


if __name__ == "__main__":
    main()
