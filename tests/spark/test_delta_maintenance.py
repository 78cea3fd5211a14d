"""Table maintenance: optimized writes, compaction, vacuum, checkpoints, on the delta-rs backend."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from _delta_tables import TableBuilder
from deltalake import DeltaTable, write_deltalake
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_flow import delta
from spark_flow.delta import _compact
from spark_flow.errors import InvalidArgumentError, UnsupportedDeltaFeatureError
from spark_flow.storage import STAGING_DIR
from spark_flow.testing import assert_df_equal, count_spark_jobs

CORES = 4


def _small(spark: SparkSession, batch: int, rows: int = 10) -> DataFrame:
    """`rows` rows spread over CORES partitions, as a small write on a 4-core machine is."""
    return spark.range(batch * rows, (batch + 1) * rows, numPartitions=CORES).withColumn(
        "p", F.when(F.col("id") % 2 == 0, "even").otherwise("odd")
    )


def _data_files(path: str) -> list[Path]:
    return [f for f in Path(path).rglob("*.parquet") if f.relative_to(path).parts[0][0] != "_"]


def _last_commit(path: str) -> list[dict[str, dict[str, object]]]:
    last = sorted((Path(path) / "_delta_log").glob("*.json"))[-1]
    return [json.loads(line) for line in last.read_text().splitlines()]


def _appends(spark: SparkSession, path: str, count: int, **options: object) -> None:
    for batch in range(count):
        delta.write(_small(spark, batch), path, app_id="loader", txn_version=batch, **options)


def test_optimized_writes_make_one_file_per_write_instead_of_one_per_core(
    spark: SparkSession, tmp_path: Path
) -> None:
    scattered, optimized = str(tmp_path / "scattered"), str(tmp_path / "optimized")
    _appends(spark, scattered, 3)
    _appends(spark, optimized, 3, optimize_write=True)
    assert len(_data_files(scattered)) == 3 * CORES
    assert len(_data_files(optimized)) == 3
    assert_df_equal(delta.read(spark, optimized), delta.read(spark, scattered))


def test_optimized_writes_make_one_file_per_partition_value(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = str(tmp_path / "table")
    delta.write(_small(spark, 0), path, partition_by=["p"], optimize_write=True)
    assert sorted(f.parent.name for f in _data_files(path)) == ["p=even", "p=odd"]


def test_the_session_can_make_optimized_writes_the_default(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = str(tmp_path / "table")
    spark.conf.set(delta.OPTIMIZE_WRITE_CONF, "true")
    try:
        delta.write(_small(spark, 0), path)
        delta.write(_small(spark, 1), path, optimize_write=False)  # the argument wins
    finally:
        spark.conf.unset(delta.OPTIMIZE_WRITE_CONF)
    assert len(_data_files(path)) == 1 + CORES


def test_optimize_compacts_small_files_in_one_commit_that_changes_no_data(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = str(tmp_path / "table")
    _appends(spark, path, 4)
    before = delta.read(spark, path).collect()
    report = delta.optimize(spark, path)

    assert report.committed
    assert (report.files_removed, report.files_added, report.partitions) == (4 * CORES, 1, 1)
    assert report.table_version == 4
    actions = _last_commit(path)
    changes = [a[kind] for a in actions for kind in ("add", "remove") if kind in a]
    assert len(changes) == 4 * CORES + 1
    assert all(change["dataChange"] is False for change in changes)
    [added] = [a["add"] for a in actions if "add" in a]
    assert json.loads(str(added["stats"]))["minValues"] == {"id": 0, "p": "even"}
    assert sorted(delta.read(spark, path).collect()) == sorted(before)
    assert len(DeltaTable(path).file_uris()) == 1
    # The app transactions survive: a replay of a compacted batch is still skipped.
    assert delta.transaction_version(path, "loader") == 3
    assert not delta.write(_small(spark, 3), path, app_id="loader", txn_version=3).committed
    # The small files stay for time travel until vacuum.
    assert delta.read(spark, path, version=3).count() == 40


def test_optimize_compacts_only_the_partition_asked_for(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = str(tmp_path / "table")
    for batch in range(3):
        delta.write(_small(spark, batch), path, partition_by=["p"])
    report = delta.optimize(spark, path, partition={"p": "odd"})
    assert (report.files_added, report.partitions) == (1, 1)
    files = DeltaTable(path).file_uris()
    assert sum("p=odd" in f for f in files) == 1
    assert sum("p=even" in f for f in files) > 1
    assert delta.read(spark, path).where("p = 'odd'").count() == 15


def test_optimize_without_enough_small_files_runs_no_spark_job(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = str(tmp_path / "table")
    delta.write(spark.range(10, numPartitions=1), path)
    with count_spark_jobs(spark) as jobs:
        report = delta.optimize(spark, path)
    assert not report.committed
    assert "2 or more files" in str(report.skipped_reason)
    assert (jobs.count, report.table_version) == (0, 0)


def test_optimize_commits_on_top_of_a_concurrent_append(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = str(tmp_path / "table")
    _appends(spark, path, 2)
    planned = _compact.plan(path, Path(path), wanted=None, target_file_size=2**27, min_files=2)
    assert isinstance(planned, _compact.Compaction)
    delta.write(_small(spark, 9), path, app_id="other", txn_version=1)  # lands in between

    report = _compact.run(spark, planned)
    assert report.committed
    assert report.table_version == 3
    assert delta.read(spark, path).count() == 30
    assert len(DeltaTable(path).file_uris()) == 1 + CORES


def test_optimize_loses_cleanly_to_a_concurrent_overwrite(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = str(tmp_path / "table")
    _appends(spark, path, 2)
    planned = _compact.plan(path, Path(path), wanted=None, target_file_size=2**27, min_files=2)
    assert isinstance(planned, _compact.Compaction)
    delta.write(_small(spark, 7), path, mode="overwrite")
    files_after_overwrite = set(_data_files(path))

    report = _compact.run(spark, planned)
    assert not report.committed
    assert "concurrent commit removed files" in str(report.skipped_reason)
    assert delta.read(spark, path).count() == 10
    assert set(_data_files(path)) == files_after_overwrite  # its rewritten files are gone


def _one_row_files(tmp_path: Path, count: int, configuration: dict[str, str]) -> str:
    """A table deltalake wrote with `configuration`: ids 0 .. count - 1, one file each."""
    path = str(tmp_path / "table")
    for value in range(count):
        write_deltalake(path, pa.table({"id": [value]}), mode="append", configuration=configuration)
    return path


def test_optimize_refuses_tables_whose_files_it_cannot_rewrite(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = _one_row_files(tmp_path, 2, {"delta.columnMapping.mode": "name"})
    with pytest.raises(UnsupportedDeltaFeatureError) as caught:
        delta.optimize(spark, path)
    assert "columnMapping" in caught.value.feature


def test_optimize_refuses_files_with_deletion_vectors(spark: SparkSession, tmp_path: Path) -> None:
    # Rewritten as plain Parquet, the rows the DV deletes would come back.
    table = TableBuilder(tmp_path, [("id", "long")], deletion_vectors=True)
    first, second = table.add([{"id": 1}, {"id": 2}]), table.add([{"id": 3}])
    table.commit(first, second)
    table.commit(*table.delete(first, [0], inline=True))
    with pytest.raises(UnsupportedDeltaFeatureError) as caught:
        delta.optimize(spark, str(tmp_path))
    assert "deletionVectors" in caught.value.feature


def test_optimize_compacts_a_table_with_deletion_vectors_enabled_but_none_written(
    spark: SparkSession, tmp_path: Path
) -> None:
    # Databricks enables the feature on new tables; until a delete writes one, files are plain.
    path = _one_row_files(tmp_path, 3, {"delta.enableDeletionVectors": "true"})
    report = delta.optimize(spark, path)
    assert report.committed
    assert report.files_removed == 3
    assert sorted(row.id for row in delta.read(spark, path).collect()) == [0, 1, 2]


def test_optimize_rejects_bad_arguments(spark: SparkSession, tmp_path: Path) -> None:
    path = str(tmp_path / "table")
    delta.write(spark.range(3), path)
    with pytest.raises(InvalidArgumentError) as caught:
        delta.optimize(spark, path, partition={"id": 1})
    assert caught.value.argument == "partition"
    with pytest.raises(InvalidArgumentError, match="min_files"):
        delta.optimize(spark, path, min_files=1)
    with pytest.raises(InvalidArgumentError, match="target_file_size"):
        delta.optimize(spark, path, target_file_size=0)


def test_checkpoints_are_written_as_the_log_grows(spark: SparkSession, tmp_path: Path) -> None:
    path = str(tmp_path / "table")
    delta.write(_small(spark, 9), path)
    DeltaTable(path).alter.set_table_properties({"delta.checkpointInterval": "3"})
    _appends(spark, path, 4)
    delta.optimize(spark, path)
    checkpoints = sorted(p.name for p in (Path(path) / "_delta_log").glob("*.checkpoint.parquet"))
    assert len(checkpoints) >= 2
    assert (Path(path) / "_delta_log" / "_last_checkpoint").exists()
    assert delta.read(spark, path).count() == 50
    assert delta.transaction_version(path, "loader") == 3


_KILLED_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    from spark_flow import delta, get_session

    spark = get_session("killed-writer", profile="local", conf={
        "spark.master": "local[1]", "spark.ui.enabled": "false"})
    publish = os.replace

    def publish_then_die(source, target):
        # The crash under test: killed right after the first file left staging, before
        # the commit (a real SIGKILL, nothing cleans up).
        publish(source, target)
        if "_spark_flow_staging" not in str(target):
            os.kill(os.getpid(), signal.SIGKILL)

    os.replace = publish_then_die
    delta.write(spark.range(100, numPartitions=2), sys.argv[1], app_id="killed", txn_version=1)
    """
)


