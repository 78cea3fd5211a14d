"""`replace_where` / `replaceWhere` pick partitions by value, as delta-spark's `replaceWhere` does.

A value is compared with the log's as a value of the column's type, never as text: a DECIMAL's
`1.5` is the partition logged `1.50`; and a zoneless TIMESTAMP is read in the session's time
zone (`spark.sql.session.timeZone`), as Spark casts `at = '2024-01-31 10:00:00'`. Compared any
other way, an overwrite is refused, or replaces another partition than the one meant.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from _sessions import time_zone
from pyspark.sql import SparkSession

from spark_flow import delta
from spark_flow.errors import InvalidArgumentError

# 10:00 in Tokyo, and 10:00 UTC (19:00 in Tokyo).
TOKYO_TEN = datetime(2024, 1, 31, 1, tzinfo=timezone.utc)
UTC_TEN = datetime(2024, 1, 31, 10, tzinfo=timezone.utc)


@pytest.fixture
def tokyo(spark: SparkSession) -> Iterator[SparkSession]:
    with time_zone(spark, "Asia/Tokyo") as session:
        yield session


def _ids(spark: SparkSession, path: str) -> list[int]:
    return sorted(r.id for r in delta.read(spark, path).collect())


@pytest.mark.parametrize("writer", ["delta.write", "format('delta')"])
def test_a_zoneless_timestamp_names_the_partition_in_the_session_zone(
    tokyo: SparkSession, tmp_delta_path: str, writer: str
) -> None:
    spark = tokyo
    events = spark.createDataFrame([(1, TOKYO_TEN), (2, UTC_TEN)], "id long, at timestamp")
    delta.write(events, tmp_delta_path, partition_by=["at"])  # also hands the source the zone
    again = spark.createDataFrame([(7, TOKYO_TEN)], "id long, at timestamp")

    if writer == "delta.write":
        delta.write(again, tmp_delta_path, mode="overwrite",
                    replace_where={"at": "2024-01-31 10:00:00"})  # fmt: skip
    else:
        again.write.format("delta").mode("overwrite").option(
            "replaceWhere", "at = '2024-01-31 10:00:00'"
        ).save(tmp_delta_path)

    assert _ids(spark, tmp_delta_path) == [2, 7]  # 10:00 UTC stays


# (DDL type, partition values written (ids 0 and 1), value replaced, the id replaced)
TYPED = [
    ("decimal(10,2)", [Decimal("1.50"), Decimal("2.00")], Decimal("1.5"), 0),
    ("decimal(10,2)", [Decimal("1.50"), Decimal("2.00")], "2", 1),
    ("date", [date(2024, 1, 31), date(2024, 2, 1)], date(2024, 2, 1), 1),
    ("boolean", [True, False], "TRUE", 0),
    ("int", [7, 8], "07", 0),
    ("timestamp", [UTC_TEN, TOKYO_TEN], "2024-01-31T19:00:00+09:00", 0),
]  # fmt: skip


@pytest.mark.parametrize("case", TYPED, ids=[f"{t[0]}-{t[2]!r}" for t in TYPED])
def test_a_partition_is_named_by_its_value_in_any_spelling(
    tokyo: SparkSession, tmp_delta_path: str, case: tuple[str, list[object], object, int]
) -> None:
    spark, (ddl, values, wanted, replaced) = tokyo, case
    rows = spark.createDataFrame(list(enumerate(values)), f"id long, p {ddl}")
    delta.write(rows, tmp_delta_path, partition_by=["p"])
    again = spark.createDataFrame([(9, values[replaced])], f"id long, p {ddl}")

    delta.write(again, tmp_delta_path, mode="overwrite", replace_where={"p": wanted})

    assert _ids(spark, tmp_delta_path) == sorted([1 - replaced, 9])


def test_a_value_that_is_no_value_of_the_column_type_is_refused_before_any_job(
    spark: SparkSession, tmp_delta_path: str
) -> None:
    rows = spark.createDataFrame([(1, Decimal("1.50"))], "id long, p decimal(10,2)")
    delta.write(rows, tmp_delta_path, partition_by=["p"])

    with pytest.raises(InvalidArgumentError, match="no value of that type") as caught:
        delta.write(rows, tmp_delta_path, mode="overwrite", replace_where={"p": "1.505"})

    assert caught.value.argument == "replace_where"
    assert delta.table_info(tmp_delta_path).version == 0  # type: ignore[union-attr]


def test_none_is_refused_not_taken_for_the_text_none(
    spark: SparkSession, tmp_delta_path: str
) -> None:
    rows = spark.createDataFrame([(1, "None"), (2, None)], "id long, p string")
    delta.write(rows, tmp_delta_path, partition_by=["p"])

    with pytest.raises(InvalidArgumentError, match="names no partition value"):
        delta.write(rows.where("id = 1"), tmp_delta_path, mode="overwrite",
                    replace_where={"p": None})  # fmt: skip

    assert _ids(spark, tmp_delta_path) == [1, 2]


@pytest.mark.parametrize(
    "overwrite",
    [{"replace_where": {"day": "b"}}, {"dynamic_partitions": True}],
    ids=["replace_where", "dynamic"],
)
def test_merge_schema_adds_the_new_columns_of_a_partial_overwrite(
    spark: SparkSession, tmp_delta_path: str, overwrite: dict[str, object]
) -> None:
    # delta-spark adds them as an append with mergeSchema does; the commit kept the old schema,
    # so the new column's values sat in the files and no reader saw them.
    old = spark.createDataFrame([(1, "a"), (2, "b")], "id long, day string")
    delta.write(old, tmp_delta_path, partition_by=["day"])
    new = spark.createDataFrame([(3, "b", "n")], "id long, day string, z string")

    delta.write(new, tmp_delta_path, mode="overwrite", merge_schema=True, **overwrite)  # type: ignore[arg-type]

    rows = delta.read(spark, tmp_delta_path).collect()
    assert sorted(tuple(r) for r in rows) == [(1, "a", None), (3, "b", "n")]
