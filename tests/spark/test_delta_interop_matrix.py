"""Writes a user makes, read back by two independent readers and checked against the protocol.

Every table is written by `delta.write` (Spark's Parquet writer) or `format("delta")` (Arrow in
Python workers, as on object stores and in streams), then read in full by deltalake and DuckDB's
`delta_scan` (`tests/_duckdb_reader.py`), which must see what `delta.read` sees, and its log is
held to the protocol.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from _duckdb_reader import duckdb_rows
from deltalake import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from spark_flow import delta

UTC = dt.timezone.utc
ZERO = "id long, d double"
PARTITIONS = (
    "s string, i int, l long, day date, ts timestamp, tn timestamp_ntz, b boolean, "
    "dec decimal(10,2), x double"
)
# Partition Value Serialization (PROTOCOL.md); an instant may take the ISO 8601 UTC form.
_STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?"
SPELLING = {
    "i": r"-?\d+", "l": r"-?\d+", "day": r"\d{4}-\d\d-\d\d", "b": "true|false",
    "ts": rf"{_STAMP}|\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{6}}Z", "tn": _STAMP,
    "dec": r"-?\d+\.\d{2}", "x": r"-?\d+\.\d+(E-?\d+)?|NaN|-?Infinity",
}  # fmt: skip


def _write(df: DataFrame, path: str, how: str, partition_by: list[str] | None = None) -> None:
    if how == "delta.write":
        delta.write(df, path, partition_by=partition_by)
    else:  # a Python data source gets no partitionBy: the table is made partitioned first
        if partition_by:
            delta.write(df.limit(0), path, partition_by=partition_by)
        df.write.format("delta").mode("append").save(path)


def _comparable(value: Any) -> Any:
    """NaN equal to itself, instants in UTC: how the three readers' rows are compared."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    return value


def _rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = [{k: _comparable(v) for k, v in row.items()} for row in rows]
    return sorted(found, key=lambda row: row["id"])


def readers_agree(spark: SparkSession, path: str) -> list[dict[str, Any]]:
    """The table's rows as `delta.read` reads them, asserted equal to deltalake's and DuckDB's."""
    ours = _rows(delta.read(spark, path).toArrow().to_pylist())
    assert _rows(DeltaTable(path).to_pyarrow_table().to_pylist()) == ours
    assert _rows(duckdb_rows(path)) == ours
    return ours


def adds(path: str) -> list[dict[str, Any]]:
    return [
        json.loads(line)["add"]
        for commit in sorted(Path(path, "_delta_log").glob("*.json"))
        for line in commit.read_text().splitlines()
        if '"add"' in line
    ]


@pytest.mark.parametrize("how", ["delta.write", "format"])
def test_timestamps_at_the_end_of_the_calendar_are_written_and_read_alike(
    spark: SparkSession, tmp_path: Path, how: str
) -> None:
    # A max bound is rounded up to the next millisecond, past year 9999 here, which no
    # reader's timestamp holds: the column gets no bounds, the write still commits.
    last = dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
    df = spark.createDataFrame(
        [(1, last.replace(tzinfo=UTC), last), (2, None, dt.datetime(2024, 1, 1))],
        "id long, ts timestamp, tn timestamp_ntz",
    ).coalesce(1)
    path = str(tmp_path / "t")

    _write(df, path, how)

    assert [row["tn"] for row in readers_agree(spark, path)] == [last, dt.datetime(2024, 1, 1)]
    [stats] = [json.loads(add["stats"]) for add in adds(path)]
    assert stats["numRecords"] == 2
    assert {"ts", "tn"}.isdisjoint(stats["maxValues"])
    assert stats["maxValues"]["id"] == 2


def test_floating_partition_values_are_spelled_as_delta_spark_spells_them(
    spark: SparkSession, tmp_path: Path
) -> None:
    # Partition values are "the string representation of the number" (PROTOCOL.md, Partition
    # Value Serialization) as Java writes it: delta-spark's folders and Delta Kernel's
    # Double.parseDouble know `Infinity` and `NaN`, not Python's `inf` and `nan`.
    # Rows are split by value, not by `==`: NaN equals no value, -0.0 equals 0.0. (Spark's
    # writer, behind delta.write, spells them so: test_partition_columns_of_every_type...)
    doubles = [1.5, -0.0, 0.0, 1e20, 1e-7, 123456.75, math.nan, math.inf, -math.inf, None]
    rows = [(n, d, 3.4e38 if n == 0 else 1.25) for n, d in enumerate(doubles)]
    path = str(tmp_path / "t")
    _write(spark.createDataFrame(rows, "id long, d double, f float"), path, "format", ["d", "f"])

    read = [(r["id"], r["d"], math.copysign(1, r["d"]) if r["d"] == 0 else None) for r in
            readers_agree(spark, path)]  # fmt: skip
    assert read == [(n, _comparable(d), -1.0 if n == 1 else 1.0 if n == 2 else None)
                    for n, d, _ in rows]  # fmt: skip
    spelled = {(a["partitionValues"]["d"], a["partitionValues"]["f"]) for a in adds(path)}
    assert {d for d, _ in spelled} == {
        "1.5", "-0.0", "0.0", "1.0E20", "1.0E-7", "123456.75", "NaN", "Infinity", "-Infinity", None
    }  # fmt: skip
    assert ("1.5", "3.4E38") in spelled


