"""Tables another team's pipelines keep with deltalake's whole API, written and read by us.

Each table is made and changed with deltalake (its writer, `delete`/`update`/`merge`,
`optimize`, checkpoints, log cleanup, table properties); spark_flow writes onto it and reads it
back; deltalake and DuckDB (`tests/_duckdb_reader.py`) read what we left, so the table stays
valid for the engines the other pipelines use.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pyarrow as pa
import pytest
from _duckdb_reader import duckdb_rows
from deltalake import DeltaTable, write_deltalake
from pyspark.sql import SparkSession

from spark_flow import delta
from spark_flow.errors import InvalidArgumentError


def _ids(first: int, count: int) -> pa.Table:
    return pa.table({"id": pa.array(range(first, first + count), pa.int64())})


def _txn_actions(path: Path) -> list[dict[str, object]]:
    return [
        action["txn"]
        for commit in sorted((path / "_delta_log").glob("*.json"))
        for line in commit.read_text().splitlines()
        if "txn" in (action := json.loads(line))
    ]


def test_a_txn_carries_its_commit_time_so_a_retention_expires_it_as_delta_does(
    spark: SparkSession, tmp_path: Path
) -> None:
    # With delta.setTransactionRetentionDuration, delta-spark keeps only the app transactions
    # whose lastUpdated is within it: one without that field is gone at once for it (and from
    # its checkpoints, then for every reader), so a replay of the batch would be written twice.
    path = tmp_path / "t"
    retention = {"delta.setTransactionRetentionDuration": "interval 1 days"}
    write_deltalake(path, _ids(0, 2), configuration=retention)
    before = int(time.time() * 1000)

    delta.write(spark.range(2, 4), str(path), app_id="loader", txn_version=5)

    [txn] = _txn_actions(path)
    assert txn["appId"] == "loader"
    assert txn["version"] == 5
    assert isinstance(txn["lastUpdated"], int)
    assert before <= txn["lastUpdated"] <= int(time.time() * 1000)
    DeltaTable(path).create_checkpoint()  # deltalake's checkpoint keeps it, within retention
    assert DeltaTable(path).transaction_version("loader") == 5
    assert not delta.write(spark.range(2, 4), str(path), app_id="loader", txn_version=5).committed


def test_vacuum_reads_commits_only_beside_log_compaction_files(tmp_path: Path) -> None:
    # delta-spark's log compaction writes `<from>.<to>.compacted.json` next to the commits:
    # the same version twice in one listing must not stop a vacuum (nor count as a commit).
    path = tmp_path / "t"
    write_deltalake(path, _ids(0, 2))
    write_deltalake(path, _ids(2, 2), mode="overwrite")
    log = path / "_delta_log"
    commits = [(log / f"{v:020d}.json").read_text() for v in (0, 1)]
    (log / f"{0:020d}.{1:020d}.compacted.json").write_text("".join(commits))

    report = delta.vacuum(str(path), retention_hours=0, enforce_retention_duration=False)

    [removed] = DeltaTable(path, version=0).file_uris()
    assert report.files == (Path(removed).name,)
    assert sorted(r["id"] for r in duckdb_rows(path)) == [2, 3]


def _changes(path: Path, since: int) -> list[tuple[int, str, str, int]]:
    """(id, k, change type, version) of deltalake's change data feed from `since` on."""
    feed = pa.table(DeltaTable(path).load_cdf(starting_version=since).read_all())
    rows = feed.select(["id", "k", "_change_type", "_commit_version"]).to_pylist()
    return sorted(tuple(row.values()) for row in rows)  # type: ignore[misc]


def test_a_change_data_feed_reads_our_partition_overwrites_and_compactions(
    spark: SparkSession, tmp_path: Path
) -> None:
    # A reader of the feed takes a removed file's partition values from its remove action
    # (deltalake refuses a remove without them): an overwrite's removed rows are deletes.
    path = tmp_path / "t"
    table = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "k": ["a", "a", "b"]})
    cdf = {"delta.enableChangeDataFeed": "true"}
    write_deltalake(path, table, partition_by=["k"], configuration=cdf)
    write_deltalake(path, table.slice(2), mode="append")

    rows = spark.createDataFrame([(4, "a")], "id long, k string")
    delta.write(rows, str(path), mode="overwrite", replace_where={"k": "a"})
    rows = spark.createDataFrame([(5, "b")], "id long, k string")
    delta.write(rows, str(path), mode="overwrite", dynamic_partitions=True)
    write_deltalake(path, pa.table({"id": pa.array([6], pa.int64()), "k": ["b"]}), mode="append")
    assert delta.optimize(spark, str(path)).files_removed == 2  # no change to the feed

    assert _changes(path, since=2) == [
        (1, "a", "delete", 2),
        (2, "a", "delete", 2),
        (3, "b", "delete", 3),
        (3, "b", "delete", 3),
        (4, "a", "insert", 2),
        (5, "b", "insert", 3),
        (6, "b", "insert", 4),
    ]
    assert sorted(r["id"] for r in duckdb_rows(path)) == [4, 5, 6]


