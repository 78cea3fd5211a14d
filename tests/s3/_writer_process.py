"""A process of its own that writes one Delta batch to a table on the test S3 server.

Run by tests/s3/test_processes.py: two of them race for one txn, one is killed mid-write,
one writes through format("delta"). It prints the write's summary as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from pathlib import Path

from spark_flow import delta, enable_delta
from spark_flow.delta import rs
from spark_flow.session import get_session
from spark_flow.testing import TEST_CONF, rendezvous


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("table")
    parser.add_argument("--txn", type=int, required=True)
    parser.add_argument("--rows", type=int, default=10)
    parser.add_argument("--arrive", help="a rendezvous folder shared with the other racers")
    parser.add_argument("--parties", type=int, default=2)
    parser.add_argument("--uploaded", help="touch this file once the files are uploaded, then hang")
    parser.add_argument("--format-delta", action="store_true", help="write with format('delta')")
    parser.add_argument(
        "--store-later", action="store_true", help="set AWS_* after Spark started, then read back"
    )
    args = parser.parse_args()

    later = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("AWS_")}
    if not args.store_later:
        os.environ.update(later)
    spark = get_session("s3-writer", conf={**TEST_CONF, "spark.master": "local[1]"})
    if args.store_later:  # as a notebook or a test fixture does: the JVM never saw them
        os.environ.update(later)
        enable_delta(spark)
    df = spark.range(args.rows, numPartitions=1).selectExpr("id", "id % 2 AS half")
    if args.arrive:
        df = df.withColumn("id", rendezvous(args.arrive, args.parties)("id"))
    if args.uploaded:
        uploaded = Path(args.uploaded)

        def hang(plan: rs.WritePlan, files: list[object]) -> None:
            # Between the upload and the commit: the test kills this process here.
            uploaded.write_text(json.dumps(sorted(f.path for f in files)))  # type: ignore[attr-defined]
            threading.Event().wait()

        rs.commit_written = hang  # type: ignore[assignment]
    if args.format_delta:
        (
            df.write.format("delta")
            .mode("append")
            .option("txnAppId", "racer")
            .option("txnVersion", args.txn)
            .option("spark_flow.partitionBy", '["half"]')
            .save(args.table)
        )
        summary: dict[str, object] = {"committed": True}
        if args.store_later:
            summary["read"] = spark.read.format("delta").load(args.table).count()
    else:
        summary = delta.write(df, args.table, app_id="racer", txn_version=args.txn).summary()
    sys.stdout.write(json.dumps(summary) + "\n")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
