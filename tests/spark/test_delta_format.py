"""`format("delta")` keeps working in sessions without the connector (the Python data source)."""

from __future__ import annotations

from pathlib import Path

import _delta_logs as logs
import pandas as pd
import pytest
from deltalake import write_deltalake
from pyspark.errors import PySparkException
from pyspark.sql import SparkSession

from spark_flow import delta
from spark_flow.errors import InvalidArgumentError, UnsupportedDeltaFeatureError
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


def test_both_readers_refuse_a_table_whose_files_alone_would_read_wrong(
    spark: SparkSession, tmp_delta_path: str
) -> None:
    # Shredded variants spread each value over several Parquet columns: scanning the files as
    # they are reads wrong values. The reader does not handle the feature, so it refuses it.
    write_deltalake(tmp_delta_path, pd.DataFrame({"id": [1, 2]}))
    feature = ["variantShredding-preview"]
    logs.set_protocol(
        tmp_delta_path,
        {"minReaderVersion": 3, "minWriterVersion": 7, "readerFeatures": feature,
         "writerFeatures": feature},
    )  # fmt: skip

    info = delta.table_info(tmp_delta_path)
    assert info is not None
    assert "variantShredding-preview" in info.reader_features
    with pytest.raises(UnsupportedDeltaFeatureError, match="variantShredding-preview"):
        delta.read(spark, tmp_delta_path)
    with pytest.raises(PySparkException, match="variantShredding-preview"):
        spark.read.format("delta").load(tmp_delta_path).collect()


def test_internal_partition_options_write_hive_folders_and_replace_partitions(
    spark: SparkSession, tmp_delta_path: str
) -> None:
    # What delta.write sends through format("delta") where it cannot write files itself.
    rows = [(1, "fr"), (2, None), (3, "a/b"), (4, "fr")]
    df = spark.createDataFrame(rows, "id long, country string")
    df.write.format("delta").mode("append").option("spark_flow.partitionBy", '["country"]').save(
        tmp_delta_path
    )

    spark.createDataFrame([(9, "fr")], "id long, country string").write.format("delta").mode(
        "overwrite"
    ).option("spark_flow.replaceWhere", '{"country": "fr"}').save(tmp_delta_path)

    info = delta.table_info(tmp_delta_path)
    assert info is not None
    assert (info.version, info.partition_columns) == (1, ("country",))
    folders = {p.name for p in Path(tmp_delta_path).iterdir() if not p.name.startswith("_")}
    assert folders == {"country=fr", "country=__HIVE_DEFAULT_PARTITION__", "country=a%2Fb"}
    expected = spark.createDataFrame([(2, None), (3, "a/b"), (9, "fr")], "id long, country string")
    assert_df_equal(delta.read(spark, tmp_delta_path), expected)


def test_a_malformed_internal_option_names_itself(spark: SparkSession, tmp_delta_path: str) -> None:
    with pytest.raises(PySparkException, match=r"spark_flow\.partitionBy: expected a JSON list"):
        spark.range(1).write.format("delta").mode("append").option(
            "spark_flow.partitionBy", "country"
        ).save(tmp_delta_path)
