"""Output writers: each format idempotent per (output, app_id, batch), no half-written batch."""

from __future__ import annotations

import json
import threading
from functools import partial
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_flow import _manifests, outputs
from spark_flow.errors import InvalidArgumentError, SchemaMismatchError, UnknownValueError
from spark_flow.outputs import FileOutput, output_types, output_writer, register_output
from spark_flow.testing import assert_df_equal, read_output, rendezvous

FILE_TYPES = ["parquet", "csv", "json"]


def all_files(path: str) -> list[Path]:
    return sorted(p for p in Path(path).rglob("*") if p.is_file())


def devices(spark: SparkSession, rows: int = 50) -> DataFrame:
    return spark.range(rows).select(
        F.col("id"), F.concat(F.lit("device-"), F.col("id")).alias("name")
    )


@pytest.mark.parametrize("output_type", ["delta", *FILE_TYPES])
def test_a_replayed_batch_writes_nothing_and_a_new_batch_appends(
    spark: SparkSession, tmp_path: Path, output_type: str
) -> None:
    path = str(tmp_path / "out")
    writer = output_writer(output_type)

    first = writer.write(devices(spark), path, app_id="loader", txn_version=1)
    files_after_first = all_files(path)
    replay = writer.write(devices(spark), path, app_id="loader", txn_version=1)
    files_after_replay = all_files(path)
    second = writer.write(devices(spark, 10), path, app_id="loader", txn_version=2)

    assert (first.committed, first.rows_written) == (True, 50)
    assert (replay.committed, replay.rows_written) == (False, 0)
    assert "already" in (replay.skipped_reason or "")
    assert files_after_replay == files_after_first
    assert (second.committed, second.rows_written) == (True, 10)
    assert read_output(spark, output_type, path).count() == 60


@pytest.mark.parametrize("output_type", FILE_TYPES)
def test_file_batches_are_partitions_with_a_manifest_and_no_staging_left(
    spark: SparkSession, tmp_path: Path, output_type: str
) -> None:
    path = tmp_path / "out"
    result = output_writer(output_type).write(devices(spark), str(path), app_id="a", txn_version=7)

    batch_dir = path / "batch_id=7"
    assert (batch_dir / "_spark_flow_batch.json").is_file()
    assert {
        f"batch_id=7/{p.name}" for p in batch_dir.iterdir() if not p.name.startswith(("_", "."))
    } == set(result.files)
    assert list((path / "_spark_flow_staging").iterdir()) == []
    read = read_output(spark, output_type, str(path))
    assert read.select("batch_id").distinct().collect()[0][0] == 7
    assert_df_equal(read.select(F.col("id").cast("long"), "name"), devices(spark))


