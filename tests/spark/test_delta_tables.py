"""Schemas, partitions, types, time travel and interoperability of the Delta tables we write."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable, QueryBuilder, write_deltalake
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_flow import delta
from spark_flow.errors import (
    InvalidArgumentError,
    NotADeltaTableError,
    SchemaMismatchError,
    UnknownValueError,
)
from spark_flow.testing import assert_df_equal

ALL_TYPES = (
    "s string, l long, i int, d double, dec decimal(10,2), b boolean, day date, ts timestamp, "
    "arr array<int>, st struct<x: int, y: string>, m map<string, long>"
)
ROWS = [
    (
        "héllo",
        2**40,
        -7,
        1.5,
        Decimal("12345678.90"),
        True,
        dt.date(2024, 2, 29),
        dt.datetime(2024, 3, 10, 1, 59, 59, 123456, tzinfo=dt.timezone.utc),
        [1, None, 3],
        (1, "y"),
        {"k": 1, "n": None},
    ),
    (None,) * 11,
]


def sql_rows(table: str, query: str) -> list[dict[str, object]]:
    """Rows of a query run by delta-rs itself (DataFusion), not by Spark."""
    result = QueryBuilder().register("t", DeltaTable(table)).execute(query)
    return pa.table(result.read_all()).to_pylist()


def test_every_type_round_trips_with_nulls_and_utc_microseconds(
    spark: SparkSession, tmp_delta_path: str
) -> None:
    df = spark.createDataFrame(ROWS, ALL_TYPES)

    delta.write(df, tmp_delta_path)

    # Maps cannot be sorted: order the rows by a plain column instead of chispa's row sort.
    assert_df_equal(
        delta.read(spark, tmp_delta_path).orderBy("l"), df.orderBy("l"), ignore_row_order=False
    )
    stored = sql_rows(tmp_delta_path, "SELECT ts FROM t WHERE ts IS NOT NULL")
    assert stored == [{"ts": dt.datetime(2024, 3, 10, 1, 59, 59, 123456, tzinfo=dt.timezone.utc)}]


def test_appending_other_types_names_the_columns_and_types(
    spark: SparkSession, tmp_delta_path: str
) -> None:
    delta.write(spark.createDataFrame([(1, "a")], "id long, name string"), tmp_delta_path)

    with pytest.raises(SchemaMismatchError) as caught:
        delta.write(spark.createDataFrame([("x", "a")], "id string, name string"), tmp_delta_path)

    assert caught.value.conflicts == (("id", "bigint", "string"),)
    assert "the table has bigint, the data has string" in str(caught.value)
    assert DeltaTable(tmp_delta_path).version() == 0


def test_new_columns_need_merge_schema_which_evolves_the_table(
    spark: SparkSession, tmp_delta_path: str
) -> None:
    delta.write(spark.createDataFrame([(1,)], "id long"), tmp_delta_path)
    wider = spark.createDataFrame([(2, "b")], "id long, name string")

    with pytest.raises(SchemaMismatchError) as caught:
        delta.write(wider, tmp_delta_path)
    assert caught.value.conflicts == (("name", None, "string"),)

    assert delta.write(wider, tmp_delta_path, merge_schema=True).committed
    expected = spark.createDataFrame([(1, None), (2, "b")], "id long, name string")
    assert_df_equal(delta.read(spark, tmp_delta_path), expected)


def test_a_missing_column_reads_as_null(spark: SparkSession, tmp_delta_path: str) -> None:
    delta.write(spark.createDataFrame([(1, "a")], "id long, name string"), tmp_delta_path)

    delta.write(spark.createDataFrame([(2,)], "id long"), tmp_delta_path)

    expected = spark.createDataFrame([(1, "a"), (2, None)], "id long, name string")
    assert_df_equal(delta.read(spark, tmp_delta_path), expected)


def test_overwrite_replaces_the_data_and_older_versions_stay_readable(
    spark: SparkSession, tmp_delta_path: str
) -> None:
    delta.write(spark.range(3), tmp_delta_path)
    result = delta.write(spark.range(100, 102), tmp_delta_path, mode="overwrite")

    assert result.table_version == 1
    assert sorted(r.id for r in delta.read(spark, tmp_delta_path).collect()) == [100, 101]
    assert sorted(r.id for r in delta.read(spark, tmp_delta_path, version=0).collect()) == [0, 1, 2]


def test_partition_by_writes_hive_directories_other_readers_understand(
    spark: SparkSession, tmp_delta_path: str
) -> None:
    df = spark.createDataFrame(
        [(1, dt.date(2024, 1, 1), 3), (2, dt.date(2024, 1, 2), 4), (3, None, 3)],
        "id long, day date, hour int",
    )

    delta.write(df, tmp_delta_path, partition_by=["day", "hour"])

    root = Path(tmp_delta_path)
    assert (root / "day=2024-01-01" / "hour=3").is_dir()
    assert (root / "day=__HIVE_DEFAULT_PARTITION__" / "hour=3").is_dir()
    assert DeltaTable(tmp_delta_path).metadata().partition_columns == ["day", "hour"]
    assert sql_rows(tmp_delta_path, "SELECT id, hour FROM t WHERE day = '2024-01-02'") == [
        {"id": 2, "hour": 4}
    ]
    assert_df_equal(delta.read(spark, tmp_delta_path), df)


def test_partition_values_with_special_characters_round_trip(
    spark: SparkSession, tmp_delta_path: str
) -> None:
    df = spark.createDataFrame([(1, "a b:c/d%e=f"), (2, None)], "id long, key string")

    delta.write(df, tmp_delta_path, partition_by=["key"])

    assert_df_equal(delta.read(spark, tmp_delta_path), df)
    assert sql_rows(tmp_delta_path, "SELECT key FROM t WHERE id = 1") == [{"key": "a b:c/d%e=f"}]


def test_a_table_keeps_its_partitioning(spark: SparkSession, tmp_delta_path: str) -> None:
    df = spark.createDataFrame([(1, "x")], "id long, key string")
    delta.write(df, tmp_delta_path, partition_by=["key"])

    delta.write(df, tmp_delta_path)  # no partition_by: the table's is used
    with pytest.raises(InvalidArgumentError, match="partitioned by \\['key'\\], not \\['id'\\]"):
        delta.write(df, tmp_delta_path, partition_by=["id"])

    assert {p.name for p in Path(tmp_delta_path).iterdir()} == {"_delta_log", "key=x"}


def test_tables_written_by_deltalake_are_read_with_their_partitions(
    spark: SparkSession, tmp_delta_path: str
) -> None:
    frame = pd.DataFrame(
        {"id": [1, 2, 3], "country": ["fr", "pl", None], "score": [0.5, 1.0, None]}
    )
    write_deltalake(tmp_delta_path, frame, partition_by=["country"])
    write_deltalake(tmp_delta_path, frame.head(1), mode="append")

    expected = spark.createDataFrame(
        [(1, "fr", 0.5), (2, "pl", 1.0), (3, None, None), (1, "fr", 0.5)],
        "id long, country string, score double",
    )
    assert_df_equal(delta.read(spark, tmp_delta_path), expected)
    assert_df_equal(spark.read.format("delta").load(tmp_delta_path), expected)


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"txn_version": 1}, InvalidArgumentError, "txn_version was given without app_id"),
        ({"app_id": "a", "txn_version": -1}, InvalidArgumentError, "expected an integer >= 0"),
        ({"mode": "upsert"}, UnknownValueError, "use one of 'append', 'overwrite'"),
    ],
)
def test_bad_write_arguments_fail_before_any_spark_job(
    spark: SparkSession, tmp_delta_path: str, kwargs: dict, error: type, fragment: str
) -> None:
    with pytest.raises(error, match=fragment):
        delta.write(spark.range(1), tmp_delta_path, **kwargs)

    assert not Path(tmp_delta_path).exists()


def test_reading_something_that_is_not_a_table_says_so(spark: SparkSession, tmp_path: Path) -> None:
    (tmp_path / "plain.txt").write_text("no log here")

    with pytest.raises(NotADeltaTableError, match="has no _delta_log/"):
        delta.read(spark, str(tmp_path))
    with pytest.raises(NotADeltaTableError):
        delta.transaction_version(str(tmp_path / "missing"), "app")


def test_reading_a_version_the_table_does_not_have_names_the_range(
    spark: SparkSession, tmp_delta_path: str
) -> None:
    delta.write(spark.range(1), tmp_delta_path)

    with pytest.raises(InvalidArgumentError, match="has versions 0 to 0, not 4"):
        delta.read(spark, tmp_delta_path, version=4)
    with pytest.raises(InvalidArgumentError, match="expected an integer >= 0"):
        delta.read(spark, tmp_delta_path, version=-1)


def test_a_python_udf_over_a_table_read_completes(spark: SparkSession, tmp_delta_path: str) -> None:
    # Guards the profile's pythonUDF.arrow workaround: without it this job hangs on Spark 4.2.
    from pyspark.sql import functions as F

    delta.write(spark.range(0, 10, numPartitions=2), tmp_delta_path)

    @F.udf("long")
    def plus_one(value):
        return value + 1

    rows = delta.read(spark, tmp_delta_path).select(plus_one("id").alias("id")).collect()

    assert sorted(r.id for r in rows) == list(range(1, 11))


def test_replace_where_overwrites_only_the_named_partitions(
    spark: SparkSession, tmp_delta_path: str
) -> None:
    def day(value: str, rows: int) -> DataFrame:
        return spark.range(rows).select(F.to_date(F.lit(value)).alias("date"), F.col("id"))

    delta.write(day("2024-01-01", 3).unionByName(day("2024-01-02", 4)), tmp_delta_path,
                partition_by=["date"])  # fmt: skip
    replaced = delta.write(
        day("2024-01-01", 5), tmp_delta_path, mode="overwrite",
        replace_where={"date": dt.date(2024, 1, 1)},
    )  # fmt: skip

    counts = {
        str(r["date"]): r["count"]
        for r in delta.read(spark, tmp_delta_path).groupBy("date").count().collect()
    }
    assert replaced.committed
    assert counts == {"2024-01-01": 5, "2024-01-02": 4}
    assert delta.read(spark, tmp_delta_path).schema["date"].dataType.simpleString() == "date"


def test_replace_where_refuses_rows_outside_and_non_partition_columns(
    spark: SparkSession, tmp_delta_path: str
) -> None:
    rows = spark.createDataFrame([("a", 1), ("b", 2)], "key string, n long")
    delta.write(rows, tmp_delta_path, partition_by=["key"])

    with pytest.raises(InvalidArgumentError, match="the data has rows in"):
        delta.write(rows, tmp_delta_path, mode="overwrite", replace_where={"key": "a"})
    with pytest.raises(InvalidArgumentError, match="are not partition columns"):
        delta.write(rows, tmp_delta_path, mode="overwrite", replace_where={"n": 1})
    with pytest.raises(InvalidArgumentError, match="only mode='overwrite'"):
        delta.write(rows, tmp_delta_path, replace_where={"key": "a"})

    assert delta.read(spark, tmp_delta_path).count() == 2
    assert sorted(p.name for p in Path(tmp_delta_path).iterdir() if p.name.startswith("key=")) == [
        "key=a",
        "key=b",
    ]
