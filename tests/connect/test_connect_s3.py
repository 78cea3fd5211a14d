"""A Spark Connect client on an object store: the server reaches the bucket with its own
settings (the test server's are moto's), the client never lends it its keys."""

from __future__ import annotations

from _s3_tables import table_rows
from pyspark.sql import SparkSession

from spark_flow import delta, markers
from spark_flow.testing import assert_df_equal


def test_delta_and_a_marker_on_a_bucket_from_a_connect_client(
    connect_spark: SparkSession, s3_bucket: str
) -> None:
    table = f"{s3_bucket}/devices"
    df = connect_spark.createDataFrame([(1, "phone"), (2, "tablet")], "id long, type string")

    first = delta.write(df, table, app_id="loader", txn_version=1, partition_by=["type"])
    replay = delta.write(df, table, app_id="loader", txn_version=1)
    df.write.format("delta").mode("append").option("txnAppId", "book").option(
        "txnVersion", "1"
    ).save(table)
    marker = markers.mark_ready(
        table, run_id="r1", row_count=first.rows_written, table_version=first.table_version
    )

    assert (first.committed, replay.committed) == (True, False)
    assert sorted(r["id"] for r in table_rows(table)) == [1, 1, 2, 2]  # deltalake, directly
    assert_df_equal(delta.read(connect_spark, table, version=0), df, ignore_column_order=True)
    assert connect_spark.read.format("delta").load(table).count() == 4
    assert markers.read_ready(connect_spark, marker).count() == 2
