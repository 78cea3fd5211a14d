"""Routed writes: one Spark job, several Delta tables, one commit each, rows counted per route."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession

from spark_flow import delta
from spark_flow.delta import RoutedTable
from spark_flow.errors import InvalidArgumentError
from spark_flow.testing import count_spark_jobs


@pytest.fixture
def rows(spark: SparkSession) -> DataFrame:
    data = [(1, "a", None), (2, "b", "bad"), (3, "c", None), (4, "d", "worse"), (5, "e", "odd")]
    return spark.createDataFrame(data, "id INT, name STRING, route STRING")


def tables(root: Path) -> list[RoutedTable]:
    return [
        RoutedTable(str(root / "rejected"), ("id", "route"), ("bad", "worse")),
        RoutedTable(str(root / "kept"), ("id", "name"), (None,)),
    ]


def test_one_job_writes_each_table_its_rows_and_counts_every_route(
    rows: DataFrame, tmp_path: Path
) -> None:
    with count_spark_jobs(rows.sparkSession) as jobs:
        done = delta.write_routed(rows, "route", tables(tmp_path), app_id="r", txn_version=3)

    assert jobs.count == 1
    # "odd" goes to no table: counted, not written
    assert done.rows == {None: 2, "bad": 1, "worse": 1, "odd": 1}
    assert [r.rows_written for r in done.results] == [2, 2]
    spark = rows.sparkSession
    assert sorted(delta.read(spark, str(tmp_path / "kept")).collect()) == [(1, "a"), (3, "c")]
    rejected = delta.read(spark, str(tmp_path / "rejected"))
    assert rejected.columns == ["id", "route"]
    assert sorted(rejected.collect()) == [(2, "bad"), (4, "worse")]


# The tables are committed at once: a crash can leave any one of them committed.
@pytest.mark.parametrize("landed", [0, 1], ids=["first-landed", "second-landed"])
def test_a_replay_writes_only_the_tables_missing_the_transaction(
    rows: DataFrame, tmp_path: Path, landed: int
) -> None:
    routed = tables(tmp_path)
    delta.write_routed(rows, "route", [routed[landed]], app_id="r", txn_version=3)  # crashed

    replay = delta.write_routed(rows, "route", routed, app_id="r", txn_version=3)
    again = delta.write_routed(rows, "route", routed, app_id="r", txn_version=3)

    assert [r.committed for r in replay.results] == [i != landed for i in range(2)]
    assert sum(replay.rows.values()) == 5
    assert [r.committed for r in again.results] == [False, False]
    assert again.rows == {}
    spark = rows.sparkSession
    assert delta.read(spark, routed[0].path).count() == 2
    assert delta.read(spark, routed[1].path).count() == 2


@pytest.mark.parametrize(
    ("routed", "fragment"),
    [
        ([RoutedTable("t", ("id", "missing"), (None,))], "missing.*are not in the DataFrame"),
        (
            [RoutedTable("a", ("id",), ("bad",)), RoutedTable("b", ("id",), ("bad", None))],
            "a route value goes to one table",
        ),
        (
            [RoutedTable("a", ("id",), ("bad",)), RoutedTable("a/", ("id",), (None,))],
            "each table at its own path",
        ),
    ],
)
def test_bad_tables_fail_before_any_job(
    rows: DataFrame, routed: list[RoutedTable], fragment: str
) -> None:
    with (
        count_spark_jobs(rows.sparkSession) as jobs,
        pytest.raises(InvalidArgumentError, match=fragment),
    ):
        delta.write_routed(rows, "route", routed)
    assert jobs.count == 0


def test_a_table_without_columns_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="the columns it holds"):
        RoutedTable("t", (), (None,))
