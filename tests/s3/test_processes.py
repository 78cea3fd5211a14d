"""Writers in processes of their own against one bucket: a race for one txn, a crash between
upload and commit, and format("delta") from a session whose workers know only the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _s3_tables import committed_files, data_objects, open_table, table_rows
from pyspark.sql import SparkSession

from spark_flow import delta

WRITER = Path(__file__).with_name("_writer_process.py")
_TIMEOUT_S = 300


def _start(table: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    return subprocess.Popen(
        [sys.executable, str(WRITER), table, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _summary(process: subprocess.Popen[str]) -> dict[str, object]:
    out, err = process.communicate(timeout=_TIMEOUT_S)
    assert process.returncode == 0, err[-3000:]
    return dict(json.loads(out.strip().splitlines()[-1]))


def test_two_processes_racing_one_txn_commit_once_and_the_loser_leaves_no_objects(
    s3_bucket: str, tmp_path: Path
) -> None:
    table = f"{s3_bucket}/raced"
    arrivals = tmp_path / "arrivals"
    arrivals.mkdir()

    racers = [_start(table, "--txn", "1", "--arrive", str(arrivals)) for _ in range(2)]
    results = [_summary(racer) for racer in racers]

    assert sorted(result["committed"] for result in results) == [False, True]
    loser = next(result for result in results if not result["committed"])
    assert "already committed txnVersion=1" in str(loser["skipped_reason"])
    assert open_table(table).version() == 0
    assert delta.transaction_version(table, "racer") == 1
    assert data_objects(table) == committed_files(table)
    assert len(table_rows(table)) == 10


def test_a_writer_killed_after_uploading_leaves_the_table_as_it_was(
    spark: SparkSession, s3_bucket: str, tmp_path: Path
) -> None:
    table = f"{s3_bucket}/crashed"
    delta.write(
        spark.range(3).selectExpr("id", "id % 2 AS half"), table, app_id="racer", txn_version=1
    )
    before = committed_files(table)
    uploaded = tmp_path / "uploaded.json"

    writer = _start(table, "--txn", "2", "--uploaded", str(uploaded))
    deadline = time.monotonic() + _TIMEOUT_S
    while not uploaded.exists() and writer.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)  # waiting on the writer's rendezvous file, not on Spark
    assert uploaded.exists(), writer.communicate()[1][-3000:]
    writer.kill()
    writer.communicate(timeout=_TIMEOUT_S)

    orphans = set(json.loads(uploaded.read_text()))
    assert orphans
    assert orphans <= data_objects(table)  # uploaded, yet invisible:
    assert open_table(table).version() == 0
    assert committed_files(table) == before
    assert [row["id"] for row in table_rows(table)] == [0, 1, 2]
    replay = delta.write(
        spark.range(3, 5).selectExpr("id", "id % 2 AS half"), table, app_id="racer", txn_version=2
    )
    assert (replay.committed, replay.table_version) == (True, 1)
    assert [row["id"] for row in table_rows(table)] == [0, 1, 2, 3, 4]


def test_format_delta_writes_a_partitioned_table_in_place(s3_bucket: str) -> None:
    table = f"{s3_bucket}/by-format"

    _summary(_start(table, "--txn", "4", "--format-delta"))

    assert open_table(table).metadata().partition_columns == ["half"]
    assert {path.split("/")[0] for path in committed_files(table)} == {"half=0", "half=1"}
    assert data_objects(table) == committed_files(table)
    assert [row["id"] for row in table_rows(table)] == list(range(10))
    assert delta.transaction_version(table, "racer") == 4


def test_format_delta_reaches_a_store_whose_variables_came_after_spark_started(
    s3_bucket: str,
) -> None:
    # Spark starts the source's Python processes with the JVM's environment, which lacks the
    # variables; enable_delta (get_session, the s3_bucket fixture) registers it with them.
    table = f"{s3_bucket}/later"

    summary = _summary(_start(table, "--txn", "1", "--format-delta", "--store-later"))

    assert summary["read"] == 10
    assert [row["id"] for row in table_rows(table)] == list(range(10))
