"""Delta tables on a real S3 API (moto on 127.0.0.1), written by the delta-rs backend.

Plain pip-installed Spark has no S3 filesystem: Python workers write the files with Arrow and
the driver commits with deltalake. What was written is read back by deltalake alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from _s3_tables import committed_files, data_objects, open_table, table_rows
from deltalake import write_deltalake
from pyspark.sql import SparkSession

from spark_flow import delta, storage
from spark_flow.errors import InvalidArgumentError, SchemaMismatchError
from spark_flow.local_s3 import LocalS3
from spark_flow.testing import assert_df_equal, count_spark_jobs

ROWS = [(1, "fr", 1.5), (2, None, None), (3, "a/b=c", 3.0), (4, "fr", 4.0)]
SCHEMA = "id long, country string, score double"


def test_a_replayed_txn_commits_once_and_runs_no_spark_job(
    spark: SparkSession, s3_bucket: str
) -> None:
    table = f"{s3_bucket}/devices"
    df = spark.createDataFrame(ROWS, SCHEMA)

    first = delta.write(df, table, app_id="loader", txn_version=7)
    with count_spark_jobs(spark) as jobs:
        replay = delta.write(df, table, app_id="loader", txn_version=7)

    assert (first.committed, first.table_version, first.rows_written) == (True, 0, 4)
    assert (replay.committed, replay.table_version) == (False, 0)
    assert jobs.count == 0
    assert open_table(table).version() == 0
    assert delta.transaction_version(table, "loader") == 7
    assert data_objects(table) == committed_files(table) == set(first.files)


def test_what_was_written_reads_identically_with_deltalake(
    spark: SparkSession, s3_bucket: str
) -> None:
    table = f"{s3_bucket}/scores"
    delta.write(spark.createDataFrame(ROWS, SCHEMA), table)
    delta.write(spark.createDataFrame([(5, "de", 0.5)], SCHEMA), table, mode="append")

    rows = table_rows(table)

    assert [tuple(row.values()) for row in rows] == [*ROWS, (5, "de", 0.5)]
    assert open_table(table).version() == 1


def test_partitioned_writes_land_in_hive_folders_and_replace_partitions(
    spark: SparkSession, s3_bucket: str
) -> None:
    table = f"{s3_bucket}/by-country"
    delta.write(spark.createDataFrame(ROWS, SCHEMA), table, partition_by=["country"])

    replaced = delta.write(
        spark.createDataFrame([(9, "fr", 9.0)], SCHEMA),
        table,
        mode="overwrite",
        replace_where={"country": "fr"},
    )

    assert replaced.committed
    folders = {path.split("/")[0] for path in committed_files(table)}
    assert folders == {"country=fr", "country=__HIVE_DEFAULT_PARTITION__", "country=a%2Fb%3Dc"}
    assert open_table(table).metadata().partition_columns == ["country"]
    assert [(r["id"], r["country"]) for r in table_rows(table)] == [
        (2, None),
        (3, "a/b=c"),
        (9, "fr"),
    ]


def test_rows_outside_the_replaced_partitions_leave_no_objects_behind(
    spark: SparkSession, s3_bucket: str
) -> None:
    table = f"{s3_bucket}/strict"
    delta.write(spark.createDataFrame(ROWS, SCHEMA), table, partition_by=["country"])
    before = data_objects(table)

    with pytest.raises(InvalidArgumentError, match="the data has rows in"):
        delta.write(
            spark.createDataFrame(ROWS, SCHEMA),
            table,
            mode="overwrite",
            replace_where={"country": "fr"},
        )

    assert data_objects(table) == before
    assert open_table(table).version() == 0


def test_delta_read_round_trips_a_table_on_the_store(spark: SparkSession, s3_bucket: str) -> None:
    # The read path (Arrow in Python workers where Spark has no S3 filesystem) is the reader's.
    table = f"{s3_bucket}/round-trip"
    df = spark.createDataFrame(ROWS, SCHEMA)
    delta.write(df, table, partition_by=["country"])

    assert_df_equal(delta.read(spark, table), df, ignore_column_order=True)


def test_each_data_file_is_read_by_one_request(
    spark: SparkSession, s3_server: LocalS3, s3_bucket: str
) -> None:
    # On a real store each request waits a round trip: no HEAD, no GET per footer or column.
    table = f"{s3_bucket}/one-get"
    delta.write(spark.createDataFrame(ROWS, SCHEMA).repartition(2), table)
    files = committed_files(table)

    with s3_server.recording() as requests:
        rows = delta.read(spark, table).collect()

    bucket = s3_bucket.removeprefix("s3://")
    data = [(method, p) for method, p in requests if p.removeprefix(f"/{bucket}/one-get/") in files]
    assert sorted(row.id for row in rows) == [1, 2, 3, 4]
    assert sorted(data) == sorted(("GET", f"/{bucket}/one-get/{name}") for name in files)


def test_each_data_file_is_written_by_one_request(
    spark: SparkSession, s3_server: LocalS3, s3_bucket: str
) -> None:
    # A multipart upload costs three round trips (create, part, complete) for a small file.
    table = f"{s3_bucket}/one-put"
    with s3_server.recording() as requests:
        delta.write(spark.createDataFrame(ROWS, SCHEMA).repartition(2), table)
    files = committed_files(table)

    bucket = s3_bucket.removeprefix("s3://")
    data = [(method, p) for method, p in requests if p.removeprefix(f"/{bucket}/one-put/") in files]
    assert files
    assert sorted(data) == sorted(("PUT", f"/{bucket}/one-put/{name}") for name in files)


def test_a_stream_appends_each_micro_batch_once_to_a_table_in_the_bucket(
    spark: SparkSession, s3_bucket: str, tmp_path: Path
) -> None:
    # The checkpoint stays on the driver's disk (Spark's own filesystem has no s3:// here);
    # the table's files go to the bucket in place, one commit per micro-batch.
    source, checkpoint, table = tmp_path / "in", tmp_path / "checkpoint", f"{s3_bucket}/stream"
    source.mkdir()
    for name, ids in (("a.json", range(0, 4)), ("b.json", range(4, 6))):
        (source / name).write_text("".join(f'{{"id": {i}}}\n' for i in ids))

    def run() -> None:
        query = (
            spark.readStream.schema("id long").option("maxFilesPerTrigger", 1).json(str(source))
            .writeStream.format("delta").option("checkpointLocation", str(checkpoint))
            .trigger(availableNow=True).start(table)
        )  # fmt: skip
        query.awaitTermination()

    run()
    for entry in ("1", ".1.crc"):  # a crash after batch 1's commit, before Spark recorded it
        (checkpoint / "commits" / entry).unlink()
    run()

    assert [row["id"] for row in table_rows(table)] == list(range(6))
    query_id = json.loads((checkpoint / "metadata").read_text())["id"]
    assert delta.transaction_version(table, query_id) == 1
    assert data_objects(table) == committed_files(table)


def test_a_null_in_a_not_null_column_of_another_engines_table_commits_nothing(
    spark: SparkSession, s3_bucket: str
) -> None:
    # On a store Arrow workers write the files in place: their rows tell the driver which
    # NOT NULL columns a file breaks, and the driver removes the files instead of committing.
    table = f"{s3_bucket}/not-null"
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("s", pa.string())])
    rows = pa.table({"id": [1], "s": ["a"]}, schema=schema)
    write_deltalake(table, rows, storage_options=storage.options(table))
    before = data_objects(table)

    with pytest.raises(SchemaMismatchError) as caught:
        delta.write(spark.createDataFrame([(2, "b"), (None, "c")], "id long, s string"), table)

    assert [c[0] for c in caught.value.conflicts] == ["id"]
    assert open_table(table).version() == 0
    assert data_objects(table) == before
