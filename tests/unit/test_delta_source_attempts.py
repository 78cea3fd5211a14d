"""The `delta` data source's batch writer driven as Spark drives it, task attempt by task attempt.

On a cluster a task may run twice: a speculative copy, or a retry after its executor was lost
once its files were written. Spark hands the writer's commit the message of one attempt per
task; the other's files are no part of the write, wherever they were written.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable
from pyspark.sql.types import LongType, StringType, StructField, StructType

from spark_flow.delta.source import DeltaDataSource

SCHEMA = StructType([StructField("id", LongType()), StructField("part", StringType())])


def rows(*ids: int) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {"id": list(ids), "part": [str(i % 2) for i in ids]},
        schema=pa.schema([("id", pa.int64()), ("part", pa.string())]),
    )


def test_a_local_table_commits_the_files_of_the_attempts_spark_accepted(tmp_path: Path) -> None:
    """Before, the commit published every file in the write's staging folder: the attempt
    Spark had discarded was committed too, and each of its rows was in the table twice."""
    table = str(tmp_path / "events")
    source = DeltaDataSource({"path": table, "txnAppId": "app", "txnVersion": "1"})
    writer = source.writer(SCHEMA, overwrite=False)

    writer.write(iter([rows(1, 2, 3)]))  # task 0, attempt 0: its result was discarded
    accepted = [writer.write(iter([rows(1, 2, 3)])), writer.write(iter([rows(4, 5)]))]
    writer.commit(accepted)

    written = DeltaTable(table).to_pyarrow_table()
    assert sorted(written.column("id").to_pylist()) == [1, 2, 3, 4, 5]
    assert not (tmp_path / "events" / "_spark_flow_staging").exists()