def test_a_task_failing_mid_write_publishes_nothing_and_the_retry_publishes_once(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = tmp_path / "out"

    @F.udf("long")
    def fail_on_last_partition(value):  # untyped: hints would make it a pandas UDF
        if value >= 75:
            raise ValueError("disk full")
        return value

    broken = spark.range(0, 100, numPartitions=4).withColumn("id", fail_on_last_partition("id"))
    with pytest.raises(Exception, match="disk full"):
        output_writer("parquet").write(broken, str(path), app_id="a", txn_version=1)

    assert not (path / "batch_id=1").exists()
    assert list((path / "_spark_flow_staging").iterdir()) == []
    retried = output_writer("parquet").write(spark.range(100), str(path), app_id="a", txn_version=1)
    assert retried.committed
    assert spark.read.parquet(str(path)).count() == 100


def test_racing_publishers_of_one_batch_publish_it_once(
    spark: SparkSession, tmp_path: Path
) -> None:
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    arrive = rendezvous(barrier, parties=2)
    path = str(tmp_path / "out")
    results = []

    def publish() -> None:
        df = spark.range(0, 40, numPartitions=1).withColumn("id", arrive("id"))
        results.append(output_writer("json").write(df, path, app_id="a", txn_version=3))

    threads = [threading.Thread(target=publish) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(r.committed for r in results) == [False, True]
    assert spark.read.json(path).count() == 40
    assert [p.name for p in Path(path).iterdir() if not p.name.startswith("_")] == ["batch_id=3"]


def test_csv_has_a_header_and_keeps_the_first_batch_column_order(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = tmp_path / "out"
    writer = output_writer("csv")
    writer.write(devices(spark), str(path), app_id="a", txn_version=1)
    writer.write(devices(spark).select("name", "id"), str(path), app_id="a", txn_version=2)

    headers = {
        line.split("\n")[0]
        for part in path.glob("batch_id=*/part-*.csv")
        if (line := part.read_text())
    }
    assert headers == {"id,name"}
    assert read_output(spark, "csv", str(path)).filter("batch_id = 2").count() == 50


def test_a_changed_schema_is_refused_before_anything_is_written(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = tmp_path / "out"
    writer = output_writer("parquet")
    writer.write(devices(spark), str(path), app_id="a", txn_version=1)

    changed = devices(spark).withColumn("id", F.col("id").cast("string")).drop("name")
    with pytest.raises(SchemaMismatchError) as caught:
        writer.write(changed, str(path), app_id="a", txn_version=2)

    assert ("id", "bigint", "string") in caught.value.conflicts
    assert ("name", "string", "no such column") in caught.value.conflicts
    assert "same columns and types" in str(caught.value)
    assert not (path / "batch_id=2").exists()


def test_a_batch_published_by_another_app_is_an_error(spark: SparkSession, tmp_path: Path) -> None:
    path = str(tmp_path / "out")
    output_writer("json").write(devices(spark), path, app_id="loader", txn_version=1)

    with pytest.raises(InvalidArgumentError, match="published by app 'loader', not 'other'"):
        output_writer("json").write(devices(spark), path, app_id="other", txn_version=1)


@pytest.mark.parametrize("batch", [None, -1])
def test_file_outputs_reject_a_batch_without_a_batch_number(
    spark: SparkSession, tmp_path: Path, batch: int | None
) -> None:
    with pytest.raises(InvalidArgumentError, match="publish each batch as its own folder"):
        output_writer("csv").write(devices(spark), str(tmp_path), app_id="a", txn_version=batch)


def test_a_foreign_folder_in_the_batch_slot_is_not_taken_for_a_published_batch(
    spark: SparkSession, tmp_path: Path
) -> None:
    (tmp_path / "out" / "batch_id=1").mkdir(parents=True)
    with pytest.raises(InvalidArgumentError, match="not published by spark_flow"):
        output_writer("csv").write(devices(spark), str(tmp_path / "out"), app_id="a", txn_version=1)


@pytest.mark.parametrize("key", ["partitionBy", "partitionby", "partition_by"])
def test_a_file_output_refuses_a_partition_option_spark_would_ignore(key: str) -> None:
    # The book's visits_loader (parallel split, Airflow jobs) writes its CSV with
    # .partitionBy('event_date'); as a writer option Spark ignored it and the batch landed
    # unpartitioned, in silence.
    with pytest.raises(InvalidArgumentError) as caught:
        FileOutput("csv", {key: "event_date"})

    assert caught.value.argument == "options"
    assert "DeltaOutput(partition_by=" in str(caught.value)


def test_unknown_output_type_lists_the_registered_ones() -> None:
    with pytest.raises(UnknownValueError) as caught:
        output_writer("cvs")
    assert caught.value.valid_values == output_types()
    assert "Did you mean 'csv'?" in str(caught.value)


def test_custom_output_types_register_once_unless_replaced(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outputs, "_REGISTRY", dict(outputs._REGISTRY))
    register_output("orc", lambda: FileOutput("orc"))

    result = output_writer("orc").write(
        devices(spark), str(tmp_path / "o"), app_id="a", txn_version=1
    )

    assert result.committed
    assert spark.read.orc(str(tmp_path / "o")).count() == 50
    assert "orc" in output_types()
    with pytest.raises(InvalidArgumentError, match="registered already"):
        register_output("orc", lambda: FileOutput("orc"))
    register_output("orc", lambda: FileOutput("orc", {"compression": "zlib"}), replace=True)
    assert output_writer("orc") == FileOutput("orc", {"compression": "zlib"})
    with pytest.raises(InvalidArgumentError, match="expected a callable"):
        register_output("avro", "not a factory")  # type: ignore[arg-type]


def test_publishing_in_place_writes_with_spark_where_spark_has_the_filesystem(
    spark: SparkSession, tmp_path: Path
) -> None:
    # The object-store path on a filesystem Spark has (as a cluster with an S3 connector has):
    # Spark's own writer, a folder per attempt, the manifest created if absent.
    folder = tmp_path / "out" / "batch_id=1"
    (folder / "attempt-crashed").mkdir(parents=True)
    (folder / "attempt-crashed" / "part-0.json").write_text('{"id": 99}\n')
    publish = partial(
        _manifests.publish_in_place, devices(spark), str(tmp_path / "out"), batch=1, app_id="a",
        format="json", options={},
    )  # fmt: skip

    first, loser = publish(), publish()

    manifest = json.loads((folder / "_spark_flow_batch.json").read_text())
    data_files = sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(("_", "."))
    )
    assert (first.committed, first.rows_written) == (True, 50)
    assert not loser.committed
    assert data_files == manifest["files"]
    assert all(name.startswith("attempt-") for name in data_files)
    assert "attempt-crashed/part-0.json" not in data_files
    assert spark.read.json([str(folder / name) for name in data_files]).count() == 50