@pytest.fixture(scope="module")
def cleaned_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Versions 0-4 by deltalake, a checkpoint at 3, then deltalake's log cleanup: the commits
    before the checkpoint are gone, versions 3 and 4 remain readable."""
    path = tmp_path_factory.mktemp("cleaned") / "t"
    retention = {"delta.logRetentionDuration": "interval 0 days"}
    write_deltalake(path, _ids(0, 1), configuration=retention)
    for first in range(1, 4):
        write_deltalake(path, _ids(first, 1), mode="append")
    DeltaTable(path).create_checkpoint()
    write_deltalake(path, _ids(4, 1), mode="append")
    DeltaTable(path).cleanup_metadata()
    assert not (path / "_delta_log" / f"{0:020d}.json").exists()
    return path


def test_time_travel_on_a_log_deltalake_cleaned_up(spark: SparkSession, cleaned_log: Path) -> None:
    path = str(cleaned_log)
    with pytest.raises(InvalidArgumentError) as raised:
        delta.read(spark, path, version=1)
    assert "has versions 3 to 4, not 1; the commits before 3 were removed by log cleanup" in (
        raised.value.problem
    )
    with pytest.raises(InvalidArgumentError) as raised:
        delta.read(spark, path, timestamp="2000-01-01")
    assert "before the earliest version" in raised.value.problem
    with pytest.raises(InvalidArgumentError) as raised:
        delta.read(spark, path, version=9)
    assert "removed by log cleanup" not in raised.value.problem  # it is after the range

    assert sorted(r.id for r in delta.read(spark, path, version=3).collect()) == [0, 1, 2, 3]


def test_a_partition_value_logged_empty_is_null_for_the_filters_skipping_too(
    spark: SparkSession, tmp_path: Path
) -> None:
    # deltalake's writer logs an empty string partition value as "" (in the folder `k=`); the
    # protocol and every reader, deltalake's scan included, read it as null, but deltalake's
    # file skipping compares it as "": the rows matching a filter true for null were dropped.
    path = tmp_path / "t"
    table = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "k": ["a", "", None]})
    for row in range(3):
        write_deltalake(path, table.slice(row, 1), partition_by=["k"], mode="append")

    read = delta.read(spark, str(path), filter="k IS NULL")

    expected = sorted(r["id"] for r in duckdb_rows(path, "k IS NULL"))
    assert expected == [2, 3]
    assert sorted(r.id for r in read.collect()) == expected


def test_vacuum_deletes_change_data_files_older_than_the_retention(tmp_path: Path) -> None:
    # The change data files of deltalake's (and delta-spark's) updates live in `_change_data/`;
    # delta-spark's vacuum deletes them once older than the retention, as no version holds them.
    path = tmp_path / "t"
    cdf = {"delta.enableChangeDataFeed": "true"}
    write_deltalake(path, _ids(0, 3), configuration=cdf)
    DeltaTable(path).update(updates={"id": "id + 10"}, predicate="id = 0")  # version 1
    old = time.time() - 10 * 24 * 3600
    for file in [*(path / "_change_data").rglob("*.parquet"), *(path / "_delta_log").iterdir()]:
        os.utime(file, (old, old))
    [aged] = [p.relative_to(path).as_posix() for p in (path / "_change_data").rglob("*.parquet")]
    DeltaTable(path).update(updates={"id": "id + 10"}, predicate="id = 1")  # version 2
    young = {p.relative_to(path).as_posix() for p in (path / "_change_data").rglob("*.parquet")}
    young.discard(aged)

    report = delta.vacuum(str(path))  # 7 days

    assert aged in report.files
    assert not (path / aged).exists()
    assert young
    assert all((path / file).exists() for file in young)  # version 2's feed stays
    assert [r["_commit_version"] for r in _feed(path, since=2)] == [2, 2]
    assert sorted(r["id"] for r in duckdb_rows(path)) == [2, 10, 11]


def _feed(path: Path, since: int) -> list[dict[str, object]]:
    feed = pa.table(DeltaTable(path).load_cdf(starting_version=since).read_all())
    return feed.select(["_commit_version"]).to_pylist()
