"""Idempotent writes on the delta-rs backend: replays, versions, races, failures."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from deltalake import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_flow import delta
from spark_flow.testing import count_spark_jobs, rendezvous


def data_files(table: str) -> set[str]:
    """Every Parquet file on disk under the table, relative to it (staging excluded)."""
    root = Path(table)
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*.parquet")
        if "_spark_flow_staging" not in p.parts
    }


def logged_files(table: str) -> set[str]:
    return {os.path.relpath(uri, table) for uri in DeltaTable(table).file_uris()}


def test_backend_is_delta_rs_without_the_connector_jars(spark: SparkSession) -> None:
    assert delta.backend(spark) == "delta-rs"


def test_replay_of_a_committed_txn_runs_no_spark_job_and_writes_no_file(
    spark: SparkSession, tmp_delta_path: str
) -> None:
    df = spark.range(10)
    first = delta.write(df, tmp_delta_path, app_id="loader", txn_version=7)
    files_before = data_files(tmp_delta_path)

    with count_spark_jobs(spark) as jobs:
        replay = delta.write(df, tmp_delta_path, app_id="loader", txn_version=7)

    assert first.committed
    assert first.rows_written == 10
    assert not replay.committed
    assert replay.rows_written == 0
    assert replay.table_version == first.table_version
    assert "already committed txnVersion=7" in (replay.skipped_reason or "")
    assert jobs.count == 0
    assert data_files(tmp_delta_path) == files_before
    assert DeltaTable(tmp_delta_path).version() == first.table_version


def test_the_job_counter_does_see_jobs(spark: SparkSession, tmp_delta_path: str) -> None:
    with count_spark_jobs(spark) as jobs:
        delta.write(spark.range(3), tmp_delta_path, app_id="loader", txn_version=1)

    assert jobs.count >= 1


def test_lower_versions_skip_higher_versions_commit(
    spark: SparkSession, tmp_delta_path: str
) -> None:
    df = spark.range(5)
    delta.write(df, tmp_delta_path, app_id="loader", txn_version=5)

    lower = delta.write(df, tmp_delta_path, app_id="loader", txn_version=4)
    higher = delta.write(df, tmp_delta_path, app_id="loader", txn_version=6)

    assert not lower.committed
    assert higher.committed
    assert delta.transaction_version(tmp_delta_path, "loader") == 6
    assert delta.read(spark, tmp_delta_path).count() == 10


def test_app_ids_and_tables_keep_their_own_transactions(
    spark: SparkSession, tmp_path: Path
) -> None:
    first, second = str(tmp_path / "first"), str(tmp_path / "second")
    df = spark.range(4)

    assert delta.write(df, first, app_id="a", txn_version=1).committed
    assert delta.write(df, first, app_id="b", txn_version=1).committed
    assert delta.write(df, second, app_id="a", txn_version=1).committed

    assert delta.transaction_version(first, "a") == 1
    assert delta.transaction_version(first, "b") == 1
    assert delta.transaction_version(first, "c") is None
    assert delta.read(spark, first).count() == 8
    assert delta.read(spark, second).count() == 4


def test_racing_writers_of_one_txn_commit_once_and_the_loser_leaves_no_files(
    spark: SparkSession, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="spark_flow")
    table = str(tmp_path / "table")
    delta.write(spark.range(1).limit(0), table)  # the table exists, as in a rerun
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    arrive = rendezvous(str(barrier), parties=2)
    results: list[delta.WriteResult] = []
    errors: list[BaseException] = []

    def writer() -> None:
        df = spark.range(0, 100, numPartitions=1).withColumn("id", arrive("id"))
        try:
            results.append(delta.write(df, table, app_id="split", txn_version=3))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(r.committed for r in results) == [False, True]
    loser = next(r for r in results if not r.committed)
    assert "already committed" in (loser.skipped_reason or "")
    assert "lost a commit race" in caplog.text  # both passed the pre-check: the commit decided
    assert delta.read(spark, table).count() == 100
    assert data_files(table) == logged_files(table)
    assert not (Path(table) / "_spark_flow_staging").exists()


def _fails_on(value: int) -> F.Column:
    @F.udf("long")
    def check(x):
        if x == value:
            raise ValueError(f"bad row {x}")
        return x

    return check


def test_a_write_that_fails_midway_leaves_the_previous_version_and_retries_cleanly(
    spark: SparkSession, tmp_delta_path: str
) -> None:
    delta.write(spark.range(10), tmp_delta_path, app_id="loader", txn_version=1)
    failing: DataFrame = spark.range(0, 1000, numPartitions=4).withColumn(
        "id", _fails_on(999)("id")
    )

    with pytest.raises(Exception, match="bad row 999"):
        delta.write(failing, tmp_delta_path, app_id="loader", txn_version=2)

    assert DeltaTable(tmp_delta_path).version() == 0
    assert data_files(tmp_delta_path) == logged_files(tmp_delta_path)
    assert delta.read(spark, tmp_delta_path).count() == 10
    assert not (Path(tmp_delta_path) / "_spark_flow_staging").exists()

    retry = delta.write(spark.range(10, 20), tmp_delta_path, app_id="loader", txn_version=2)

    assert retry.committed
    assert delta.read(spark, tmp_delta_path).count() == 20


def test_two_writers_creating_one_table_both_land(spark: SparkSession, tmp_path: Path) -> None:
    # Which path the loser takes varies: delta-rs may retry its create as version 1, or our
    # commit fails and is redone on top of the new table. Both must end like this.
    table = str(tmp_path / "new-table")
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    arrive = rendezvous(str(barrier), parties=2)
    results: list[delta.WriteResult] = []

    def writer(app_id: str) -> None:
        df = spark.range(0, 10, numPartitions=1).withColumn("id", arrive("id"))
        results.append(delta.write(df, table, app_id=app_id, txn_version=1))

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("raw", "enriched")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [r.committed for r in results] == [True, True]
    assert sorted(r.table_version for r in results) == [0, 1]
    assert delta.read(spark, table).count() == 20
    assert delta.transaction_version(table, "raw") == 1
    assert delta.transaction_version(table, "enriched") == 1
    assert data_files(table) == logged_files(table)


def test_a_commit_that_loses_to_another_version_of_its_app_is_redone_on_top(
    spark: SparkSession, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Delta refuses two concurrent commits of one app id (delta-rs: "Concurrent transaction
    # failed"). Version 2 plans first and commits after version 1: it must commit all the same.
    caplog.set_level("INFO", logger="spark_flow")
    table = str(tmp_path / "table")
    delta.write(spark.range(1).limit(0), table)
    started, first_commit = str(tmp_path / "v2-started"), f"{table}/_delta_log/{1:020d}.json"

    @F.udf("long")
    def after_version_one(value):  # untyped: hints would make it a pandas UDF
        import time
        from pathlib import Path

        Path(started).touch()
        deadline = time.monotonic() + 60
        while not Path(first_commit).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return value

    @F.udf("long")
    def once_version_two_planned(value):  # untyped: hints would make it a pandas UDF
        import time
        from pathlib import Path

        deadline = time.monotonic() + 60
        while not Path(started).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return value

    results: dict[int, delta.WriteResult] = {}

    def writer(version: int, gate: F.udf) -> None:  # type: ignore[valid-type]
        df = spark.range(0, 10, numPartitions=1).withColumn("id", gate("id"))
        results[version] = delta.write(df, table, app_id="loader", txn_version=version)

    threads = [
        threading.Thread(target=writer, args=(2, after_version_one)),
        threading.Thread(target=writer, args=(1, once_version_two_planned)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert (results[1].committed, results[1].table_version) == (True, 1)
    assert (results[2].committed, results[2].table_version) == (True, 2)
    assert "changed while committing" in caplog.text
    assert delta.transaction_version(table, "loader") == 2
    assert delta.read(spark, table).count() == 20
    assert data_files(table) == logged_files(table)
