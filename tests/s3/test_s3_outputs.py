"""File outputs and file inputs on an object store (a real S3 API, moto, on 127.0.0.1).

A plain pip-installed pyspark has no Hadoop S3 connector, so everything here goes through Arrow
in Python workers; a batch is visible when its manifest is, whatever files lie beside it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_flow import storage
from spark_flow.errors import InvalidArgumentError
from spark_flow.files import list_files, read_files, spark_reads
from spark_flow.outputs import FileOutput, output_writer
from spark_flow.testing import assert_df_equal, read_output, rendezvous
from spark_flow.validation import permissive

FILE_TYPES = ["parquet", "csv", "json"]
SCHEMA_OF_TWO = "id LONG, name STRING"
MANIFEST = "_spark_flow_batch.json"


def devices(spark: SparkSession, start: int, end: int) -> DataFrame:
    return spark.range(start, end).select(
        F.col("id"), F.concat(F.lit("device-"), F.col("id")).alias("name")
    )


def names(folder: str) -> set[str]:
    """The data files under `folder` (manifests, like every `_` name, left out)."""
    return {path.rsplit("/", 1)[-1] for path in list_files(folder)}


def manifest(folder: str) -> dict[str, object]:
    return dict(json.loads(storage.read_text(f"{folder}/{MANIFEST}") or "null"))


def test_plain_pyspark_has_no_filesystem_for_s3(spark: SparkSession, tmp_path: Path) -> None:
    assert spark_reads(spark, str(tmp_path))
    assert not spark_reads(spark, "s3://bucket/devices")


@pytest.mark.parametrize("output_type", FILE_TYPES)
def test_a_batch_is_published_once_by_its_manifest_and_read_back_by_manifests(
    spark: SparkSession, s3_bucket: str, output_type: str
) -> None:
    output = f"{s3_bucket}/devices"
    writer = output_writer(output_type)

    first = writer.write(devices(spark, 0, 50), output, app_id="loader", txn_version=1)
    objects_after_first = names(output)
    replay = writer.write(devices(spark, 0, 50), output, app_id="loader", txn_version=1)
    second = writer.write(devices(spark, 50, 60), output, app_id="loader", txn_version=2)

    assert (first.committed, first.rows_written) == (True, 50)
    assert (replay.committed, replay.rows_written) == (False, 0)
    assert "already published" in (replay.skipped_reason or "")
    assert (second.committed, second.rows_written) == (True, 10)
    batch_1 = f"{output}/batch_id=1"
    assert names(batch_1) == set(manifest(batch_1)["files"])  # type: ignore[arg-type]
    assert objects_after_first <= names(output)
    assert writer.written(output, app_id="loader", txn_version=2) is not None  # type: ignore[attr-defined]
    expected = devices(spark, 0, 60).withColumn(
        "batch_id", F.when(F.col("id") < 50, 1).otherwise(2).cast("long")
    )
    assert_df_equal(read_output(spark, output_type, output), expected)


def test_csv_batches_keep_the_first_batch_columns_and_a_header(
    spark: SparkSession, s3_bucket: str
) -> None:
    output = f"{s3_bucket}/devices"
    writer = output_writer("csv")
    writer.write(devices(spark, 0, 3), output, app_id="a", txn_version=1)
    writer.write(devices(spark, 3, 5).select("name", "id"), output, app_id="a", txn_version=2)

    first_file = next(f for f in list_files(f"{output}/batch_id=2") if f.endswith(".csv"))
    header = (storage.read_text(first_file) or "").splitlines()[0]

    assert header.replace('"', "") == "id,name"
    assert read_output(spark, "csv", output).columns == ["id", "name", "batch_id"]


def test_files_without_a_manifest_are_invisible_and_the_replay_removes_them(
    spark: SparkSession, s3_bucket: str
) -> None:
    output = f"{s3_bucket}/devices"
    writer = output_writer("json")
    writer.write(devices(spark, 0, 5), output, app_id="a", txn_version=1)
    # What a crashed attempt leaves: a data file in the batch's folder, no manifest.
    storage.write_text_atomically(f"{output}/batch_id=2/part-crashed-00000.json", '{"id": 99}\n')

    visible = read_output(spark, "json", output)
    replay = writer.write(devices(spark, 5, 8), output, app_id="a", txn_version=2)

    assert visible.count() == 5
    assert writer.written(output, app_id="a", txn_version=3) is None  # type: ignore[attr-defined]
    assert (replay.committed, replay.rows_written) == (True, 3)
    assert "part-crashed-00000.json" not in names(f"{output}/batch_id=2")
    assert sorted(r.id for r in read_output(spark, "json", output).collect()) == list(range(8))


def test_two_writers_racing_for_one_batch_publish_it_once(
    spark: SparkSession, s3_bucket: str, tmp_path: Path
) -> None:
    output = f"{s3_bucket}/devices"
    arrive = rendezvous(tmp_path, parties=2)
    results = {}

    def write(name: str) -> None:
        # Both writers get past the "already published?" check before either writes a file.
        racer = devices(spark, 0, 20).repartition(1).withColumn("id", arrive("id"))
        results[name] = output_writer("parquet").write(racer, output, app_id="a", txn_version=1)

    threads = [threading.Thread(target=write, args=(n,)) for n in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(r.committed for r in results.values()) == [False, True]
    batch_1 = f"{output}/batch_id=1"
    assert names(batch_1) == set(manifest(batch_1)["files"])  # type: ignore[arg-type]
    assert read_output(spark, "parquet", output).count() == 20


def test_a_writer_killed_mid_batch_leaves_nothing_visible_and_the_replay_completes_it_once(
    spark: SparkSession, s3_bucket: str, tmp_path: Path
) -> None:
    output = f"{s3_bucket}/devices"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    log = (tmp_path / "writer.log").open("w")
    script = Path(__file__).with_name("_crash_file_output.py")
    writer_process = subprocess.Popen(
        [sys.executable, str(script), output, "parquet", str(tmp_path)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not (tmp_path / "arrived").exists() and writer_process.poll() is None:
            assert time.monotonic() < deadline, "the writer never reached the rendezvous"
            time.sleep(0.05)  # polling the rendezvous file the writer creates
        assert writer_process.poll() is None, (tmp_path / "writer.log").read_text()[-3000:]
    finally:
        # Its whole process group: the driver, its JVM and the JVM's Python workers.
        os.killpg(writer_process.pid, signal.SIGKILL)
        writer_process.wait()
        log.close()
    batch_1 = f"{output}/batch_id=1"
    left_behind = names(batch_1)
    manifest_left = storage.read_text(f"{batch_1}/{MANIFEST}")
    writer = FileOutput("parquet")

    visible = sorted(r.batch_id for r in writer.read(spark, output).collect())
    replay = writer.write(spark.range(10, 30), output, app_id="crash", txn_version=1)
    again = writer.write(spark.range(10, 30), output, app_id="crash", txn_version=1)

    assert left_behind  # the first partition's file
    assert manifest_left is None
    assert visible == [0] * 10
    assert (replay.committed, replay.rows_written) == (True, 20)
    assert not again.committed
    assert not left_behind & names(batch_1)
    assert sorted(r.id for r in writer.read(spark, output).collect()) == list(range(30))


def test_json_lines_on_a_store_read_like_sparks_permissive_reader(
    spark: SparkSession, s3_bucket: str, tmp_path: Path
) -> None:
    lines = (
        '{"type": "phone", "full_name": "Galaxy", "version": "S24"}\n'
        "not json at all\n"
        '{"type": "tablet", "version": 7}\n'
        "\n"
        '{"type": ["a", "list"], "extra": true}\n'
        "[1, 2]\n"
    )
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "part-0.json").write_text(lines)
    storage.write_text_atomically(f"{s3_bucket}/landing/part-0.json", lines)
    storage.write_text_atomically(f"{s3_bucket}/landing/_ignored/part-1.json", lines)
    schema = permissive("type STRING, full_name STRING, version STRING")

    from_store = read_files(spark, f"{s3_bucket}/landing", format="json", schema=schema)
    by_spark = spark.read.schema(schema).json(str(tmp_path / "local"))

    assert_df_equal(from_store, by_spark)


@pytest.mark.parametrize(("file_format", "options"), [("csv", {"header": "true"}), ("parquet", {})])
def test_csv_and_parquet_inputs_on_a_store_read_in_the_given_schema(
    spark: SparkSession, s3_bucket: str, file_format: str, options: dict[str, str]
) -> None:
    landing = f"{s3_bucket}/landing"
    output_writer(file_format).write(devices(spark, 0, 7), landing, app_id="a", txn_version=1)
    schema = devices(spark, 0, 1).schema

    read = read_files(spark, f"{landing}/batch_id=1", format=file_format, schema=schema,
                      options=options)  # fmt: skip

    assert_df_equal(read, devices(spark, 0, 7))


CSV_FILES = {
    # Clean: pyarrow parses and casts whole columns.
    "clean.csv": (
        "ID,When,Day,Amount,Ok,Ratio,Name\n"
        '1,2024-03-10 02:30:00,2024-03-10,1.5,TRUE,0.25,"a, quoted"\n'
        '2,2024-01-01T05:00:00Z,2024-01-02,,false,-1e3,""\n'
        "3,2024-11-03 01:30:00,2024-01-03,123.45,,,plain\n"
    ),
    # Dirty: decided line by line, as Spark's PERMISSIVE reader does.
    "dirty.csv": (
        "id,when,day,amount,ok,ratio,name\n"
        "4,2024-06-01 12:00:00,2024-6-1,1.235,1,-Inf,bad boolean\n"
        '5,not a time,2024-01-05,"1,234.5",true,1.5d,bad time\n'
        "x,2024-06-01 12:00:00,2024-01-06,1234.5,false,Inf,bad id and decimal\n"
        "7,2024-06-01 12:00:00,2024-01-07\n"
        "8,2024-06-01 12:00:00,2024-01-08,1,true,2,long,extra\n"
        # Java's integer and decimal parsers take any script's digits, its parseDouble does not.
        "\u0669,2024-06-01 12:00:00,2024-01-09,\u0661\u0662,true,\u0661.\u0665,other digits\n"
    ),
}


def test_csv_on_a_store_read_like_sparks_permissive_reader(
    spark: SparkSession, s3_bucket: str, tmp_path: Path
) -> None:
    """Columns by position whatever the header says, zoneless times in the session's zone (a
    DST gap included), bad values null with the line in `_corrupt_record`: as Spark reads."""
    (tmp_path / "local").mkdir()
    for name, text in CSV_FILES.items():
        (tmp_path / "local" / name).write_text(text, encoding="utf-8")
        storage.write_text_atomically(f"{s3_bucket}/landing/{name}", text)
    schema = permissive(
        "id INT, when TIMESTAMP, day DATE, amount DECIMAL(5,2), ok BOOLEAN, ratio DOUBLE, "
        "name STRING"
    )
    zone = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        options = {"header": "true"}
        from_store = read_files(spark, f"{s3_bucket}/landing", format="csv", schema=schema,
                                options=options).collect()  # fmt: skip
        by_spark = spark.read.schema(schema).options(**options).csv(str(tmp_path / "local"))
        expected = by_spark.collect()
    finally:
        spark.conf.set("spark.sql.session.timeZone", str(zone))

    assert sorted(from_store, key=repr) == sorted(expected, key=repr)
    assert sum(r._corrupt_record is not None for r in expected) == 6


def test_reader_options_the_arrow_path_would_ignore_are_refused(
    spark: SparkSession, s3_bucket: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=r"nullValue='NA'.*connector"):
        read_files(spark, f"{s3_bucket}/landing", format="csv", schema=SCHEMA_OF_TWO,
                   options={"header": "true", "nullValue": "NA"})  # fmt: skip
    with pytest.raises(InvalidArgumentError, match="mode='FAILFAST'"):
        read_files(spark, f"{s3_bucket}/landing", format="json", schema=SCHEMA_OF_TWO,
                   options={"mode": "FAILFAST"})  # fmt: skip


JSON_LINES = (
    '{"id": "x", "name": "a", "at": "2024-01-01 05:00:00", "day": "2024-01-05"}\n'
    '{"id": 1.5, "name": ["a","compact", {"k": 1.50}]}\n'
    '{"id": 2, "name": 3, "at": "2024-03-10T02:30:00", "day": "2024-1-5"}\n'
    '{"id": 9999999999, "name": 1e3, "ok": "true", "at": 1700000000}\n'
    '{"id": 3, "ok": 1, "ratio": "1.5"}\n'
    '{"id": 4, "ratio": "-Infinity", "ok": true}   \n'
    '{"id": 5} trailing\n'
)


def test_json_fields_on_a_store_decided_one_by_one_like_sparks_reader(
    spark: SparkSession, s3_bucket: str, tmp_path: Path
) -> None:
    """A field that does not fit is null while the others keep their values; a string column
    keeps the text as written; dates and times parsed as Spark parses them, in its zone."""
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "part-0.json").write_text(JSON_LINES)
    storage.write_text_atomically(f"{s3_bucket}/landing/part-0.json", JSON_LINES)
    schema = permissive("id INT, name STRING, at TIMESTAMP, day DATE, ok BOOLEAN, ratio DOUBLE")
    zone = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        from_store = read_files(spark, f"{s3_bucket}/landing", format="json", schema=schema)
        rows = from_store.collect()
        expected = spark.read.schema(schema).json(str(tmp_path / "local")).collect()
    finally:
        spark.conf.set("spark.sql.session.timeZone", str(zone))

    assert sorted(rows, key=repr) == sorted(expected, key=repr)
    assert [r.name for r in expected if r.id is None][:2] == ["a", '["a","compact", {"k": 1.50}]']


def test_parquet_on_a_store_matches_columns_and_int96_times_as_spark_does(
    spark: SparkSession, s3_bucket: str, tmp_path: Path
) -> None:
    """Spark matches Parquet columns case-insensitively and reads its own INT96 timestamps
    past 2262 (an open-ended validity's 9999-12-31): the Arrow path reads them alike."""
    spark.sql(
        "SELECT 1L AS ID, TIMESTAMP'9999-12-31 00:00:00' AS Valid_To UNION ALL "
        "SELECT 2L, TIMESTAMP'2024-01-01 05:00:00'"
    ).coalesce(1).write.parquet(str(tmp_path / "scd"))
    for file in (tmp_path / "scd").glob("*.parquet"):
        store, location = storage.filesystem(f"{s3_bucket}/scd/{file.name}")
        with store.open_output_stream(location) as out:
            out.write(file.read_bytes())
    schema = "id LONG, valid_to TIMESTAMP"

    from_store = read_files(spark, f"{s3_bucket}/scd", format="parquet", schema=schema)
    by_spark = spark.read.schema(schema).parquet(str(tmp_path / "scd"))

    assert sorted(from_store.collect()) == sorted(by_spark.collect())
    assert {r.id for r in by_spark.collect() if r.valid_to.year == 9999} == {1}


TRICKY = [
    (1, 'a,"b"', "1.50", float("inf"), "2024-01-01 05:00:00.123", b"\x00\x01", {"k": 1.5}),
    (2, ' padded\\"x ', "-0.01", -1.0, "2024-07-01 00:00:00", b"", {}),
    (3, "", None, None, None, None, None),
    (4, None, "999.99", 2.5, "2024-03-10 03:30:00", b"\xff", {"n": None}),
]


@pytest.mark.parametrize("file_format", ["csv", "json"])
def test_files_written_to_a_store_read_back_by_spark_as_its_own_output(
    spark: SparkSession, s3_bucket: str, tmp_path: Path, file_format: str
) -> None:
    """Arrow workers write what Spark's writer writes: Spark read a quote pyarrow doubled as
    two quotes, rejected pyarrow's `nan`, and got Python's b'..' for binary, a list of pairs
    for a map."""
    columns = (
        "id INT, s STRING, d DECIMAL(5,2), f DOUBLE, t TIMESTAMP, b BINARY, m MAP<STRING,DOUBLE>"
    )
    schema = columns if file_format == "json" else columns.rsplit(", b BINARY", 1)[0]
    df = spark.createDataFrame(TRICKY, "id INT, s STRING, d STRING, f DOUBLE, t STRING, b BINARY, "
                               "m MAP<STRING,DOUBLE>").selectExpr(
        "id", "s", "CAST(d AS DECIMAL(5,2)) AS d", "f", "CAST(t AS TIMESTAMP) AS t", "b", "m"
    ).select(*[c.split()[0] for c in schema.split(", ")])  # fmt: skip
    writer = FileOutput(file_format)
    writer.write(df, f"{s3_bucket}/out", app_id="a", txn_version=1)
    writer.write(df, str(tmp_path / "by_spark"), app_id="a", txn_version=1)
    copied = tmp_path / "copied"
    copied.mkdir()
    for name in names(f"{s3_bucket}/out/batch_id=1"):
        copied.joinpath(name).write_bytes(
            storage.read_bytes(f"{s3_bucket}/out/batch_id=1/{name}") or b""
        )
    reader = spark.read.schema(schema).option("header", "true").format(file_format)

    from_store = reader.load(str(copied)).collect()
    by_spark = reader.load(str(tmp_path / "by_spark" / "batch_id=1")).collect()

    assert sorted(from_store, key=repr) == sorted(by_spark, key=repr)
    assert len(by_spark) == len(TRICKY)