def test_vacuum_removes_what_a_writer_killed_mid_publish_left(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = str(tmp_path / "table")
    delta.write(spark.range(10), path, app_id="loader", txn_version=1)
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, path], check=False, capture_output=True, timeout=300
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]

    committed = {Path(uri).name for uri in DeltaTable(path).file_uris()}
    orphans = [f for f in _data_files(path) if f.name not in committed]
    [staging] = list((Path(path) / STAGING_DIR).iterdir())
    assert len(orphans) == 1
    delta.write(spark.range(10, 20), path, app_id="loader", txn_version=2)  # cleans nothing
    assert all(orphan.exists() for orphan in orphans)
    assert staging.exists()

    assert delta.vacuum(path) == delta.VacuumReport(path, dry_run=False)  # too young to go
    force = {"retention_hours": 0, "enforce_retention_duration": False}
    planned = delta.vacuum(path, dry_run=True, **force)  # type: ignore[arg-type]
    assert planned.files == (orphans[0].relative_to(path).as_posix(),)
    assert planned.staging == (staging.name,)
    assert planned.bytes > 0
    assert orphans[0].exists()

    done = delta.vacuum(path, **force)  # type: ignore[arg-type]
    assert (done.files, done.staging) == (planned.files, planned.staging)
    assert not orphans[0].exists()
    assert not (Path(path) / STAGING_DIR).exists()
    assert delta.read(spark, path).count() == 20


