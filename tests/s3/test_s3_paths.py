"""Store paths as users spell them (Hadoop's `s3a://`, upper case, spaces and unicode in folder
names) against a real S3 server (moto, 127.0.0.1), and the locations no store can take or hold,
refused by name before any Spark job instead of failing inside one."""

from __future__ import annotations

from datetime import date

import pytest
from _s3_tables import table_rows
from pyspark.sql import SparkSession

from spark_flow import delta, markers, storage
from spark_flow.errors import StorageError
from spark_flow.fan_in import list_partitions
from spark_flow.local_s3 import LocalS3
from spark_flow.outputs import FileOutput
from spark_flow.runners import RunLock, RunState, SingleRunner
from spark_flow.testing import assert_df_equal, count_spark_jobs

ROWS = [(1, "fr"), (2, "de")]
SCHEMA = "id long, country string"
MISSING = "s3://no-such-bucket/devices"


def test_a_table_in_folders_named_with_a_space_and_unicode_reads_back(
    spark: SparkSession, s3_bucket: str
) -> None:
    table = f"{s3_bucket}/sales 2024/café"
    df = spark.createDataFrame([(1, "fr"), (2, "São Paulo")], SCHEMA)

    delta.write(df, table, app_id="loader", txn_version=1, partition_by=["country"])

    assert_df_equal(delta.read(spark, table), df, ignore_column_order=True)
    assert_df_equal(spark.read.format("delta").load(table), df, ignore_column_order=True)
    assert {r["country"] for r in table_rows(table)} == {"fr", "São Paulo"}


@pytest.mark.parametrize(
    ("folder", "predicate", "expected"),
    [
        ("sales 2024", "id = 1", [1]),
        ("sales", "country = 'São Paulo'", [2]),
        ("sales 2024/café", "country = 'a%2Fb c'", [3]),
    ],
)
def test_file_skipping_keeps_the_files_of_paths_with_spaces(
    spark: SparkSession, s3_bucket: str, folder: str, predicate: str, expected: list[int]
) -> None:
    table = f"{s3_bucket}/{folder}"
    df = spark.createDataFrame([(1, "fr"), (2, "São Paulo"), (3, "a%2Fb c")], SCHEMA)
    delta.write(df, table, partition_by=["country"])

    assert [row.id for row in delta.read(spark, table, filter=predicate).collect()] == expected


@pytest.mark.parametrize("where", ["s3a://{bucket}/state", "S3://{bucket}/state/", "{uri}/a b/ü"])
def test_the_run_history_reads_back_wherever_the_state_location_is_spelled(
    s3_bucket: str, where: str
) -> None:
    state = RunState(where.format(bucket=s3_bucket.removeprefix("s3://"), uri=s3_bucket))
    runner = SingleRunner("loader", state=state)

    ran = runner.run(date(2024, 1, 1), lambda context: {"rows": 1})
    again = runner.run(date(2024, 1, 1), lambda context: {"rows": 1})

    assert (ran.status, again.status) == ("success", "already_done")
    assert [r.status for r in state.history("loader")] == ["success"]


