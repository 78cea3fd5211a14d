"""Reads on an object store: time travel by timestamp (commit times from the store's listing),
errors of ours."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pyspark.sql import SparkSession

from spark_flow import delta, storage
from spark_flow.errors import NotADeltaTableError


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


def test_a_read_of_no_table_in_the_bucket_raises_our_error(
    spark: SparkSession, s3_bucket: str
) -> None:
    # The store's tables are read by the `delta` data source: its error came back wrapped in
    # Spark's AnalysisException, and `except NotADeltaTableError` missed it.
    with pytest.raises(NotADeltaTableError):
        delta.read(spark, f"{s3_bucket}/nothing-here")
