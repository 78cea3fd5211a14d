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
