"""The Unaligned Fan-In's bookkeeping on a bucket: partitions listed on the store, not as local
folders, and the completeness table written below the output's URI."""

from __future__ import annotations

from pathlib import Path

from _s3_tables import table_rows
from pyspark.sql import SparkSession

from spark_flow import storage
from spark_flow.fan_in import (
    CompletenessRecord,
    list_partitions,
    read_partitions,
    record_completeness,
)


def test_partitions_on_a_bucket_are_listed_there(s3_bucket: str) -> None:
    root = f"{s3_bucket}/visits"
    store, location = storage.filesystem(root)
    for name in ("date=2024-01-01/hour=00/part-0.json", "date=2024-01-01/hour=01/_SUCCESS"):
        with store.open_output_stream(f"{location}/{name}") as out:
            out.write(b'{"id": 1}\n')
    hours = [{"date": "2024-01-01", "hour": f"{h:02d}"} for h in range(3)]

    listing = list_partitions(f"{root}/", hours)

    assert listing.root == root
    assert listing.present == ("date=2024-01-01/hour=00",)
    assert listing.missing == ("date=2024-01-01/hour=01", "date=2024-01-01/hour=02")


def test_the_completeness_table_lands_below_the_output_in_the_bucket(
    spark: SparkSession, s3_bucket: str
) -> None:
    record = CompletenessRecord("visits", "2024-01-01", 24, 23, ("hour=07",))

    path = record_completeness(spark, f"{s3_bucket}/cube", record)

    assert path == f"{s3_bucket}/cube/_spark_flow_completeness"
    (row,) = table_rows(path, order_by="logical_date")
    assert (row["present"], row["missing"]) == (23, ["hour=07"])


def test_partitions_read_from_a_bucket_have_the_columns_spark_discovers_on_a_disk(
    spark: SparkSession, s3_bucket: str, tmp_path: Path
) -> None:
    hours = [{"date": "2024-01-01", "hour": f"{h:02d}"} for h in (0, 13)]
    line = '{"id": 1, "at": "2024-01-01T00:30:00Z"}\n'
    for part in hours:
        name = f"date={part['date']}/hour={part['hour']}/part-0.json"
        storage.write_text_atomically(f"{s3_bucket}/visits/{name}", line)
        (tmp_path / name).parent.mkdir(parents=True)
        (tmp_path / name).write_text(line)
    schema = "id BIGINT, at TIMESTAMP"

    on_bucket = read_partitions(spark, list_partitions(f"{s3_bucket}/visits", hours),
                                format="json", schema=schema)  # fmt: skip
    on_disk = read_partitions(spark, list_partitions(tmp_path, hours), format="json", schema=schema)

    assert on_bucket.schema == on_disk.schema
    assert sorted(on_bucket.collect()) == sorted(on_disk.collect())


def test_partitions_spark_named_with_escapes_and_nulls_are_found_and_typed_alike(
    spark: SparkSession, s3_bucket: str, tmp_path: Path
) -> None:
    """Spark's partitionBy escapes `:` and `%` and names a null `__HIVE_DEFAULT_PARTITION__`:
    the fan-in finds such partitions by their values, and reads their columns with the types
    and values Spark discovers, from a disk and from a bucket."""
    rows = [(1, "a:b", 1.5, "2024-01-01 05:00:00"), (2, None, 2.0, "2024-01-02 06:00:00"),
            (3, "x=y%/z", 3.0, None)]  # fmt: skip
    spark.createDataFrame(rows, "id INT, s STRING, n DOUBLE, t STRING").write.partitionBy(
        "s", "n", "t"
    ).json(str(tmp_path / "visits"))
    for file in (tmp_path / "visits").rglob("*.json"):
        relative = file.relative_to(tmp_path / "visits").as_posix()
        storage.write_text_atomically(f"{s3_bucket}/visits/{relative}", file.read_text())
    expected = [{"s": s, "n": n, "t": t} for _, s, n, t in rows]

    on_disk = list_partitions(tmp_path / "visits", expected)
    on_bucket = list_partitions(f"{s3_bucket}/visits", expected)
    read_disk = read_partitions(spark, on_disk, format="json", schema="id INT")
    read_bucket = read_partitions(spark, on_bucket, format="json", schema="id INT")

    assert on_disk.missing == on_bucket.missing == ()
    assert read_bucket.schema == read_disk.schema
    assert read_disk.schema.simpleString() == "struct<id:int,s:string,n:double,t:timestamp>"
    assert sorted(read_bucket.collect()) == sorted(read_disk.collect())
    assert sorted((r.id, r.s) for r in read_disk.collect()) == [
        (1, "a:b"),
        (2, None),
        (3, "x=y%/z"),
    ]