def test_the_run_history_reaches_an_endpoint_set_only_in_the_storage_settings(
    s3_bucket: str, s3_server: LocalS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ALLOW_HTTP"):
        monkeypatch.delenv(name)
    storage.configure(storage.StorageSettings(endpoint=s3_server.endpoint, allow_http=True))
    try:
        state = RunState(f"{s3_bucket}/state")
        SingleRunner("loader", state=state).run(date(2024, 1, 1), lambda context: {"rows": 1})

        assert [r.status for r in state.history("loader")] == ["success"]
    finally:
        storage.configure(storage.StorageSettings())


@pytest.mark.parametrize(
    ("location", "fragment"),
    [
        ("s3://", "the URI names no bucket"),
        ("s3:///devices", "the URI names no bucket"),
        ("{bucket}/100%25", "reads as an escaped character to deltalake"),
        # deltalake and obstore would cut the URI there and write to s3://bucket/run.
        ("{bucket}/run#2/devices", "'#' in the path"),
        ("{bucket}/q?day=1/devices", "'?' in the path"),
        ("{bucket}/daily//devices", "an empty folder name"),
        ("{bucket}//devices", "an empty folder name"),
        # deltalake resolves them (writing to s3://bucket/devices), obstore refuses them.
        ("{bucket}/./devices", "a '.' or '..' folder name"),
        ("{bucket}/daily/../devices", "a '.' or '..' folder name"),
        # URI parsers drop them, Spark and pyarrow keep them in the key.
        ("{bucket}/devices ", "ends with whitespace"),
        ("{bucket}/devices\n", "ends with whitespace"),
        ("{bucket}/dai\tly/devices", "a control character"),
    ],
)
def test_a_location_no_store_can_take_is_refused_before_any_spark_job(
    spark: SparkSession, s3_bucket: str, location: str, fragment: str
) -> None:
    path = location.format(bucket=s3_bucket)
    df = spark.createDataFrame(ROWS, SCHEMA)
    writes = [
        lambda: delta.write(df, path, app_id="loader", txn_version=1),
        lambda: FileOutput("parquet").write(df, path, app_id="loader", txn_version=1),
    ]
    for write in writes:
        with count_spark_jobs(spark) as jobs, pytest.raises(StorageError) as caught:
            write()

        assert jobs.count == 0
        assert fragment in caught.value.cause
    assert storage.list_files(s3_bucket, recursive=True) == []


def test_hadoops_s3n_names_the_same_objects_for_every_client(
    spark: SparkSession, s3_bucket: str
) -> None:
    table = f"s3n://{s3_bucket.removeprefix('s3://')}/devices"
    df = spark.createDataFrame(ROWS, SCHEMA)

    delta.write(df, table, app_id="loader", txn_version=1)  # deltalake commits
    FileOutput("json").write(df, f"{table}-json", app_id="loader", txn_version=1)  # obstore
    markers.mark_ready(table.replace("s3n", "S3N"), run_id="r1")

    assert sorted(r["id"] for r in table_rows(f"{s3_bucket}/devices")) == [1, 2]
    assert_df_equal(delta.read(spark, table), df)
    assert storage.exists(f"{s3_bucket}/devices-json/batch_id=1/_spark_flow_batch.json")
    assert markers.wait_until_ready(f"{s3_bucket}/devices", timeout=0) is not None


def test_a_file_output_to_a_bucket_that_does_not_exist_fails_before_any_spark_job(
    spark: SparkSession, s3_bucket: str
) -> None:
    output = FileOutput("json")

    with count_spark_jobs(spark) as jobs, pytest.raises(StorageError) as caught:
        output.write(spark.createDataFrame(ROWS, SCHEMA), MISSING, app_id="a", txn_version=1)
    with pytest.raises(StorageError):
        output.read(spark, MISSING)

    assert jobs.count == 0
    assert caught.value.path == MISSING
    assert "bucket 'no-such-bucket' does not exist" in caught.value.cause


def test_waiting_for_a_marker_in_a_bucket_that_does_not_exist_fails_at_once(
    s3_bucket: str,
) -> None:
    # Not "no marker yet": nothing will ever appear there, however long the wait.
    with pytest.raises(StorageError) as caught:
        markers.wait_until_ready(MISSING, timeout=0)

    assert "bucket 'no-such-bucket' does not exist" in caught.value.cause


def test_marking_an_output_in_a_bucket_that_does_not_exist_names_the_bucket(
    s3_bucket: str,
) -> None:
    # Not "call mark_ready after the write": no write can ever create that output.
    with pytest.raises(StorageError) as caught:
        markers.mark_ready(MISSING, run_id="r1")

    assert "bucket 'no-such-bucket' does not exist" in caught.value.cause


def test_listing_partitions_in_a_bucket_that_does_not_exist_names_the_bucket(
    s3_bucket: str,
) -> None:
    # Not "every partition missing": a fan-in would record that and go on without them.
    with pytest.raises(StorageError) as caught:
        list_partitions(MISSING, [{"date": "2024-01-01"}])

    assert "bucket 'no-such-bucket' does not exist" in caught.value.cause


def test_a_lock_in_a_bucket_that_does_not_exist_names_the_bucket(s3_bucket: str) -> None:
    lock = RunLock(RunState(MISSING).lock_folder("loader"), job="loader", renew=False)

    with pytest.raises(StorageError) as caught:
        lock.acquire()

    assert "bucket 'no-such-bucket' does not exist" in caught.value.cause
