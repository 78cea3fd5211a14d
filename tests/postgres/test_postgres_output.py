"""output_writer("postgres") against a real server: batches once, tables created and checked."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from _pg import execute, query, rows, staging_tables
from pyspark.sql import DataFrame, SparkSession

from spark_flow.errors import InvalidArgumentError, SchemaMismatchError
from spark_flow.fan_out import Branch, ParallelSplit
from spark_flow.outputs import output_writer
from spark_flow.postgres import BATCHES_TABLE, PostgresOutput
from spark_flow.postgres.local import LocalPostgres
from spark_flow.testing import count_spark_jobs

pytestmark = pytest.mark.postgres


def devices(spark: SparkSession, n: int = 50) -> DataFrame:
    return spark.range(n, numPartitions=3).selectExpr(
        "id", "concat('device-', id) AS name", "cast(id % 5 AS int) AS kind"
    )


def batches(server: LocalPostgres, table: str) -> list[tuple[object, ...]]:
    """The batch table's records of `table` (none when no test created the batch table yet)."""
    if query(server, f"SELECT to_regclass('{BATCHES_TABLE}')") == [(None,)]:
        return []
    return query(server, f"SELECT app_id, txn_version, rows_written FROM {BATCHES_TABLE} "
                 "WHERE target = %s ORDER BY 1, 2", table)  # fmt: skip


def test_a_batch_replayed_three_times_is_in_the_table_once(
    spark: SparkSession, postgres: LocalPostgres, table: str
) -> None:
    writer = output_writer("postgres")
    first = writer.write(devices(spark), table, app_id="loader", txn_version=7)
    with count_spark_jobs(spark) as jobs:
        replays = [
            output_writer("postgres").write(devices(spark), table, app_id="loader", txn_version=7)
            for _ in range(3)
        ]

    assert (first.committed, first.rows_written, first.table_version) == (True, 50, None)
    assert [r.committed for r in replays] == [False, False, False]
    assert all("batch 7 of 'loader' was already committed" in (r.skipped_reason or "")
               for r in replays)  # fmt: skip
    assert jobs.count == 0  # a replay is decided from the batch table alone
    assert rows(postgres, table, "count(*), count(DISTINCT id)") == {(50, 50): 1}
    assert batches(postgres, table) == [("loader", 7, 50)]
    assert staging_tables(postgres) == []


def test_other_batches_and_other_app_ids_commit_in_any_order(
    spark: SparkSession, postgres: LocalPostgres, table: str
) -> None:
    writer = output_writer("postgres")
    for app_id, txn_version in [("a", 3), ("a", 1), ("b", 3), ("a", 2)]:
        assert writer.write(devices(spark, 10), table, app_id=app_id, txn_version=txn_version)

    assert rows(postgres, table, "count(*)") == {(40,): 1}
    assert writer.written(table, app_id="a", txn_version=1) is not None  # type: ignore[attr-defined]
    assert writer.written(table, app_id="a", txn_version=4) is None  # type: ignore[attr-defined]


def test_a_table_with_other_columns_is_refused_before_any_row_is_copied(
    spark: SparkSession, postgres: LocalPostgres, table: str
) -> None:
    execute(postgres, f"CREATE TABLE {table} (id bigint, name integer, owner text NOT NULL)")

    with count_spark_jobs(spark) as jobs, pytest.raises(SchemaMismatchError) as caught:
        output_writer("postgres").write(devices(spark), table, app_id="loader", txn_version=1)

    assert set(caught.value.conflicts) == {
        ("name", "integer", "text"),
        ("kind", None, "integer"),
        ("owner", "text", "no such column"),
    }
    assert "or write to a new table" in str(caught.value)
    assert jobs.count == 0
    assert staging_tables(postgres) == []
    assert batches(postgres, table) == []


def test_overwrite_replaces_the_table_in_the_publishing_transaction(
    spark: SparkSession, postgres: LocalPostgres, table: str
) -> None:
    writer = PostgresOutput(mode="overwrite")
    writer.write(devices(spark, 30), table, app_id="expose", txn_version=1)
    second = writer.write(devices(spark, 5), table, app_id="expose", txn_version=2)
    replay = writer.write(devices(spark, 7), table, app_id="expose", txn_version=1)

    assert second.rows_written == 5
    assert not replay.committed
    assert rows(postgres, table, "count(*)") == {(5,): 1}


