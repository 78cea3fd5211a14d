"""Tables another team's pipelines keep with deltalake's whole API, written and read by us.

Each table is made and changed with deltalake (its writer, `delete`/`update`/`merge`,
`optimize`, checkpoints, log cleanup, table properties); spark_flow writes onto it and reads it
back; deltalake and DuckDB (`tests/_duckdb_reader.py`) read what we left, so the table stays
valid for the engines the other pipelines use.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow as pa
from _duckdb_reader import duckdb_rows
from deltalake import DeltaTable, write_deltalake
from pyspark.sql import SparkSession

from spark_flow import delta


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
