"""`format("delta")` keeps working in sessions without the connector (the Python data source)."""

from __future__ import annotations

import pytest
from pyspark.errors import PySparkException
from pyspark.sql import SparkSession

from spark_flow import delta
from spark_flow.errors import InvalidArgumentError
from spark_flow.testing import assert_df_equal


def test_txn_options_make_a_replayed_save_a_no_op(spark: SparkSession, tmp_delta_path: str) -> None:
    df = spark.createDataFrame([(1, "galaxy"), (2, "pixel")], "id long, type string")

    for _ in range(2):
        (
            df.write.format("delta")
            .mode("append")
            .option("txnAppId", "devices-loader-v1")
            .option("txnVersion", 1)
            .save(tmp_delta_path)
        )

    assert_df_equal(spark.read.format("delta").load(tmp_delta_path), df)
    assert delta.transaction_version(tmp_delta_path, "devices-loader-v1") == 1


def test_overwrite_merge_schema_and_version_as_of(spark: SparkSession, tmp_delta_path: str) -> None:
    first = spark.createDataFrame([(1,)], "id long")
    wider = spark.createDataFrame([(2, "b")], "id long, name string")
    first.write.format("delta").mode("append").save(tmp_delta_path)

    wider.write.format("delta").mode("overwrite").option("mergeSchema", "true").save(tmp_delta_path)

    assert_df_equal(spark.read.format("delta").load(tmp_delta_path), wider)
    old = spark.read.format("delta").option("versionAsOf", 0).load(tmp_delta_path)
    assert_df_equal(old, first)


def test_format_delta_reads_what_spark_flow_wrote_partitioned(
    spark: SparkSession, tmp_delta_path: str
) -> None:
    df = spark.createDataFrame([(1, "fr"), (2, None)], "id long, country string")
    delta.write(df, tmp_delta_path, partition_by=["country"])

    assert_df_equal(spark.read.format("delta").load(tmp_delta_path), df)


def test_schema_mismatch_is_reported_before_the_job(
    spark: SparkSession, tmp_delta_path: str
) -> None:
    spark.range(1).write.format("delta").mode("append").save(tmp_delta_path)

    with pytest.raises(PySparkException, match="the table has bigint, the data has string"):
        spark.createDataFrame([("x",)], "id string").write.format("delta").mode("append").save(
            tmp_delta_path
        )


def test_only_append_and_overwrite_exist_for_python_data_sources(
    spark: SparkSession, tmp_delta_path: str
) -> None:
    # Spark's rule, documented in the README: the default "error" mode is not available.
    with pytest.raises(PySparkException, match="Append"):
        spark.range(1).write.format("delta").save(tmp_delta_path)


def test_jvm_backend_is_refused_without_the_connector(spark: SparkSession) -> None:
    with pytest.raises(InvalidArgumentError, match=r"spark\.jars\.packages"):
        delta.enable_delta(spark, "jvm")

    assert delta.backend(spark) == "delta-rs"


@pytest.mark.jvm
def test_jvm_backend_writes_idempotently(tmp_delta_path: str) -> None:
    active = SparkSession.getActiveSession()
    if active is None or delta.backend(active) != "jvm":
        pytest.skip("the delta-spark JARs are not on the classpath (Maven is unreachable here)")
    df = active.range(5)
    first = delta.write(df, tmp_delta_path, app_id="a", txn_version=1)
    replay = delta.write(df, tmp_delta_path, app_id="a", txn_version=1)
    assert first.committed
    assert not replay.committed
    assert delta.read(active, tmp_delta_path).count() == 5


def test_enable_delta_attaches_the_bridge_to_a_session_built_elsewhere(
    spark: SparkSession, tmp_delta_path: str
) -> None:
    delta.write(spark.range(3), tmp_delta_path)
    other = spark.newSession()  # a session with its own SQL conf, as if built elsewhere
    other.conf.unset("spark.sql.parquet.outputTimestampType")
    assert other.conf.get(delta.BACKEND_CONF, None) is None

    assert delta.enable_delta(other) == "delta-rs"
    assert delta.enable_delta(other) == "delta-rs"  # again: a no-op
    assert other.conf.get("spark.sql.parquet.outputTimestampType") == "TIMESTAMP_MICROS"
    assert delta.read(other, tmp_delta_path).count() == 3
