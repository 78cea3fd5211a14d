"""spark-submit's main for the cluster's object-store test: what a user's own job does there.

`spark-flow submit tests/e2e/_cluster_store.py ... -- BUCKET STORE_JSON` starts its session
first and only then takes the store's variables (STORE_JSON, e.g. a notebook cell setting
AWS_*): neither the driver's JVM nor the worker that starts the executors has them. It writes
and reads Delta tables in BUCKET through both APIs and a Parallel Split, marks the first table
ready, and prints one JSON line of what it saw.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import timezone
from zoneinfo import ZoneInfo

from pyspark.sql import SparkSession

from spark_flow import Branch, ParallelSplit, delta, mark_ready, storage
from spark_flow.session import get_session

# Not UTC, and not the machine's zone: a zoneless timestampAsOf must be read in this one.
ZONE = "America/New_York"


def main() -> int:
    bucket, variables = sys.argv[1], json.loads(sys.argv[2])
    spark = get_session("cluster-store", conf={"spark.sql.session.timeZone": ZONE})
    try:
        os.environ.update(variables)
        seen = run(spark, bucket)
    finally:
        spark.stop()
    sys.stdout.write(json.dumps(seen) + "\n")
    return 0


def run(spark: SparkSession, bucket: str) -> dict[str, object]:
    rows = spark.range(6).selectExpr("id", "CAST(id % 2 AS STRING) AS part")
    # spark_flow.delta: executors' Python workers write the files in place, the driver commits.
    devices = f"{bucket}/devices"
    first = delta.write(rows, devices, app_id="c", txn_version=1, partition_by=["part"])
    replay = delta.write(rows, devices, app_id="c", txn_version=1, partition_by=["part"])
    mark_ready(devices, run_id="cluster", table_version=first.table_version)

    # format("delta"): the data source's planner and its executors' readers and writers.
    events = f"{bucket}/events"
    txn = rows.write.format("delta").mode("append").option("txnAppId", "f")
    txn.option("txnVersion", 1).save(events)
    txn.option("txnVersion", 1).save(events)  # a replay: skipped
    rows.limit(2).write.format("delta").mode("append").save(events)
    # Version 0's time as Delta readers take it, its commit file's, written without a zone.
    store, location = storage.filesystem(f"{events}/_delta_log/{0:020d}.json")
    created = store.get_file_info(location).mtime
    at = created.replace(tzinfo=created.tzinfo or timezone.utc).astimezone(ZoneInfo(ZONE))
    zoneless = at.replace(tzinfo=None).isoformat(sep=" ", timespec="milliseconds")

    split = ParallelSplit(
        "split",
        [Branch("a", f"{bucket}/split_a"), Branch("b", f"{bucket}/split_b", writer="parquet")],
    )
    branches = split.run(rows, txn_version=1).branches

    def read(**options: object) -> int:  # a reader of its own: option() changes the reader
        return spark.read.format("delta").options(**options).load(events).count()

    return {
        "write": [first.committed, first.rows_written, replay.committed],
        "devices": delta.read(spark, devices).count(),
        "events": read(),
        "events_at_v0": read(timestampAsOf=zoneless),
        "events_version": delta.table_info(events).version,
        "split": {b.name: [b.status, b.rows_written] for b in branches},
    }


if __name__ == "__main__":
    raise SystemExit(main())
