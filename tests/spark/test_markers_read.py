from __future__ import annotations

from pyspark.sql import SparkSession

from spark_flow import delta
from spark_flow.markers import mark_ready, read_ready, wait_until_ready


def test_a_consumer_reads_the_marked_version_not_a_newer_commit(
    spark: SparkSession, tmp_delta_path: str
) -> None:
    written = delta.write(spark.range(5), tmp_delta_path)
    mark_ready(tmp_delta_path, run_id="r1", table_version=written.table_version)
    delta.write(spark.range(100, 200), tmp_delta_path)  # a newer producer run, not marked yet

    marker = wait_until_ready(tmp_delta_path, timeout=0)

    assert read_ready(spark, marker).count() == 5
