"""A process of its own writing one batch to PostgreSQL, for races and task retries.

    python _pg_writer.py TABLE ROWS [--rendezvous FOLDER] [--crash-mid-copy MARKER]

The server comes from $SPARK_FLOW_POSTGRES_DSN and $PGPASSWORD. `--rendezvous` holds the
copying task until the other racer's reached it too; `--crash-mid-copy` kills partition 0's
first attempt once its COPY is under way (PostgreSQL's pg_stat_progress_copy shows rows),
writing what it saw to MARKER. The session allows one retry per task (`local[2,2]`).
Prints the write's result as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator

import pyarrow as pa
from pyspark.sql import DataFrame

from spark_flow import get_session
from spark_flow.outputs import output_writer
from spark_flow.testing import rendezvous


def crash_once_mid_copy(
    dsn: str, password: str, marker: str
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def crash(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import time

        import psycopg
        from pyspark import TaskContext

        context = TaskContext.get()
        first_attempt = context is not None and context.partitionId() == 0
        first_attempt = first_attempt and context is not None and context.attemptNumber() == 0
        for n, batch in enumerate(batches):
            yield batch
            if first_attempt and n == 20:  # enough rows to get through the buffers
                with psycopg.connect(dsn, password=password, autocommit=True) as connection:
                    deadline, copied = time.monotonic() + 60, 0
                    while copied == 0 and time.monotonic() < deadline:
                        row = connection.execute(
                            "SELECT coalesce(max(tuples_processed), 0) FROM pg_stat_progress_copy"
                        ).fetchone()
                        copied = 0 if row is None else int(row[0])
                        time.sleep(0.05)
                with open(marker, "w") as handle:
                    handle.write(str(copied))
                os._exit(1)  # the Python worker dies: the task fails mid-COPY

    return crash


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    parser = argparse.ArgumentParser()
    parser.add_argument("table")
    parser.add_argument("rows", type=int)
    parser.add_argument("--rendezvous")
    parser.add_argument("--crash-mid-copy")
    args = parser.parse_args()
    spark = get_session(
        "pg-writer",
        conf={
            "spark.master": "local[2,2]",
            "spark.sql.execution.arrow.maxRecordsPerBatch": "50",
        },
    )
    try:
        partitions = 1 if args.rendezvous else 2
        df: DataFrame = spark.range(args.rows, numPartitions=partitions).selectExpr(
            "id", "repeat('x', 200) AS pad"
        )
        if args.rendezvous:
            df = df.withColumn("id", rendezvous(args.rendezvous, parties=2)("id"))
        if args.crash_mid_copy:
            dsn, password = os.environ["SPARK_FLOW_POSTGRES_DSN"], os.environ["PGPASSWORD"]
            df = df.mapInArrow(crash_once_mid_copy(dsn, password, args.crash_mid_copy), df.schema)
        result = output_writer("postgres").write(df, args.table, app_id="racer", txn_version=1)
        sys.stdout.write(json.dumps(result.summary()) + "\n")
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
