"""TIMESTAMP partition values are instants, written in Delta's UTC form in any session zone.

Spark names a partition folder after the value in the session's time zone, without the zone;
taken as Delta's partition value, every reader (delta-rs, DuckDB, delta.read itself) would move
each row by the zone's offset.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pytest
from _duckdb_reader import duckdb_rows
from _sessions import time_zone
from deltalake import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_flow import delta
from spark_flow.delta import _read

# 19:00 and 08:30 in Tokyo (the session's zone in these tests), and a null partition.
INSTANTS = [datetime(2024, 1, 31, 10, tzinfo=timezone.utc), datetime(2023, 12, 31, 23, 30, 0, 5,
            tzinfo=timezone.utc), None]  # fmt: skip


@pytest.fixture
def tokyo(spark: SparkSession) -> Iterator[SparkSession]:
    with time_zone(spark, "Asia/Tokyo") as session:
        yield session


def _events(spark: SparkSession) -> DataFrame:
    rows = [(i, at) for i, at in enumerate(INSTANTS)]
    return spark.createDataFrame(rows, "id long, at timestamp")


def _logged_values(table: str) -> set[str | None]:
    values = set()
    for commit in sorted(Path(table, "_delta_log").glob("*.json")):
        for line in commit.read_text().splitlines():
            add = json.loads(line).get("add")
            if add is not None:
                values.add(add["partitionValues"]["at"])
    return values


def _read_back(spark: SparkSession, table: str) -> dict[int, datetime | None]:
    rows = delta.read(spark, table).collect()
    return {r.id: None if r.at is None else r.at.astimezone(timezone.utc) for r in rows}


def _expected() -> dict[int, datetime | None]:
    return dict(enumerate(INSTANTS))


@pytest.mark.parametrize("writer", ["delta.write", "format('delta')"])
def test_timestamp_partitions_keep_their_instant_in_every_reader(
    tokyo: SparkSession, tmp_delta_path: str, writer: str
) -> None:
    spark = tokyo
    if writer == "delta.write":  # Spark's Parquet writer
        delta.write(_events(spark), tmp_delta_path, partition_by=["at"])
    else:  # Arrow in Python workers, as on object stores and Spark Connect
        _events(spark).write.format("delta").mode("append").option(
            "spark_flow.partitionBy", '["at"]'
        ).save(tmp_delta_path)

    assert _logged_values(tmp_delta_path) == {
        "2024-01-31T10:00:00.000000Z", "2023-12-31T23:30:00.000005Z", None
    }  # fmt: skip
    assert _read_back(spark, tmp_delta_path) == _expected()
    with time_zone(spark, "UTC"):
        assert _read_back(spark, tmp_delta_path) == _expected()
    by_deltalake = pa.table(DeltaTable(tmp_delta_path).get_add_actions(flatten=True)).to_pydict()
    assert set(by_deltalake["partition.at"]) == set(INSTANTS)
    by_duckdb = {r["id"]: r["at"] for r in duckdb_rows(tmp_delta_path)}
    assert {i: None if at is None else at.astimezone(timezone.utc) for i, at in
            by_duckdb.items()} == _expected()  # fmt: skip


def test_compaction_keeps_timestamp_partition_values(
    tokyo: SparkSession, tmp_delta_path: str
) -> None:
    spark = tokyo
    for _ in range(2):
        delta.write(_events(spark), tmp_delta_path, partition_by=["at"])

    report = delta.optimize(spark, tmp_delta_path)

    assert report.committed
    assert _logged_values(tmp_delta_path) == {
        "2024-01-31T10:00:00.000000Z", "2023-12-31T23:30:00.000005Z", None
    }  # fmt: skip
    rows = delta.read(spark, tmp_delta_path).collect()
    assert sorted((r.id, r.at.astimezone(timezone.utc) if r.at else None) for r in rows) == sorted(
        [*_expected().items(), *_expected().items()], key=lambda kv: kv[0]
    )


def test_a_timestamp_partition_is_replaced_by_its_value_in_either_form(
    tokyo: SparkSession, tmp_delta_path: str
) -> None:
    spark = tokyo
    delta.write(_events(spark), tmp_delta_path, partition_by=["at"])
    again = spark.createDataFrame([(7, INSTANTS[0])], "id long, at timestamp")

    # zoneless in the session's zone (Tokyo), as Spark reads it; or with an offset
    for value in ("2024-01-31 19:00:00", "2024-01-31T10:00:00+00:00"):
        delta.write(again, tmp_delta_path, mode="overwrite", replace_where={"at": value})

    assert sorted(r.id for r in delta.read(spark, tmp_delta_path).collect()) == [1, 2, 7]


@pytest.mark.parametrize("partition_by", [None, ["at"]])
def test_a_filter_on_timestamps_keeps_every_matching_row_in_any_session_zone(
    tokyo: SparkSession, tmp_delta_path: str, partition_by: list[str] | None
) -> None:
    # Spark reads '2024-01-31 19:00:00' in Tokyo (10:00 UTC); delta-rs' skipping would read it
    # as 19:00 UTC and skip the file holding the row.
    spark = tokyo
    events = _events(spark).withColumn("copy", F.col("at")).repartition(3, "id")
    delta.write(events, tmp_delta_path, partition_by=partition_by)

    for column in ("at", "copy"):
        condition = f"{column} >= '2024-01-31 19:00:00'"
        assert [r.id for r in delta.read(spark, tmp_delta_path, filter=condition).collect()] == [0]
    in_utc = _read.plan(tmp_delta_path, predicate="copy >= '2024-01-31 10:00:00'", time_zone="UTC")
    assert (len(in_utc.files), in_utc.files_in_table) == (1, 3)  # in UTC both read it alike


def test_dynamic_partition_overwrite_finds_a_timestamp_partition_by_its_instant(
    tokyo: SparkSession, tmp_delta_path: str
) -> None:
    spark = tokyo
    delta.write(_events(spark), tmp_delta_path, partition_by=["at"])
    again = spark.createDataFrame([(7, INSTANTS[0]), (8, None)], "id long, at timestamp")

    delta.write(again, tmp_delta_path, mode="overwrite", dynamic_partitions=True)

    assert sorted(r.id for r in delta.read(spark, tmp_delta_path).collect()) == [1, 7, 8]


def test_optimize_of_one_timestamp_partition_finds_it_in_any_spelling(
    tokyo: SparkSession, tmp_delta_path: str
) -> None:
    spark = tokyo
    # Zoneless in the session's zone (19:00 in Tokyo is the 10:00 UTC the log holds), as
    # Spark reads such text; then as the instant. The second round also takes the first's file.
    for value, small_files in (("2024-01-31 19:00:00", 2), (INSTANTS[0], 3)):
        for _ in range(2):
            delta.write(_events(spark), tmp_delta_path, partition_by=["at"])

        report = delta.optimize(spark, tmp_delta_path, partition={"at": value}, min_files=2)

        assert (report.committed, report.files_removed, report.partitions) == (
            True, small_files, 1
        )  # fmt: skip
    assert delta.read(spark, tmp_delta_path).count() == 12
