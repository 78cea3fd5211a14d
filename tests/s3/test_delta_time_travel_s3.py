"""Time travel by timestamp on an object store: commit times come from the store's listing."""

from __future__ import annotations

from datetime import timedelta

from pyspark.sql import SparkSession

from spark_flow import delta, storage


def test_timestamp_as_of_follows_the_commit_objects_times(
    spark: SparkSession, s3_bucket: str
) -> None:
    table = f"{s3_bucket}/history"
    for n in (2, 3):
        delta.write(spark.range(n), table)
    store, location = storage.filesystem(f"{table}/_delta_log")
    first, second = (
        info.mtime for info in store.get_file_info([f"{location}/{v:020d}.json" for v in (0, 1)])
    )
    # Listings give whole seconds: two commits within one share it, and the later one counts
    # as a millisecond after the earlier, as in delta-spark.
    second = max(second, first + timedelta(milliseconds=1))

    assert delta.read(spark, table, timestamp=first).count() == 2
    assert delta.read(spark, table, timestamp=second - timedelta(microseconds=1)).count() == 2
    assert delta.read(spark, table, timestamp=second).count() == 5
    frame = spark.read.format("delta").option("timestampAsOf", second.isoformat())
    assert frame.load(table).count() == 5