def test_a_nan_partition_is_replaced_like_any_other(spark: SparkSession, tmp_path: Path) -> None:
    # Spark SQL (and so delta-spark's replaceWhere and dynamic overwrite) takes NaN = NaN.
    path = str(tmp_path / "t")
    schema = "id long, d double"
    _write(spark.createDataFrame([(1, math.nan), (2, 2.0)], schema), path, "format", ["d"])

    spark.createDataFrame([(3, math.nan)], schema).write.format("delta").mode("overwrite").option(
        "partitionOverwriteMode", "dynamic"
    ).save(path)
    assert [r["id"] for r in readers_agree(spark, path)] == [2, 3]
    nan = spark.createDataFrame([(4, math.nan)], schema)
    delta.write(nan, path, mode="overwrite", replace_where={"d": math.nan})
    assert [r["id"] for r in readers_agree(spark, path)] == [2, 4]
    # A dynamic overwrite replaces the partitions its rows land in: -0.0's is not 0.0's.
    zeros = spark.createDataFrame([(5, -0.0), (6, 0.0)], schema)
    delta.write(zeros, path, mode="append", partition_by=["d"])
    zero = spark.createDataFrame([(7, 0.0)], schema)
    delta.write(zero, path, mode="overwrite", partition_by=["d"], dynamic_partitions=True)
    assert [r["id"] for r in readers_agree(spark, path)] == [2, 4, 5, 7]


@pytest.mark.parametrize("how", ["delta.write", "format"])
def test_partition_columns_of_every_type_in_another_zone_read_alike_everywhere(
    spark: SparkSession, tmp_path: Path, how: str
) -> None:
    rows = [
        (0, "a/b=c%20 d", 1, 2**40, dt.date(2024, 1, 1),
         dt.datetime(2024, 3, 10, 7, 30, 0, 123456, tzinfo=UTC), dt.datetime(2024, 3, 10, 2, 30),
         True, Decimal("1.50"), 0.25),
        (1, "ünï", -5, -1, dt.date(1970, 1, 1), dt.datetime(1970, 1, 1, tzinfo=UTC),
         dt.datetime(1999, 12, 31, 23, 59, 59, 999999), False, Decimal("0.00"), -1e-7),
        (2, "", None, None, None, None, None, None, None, None),
        (3, None, 0, 0, dt.date(2024, 2, 29), dt.datetime(2024, 11, 3, 6, 0, tzinfo=UTC),
         dt.datetime(2024, 11, 3, 1, 0), None, Decimal("12345678.90"), 1e20),
    ]  # fmt: skip
    columns = [c.split()[0] for c in PARTITIONS.split(", ")]
    df = spark.createDataFrame(rows, f"id long, {PARTITIONS}")
    path = str(tmp_path / "t")
    zone = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        _write(df, path, how, partition_by=columns)
        read = readers_agree(spark, path)
    finally:
        spark.conf.set("spark.sql.session.timeZone", zone)

    expected = [dict(zip(["id", *columns], row, strict=True)) for row in rows]
    expected[2]["s"] = None  # an empty string is a null partition value
    assert read == _rows(expected)
    for add in adds(path):
        for column, spelling in SPELLING.items():
            value = add["partitionValues"][column]
            assert value is None or re.fullmatch(spelling, value), (column, value)


def test_optimize_keeps_each_floating_partition_as_it_is(
    spark: SparkSession, tmp_path: Path
) -> None:
    # Delta's partitions -0.0 and 0.0 are two (two folders, two logged values), though
    # -0.0 == 0.0: packed together, one's rows would be logged under the other's sign.
    path = str(tmp_path / "t")
    df = spark.createDataFrame([(1, -0.0), (2, 0.0), (3, math.nan)], "id long, d double")
    for _ in range(2):
        delta.write(df, path, partition_by=["d"])

    report = delta.optimize(spark, path, min_files=2)

    assert (report.files_removed, report.files_added, report.partitions) == (6, 3, 3)
    signs = [(r["id"], math.copysign(1, r["d"]) if r["id"] < 3 else r["d"]) for r in
             readers_agree(spark, path)]  # fmt: skip
    assert signs == [(1, -1.0), (1, -1.0), (2, 1.0), (2, 1.0), (3, "NaN"), (3, "NaN")]


@pytest.fixture(scope="module")
def negative_zero(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("zero") / "t")
    delta.write(spark.createDataFrame([(1, -0.0), (2, 1.0)], ZERO), path, partition_by=["d"])
    return path


@pytest.mark.parametrize(
    ("predicate", "ids"),
    [("d = 0", [1]), ("d >= 0.0", [1, 2]), ("d IN (0, 1)", [1, 2]), ("d = '0'", [1])],
)
def test_a_filter_on_zero_keeps_the_files_of_negative_zero(
    spark: SparkSession, negative_zero: str, predicate: str, ids: list[int]
) -> None:
    # Spark takes -0.0 = 0.0; DataFusion's pruning orders -0.0 below 0.0 and dropped the
    # files of the partition -0.0 for these predicates.
    found = delta.read(spark, negative_zero, filter=predicate)

    assert sorted(r.id for r in found.collect()) == ids