def test_overwrite_by_partition_value_replaces_only_the_batchs_values(
    spark: SparkSession, postgres: LocalPostgres, table: str
) -> None:
    day = "SELECT id, CASE WHEN id < 2 THEN date'2024-01-0{d}' END AS day, {v} AS v FROM range(4)"
    writer = PostgresOutput(mode="overwrite", partition_by=["day"])
    writer.write(spark.sql(day.format(d=1, v=1)), table, app_id="cube", txn_version=1)
    writer.write(spark.sql(day.format(d=2, v=1)), table, app_id="cube", txn_version=2)
    writer.write(spark.sql(day.format(d=2, v=2)), table, app_id="cube", txn_version=3)

    by_day = query(postgres, f"SELECT day::text, v, count(*) FROM {table} GROUP BY 1, 2 ORDER BY 1")
    # 2024-01-01 kept from batch 1; 2024-01-02 and the null partition replaced by batch 3.
    assert by_day == [("2024-01-01", 1, 2), ("2024-01-02", 2, 2), (None, 2, 2)]


def test_without_a_txn_version_each_write_appends_again(
    spark: SparkSession, postgres: LocalPostgres, table: str
) -> None:
    writer = output_writer("postgres")
    for _ in range(2):
        assert writer.write(devices(spark, 4), table, app_id="adhoc", txn_version=None).committed

    assert rows(postgres, table, "count(*)") == {(8,): 1}
    assert batches(postgres, table) == []


def test_an_empty_batch_creates_the_table_and_records_the_batch(
    spark: SparkSession, postgres: LocalPostgres, table: str
) -> None:
    result = output_writer("postgres").write(
        devices(spark).where("id < 0"), f"public.{table}", app_id="loader", txn_version=1
    )

    assert (result.committed, result.rows_written) == (True, 0)
    assert rows(postgres, table, "count(*)") == {(0,): 1}


def test_a_staging_table_left_by_a_dead_writer_is_dropped_by_the_next_write(
    spark: SparkSession, postgres: LocalPostgres, table: str
) -> None:
    execute(postgres, "CREATE UNLOGGED TABLE spark_flow_stage_deadbeef (id bigint)")

    output_writer("postgres").write(devices(spark, 3), table, app_id="loader", txn_version=1)

    assert staging_tables(postgres) == []


@pytest.mark.parametrize(
    ("path", "fragment"),
    [("Devices", "lower-case"), ("a.b.c", "'table' or 'schema.table'"), ("x" * 64, "63")],
)
def test_table_names_must_be_plain_lower_case_sql_names(
    spark: SparkSession, postgres: LocalPostgres, path: str, fragment: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=fragment):
        output_writer("postgres").write(devices(spark), path, app_id="loader", txn_version=1)


def test_options_are_checked_when_the_writer_is_defined() -> None:
    with pytest.raises(InvalidArgumentError, match="Pass mode='overwrite' with it"):
        PostgresOutput(partition_by=["day"])
    with pytest.raises(InvalidArgumentError, match="max_connections"):
        PostgresOutput(max_connections=0)


def test_a_split_replayed_with_a_postgres_branch_does_not_read_its_input(
    spark: SparkSession, postgres: LocalPostgres, table: str, tmp_path: Path
) -> None:
    split = ParallelSplit(
        "devices",
        [Branch("raw", str(tmp_path / "raw")), Branch("serving", table, writer="postgres")],
    )
    split.run(devices(spark), app_id="split", txn_version=3)

    with count_spark_jobs(spark) as jobs:
        replay = split.run(devices(spark), app_id="split", txn_version=3)

    assert jobs.count == 0  # every branch's writer said so from metadata
    reason = replay.branch("serving").reason or ""
    assert "batch 3 of 'split.serving' was already committed" in reason
    assert rows(postgres, table, "count(*)") == {(50,): 1}


def test_max_connections_caps_the_tasks_that_copy(
    spark: SparkSession, postgres: LocalPostgres, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="spark_flow.postgres")

    PostgresOutput(max_connections=1).write(devices(spark), table, app_id="one", txn_version=1)

    (published,) = [r for r in caplog.records if hasattr(r, "tasks")]
    assert published.tasks == 1  # three partitions, coalesced into one COPY
    assert rows(postgres, table, "count(*)") == {(50,): 1}