def test_vacuum_keeps_files_of_versions_within_the_retention(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = str(tmp_path / "table")
    _appends(spark, path, 2)
    delta.optimize(spark, path)
    assert delta.vacuum(path).files == ()
    gone = delta.vacuum(path, retention_hours=0, enforce_retention_duration=False)
    assert len(gone.files) == 2 * CORES
    assert len(_data_files(path)) == 1
    assert delta.read(spark, path).count() == 20


def test_vacuum_refuses_a_retention_below_the_tables_minimum(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = str(tmp_path / "table")
    delta.write(spark.range(3), path)
    with pytest.raises(InvalidArgumentError) as caught:
        delta.vacuum(path, retention_hours=1)
    assert caught.value.argument == "retention_hours"
    assert "delta.deletedFileRetentionDuration of 168 hours" in str(caught.value)
    assert "enforce_retention_duration=False" in str(caught.value)


def test_optimize_finds_a_partition_by_its_typed_value(spark: SparkSession, tmp_path: Path) -> None:
    # The log spells a decimal(4,2) partition 1.50 and a null one as null: given as 1.5 and
    # None, each still names its partition, as a value of the column's type.
    path = str(tmp_path / "prices")
    rows = spark.createDataFrame([(1, Decimal("1.50")), (2, None)], "id long, price decimal(4,2)")
    for _ in range(2):
        delta.write(rows, path, partition_by=["price"])

    priced = delta.optimize(spark, path, partition={"price": Decimal("1.5")}, min_files=2)
    unpriced = delta.optimize(spark, path, partition={"price": None}, min_files=2)

    assert (priced.committed, priced.files_removed, priced.partitions) == (True, 2, 1)
    assert (unpriced.committed, unpriced.files_removed, unpriced.partitions) == (True, 2, 1)
    with pytest.raises(InvalidArgumentError, match="no value of that type"):
        delta.optimize(spark, path, partition={"price": "cheap"})
    assert sorted(r.id for r in delta.read(spark, path).collect()) == [1, 1, 2, 2]
