"""Exactly once under failures: a task dying mid-COPY, racing writers, duplicate attempts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from _pg import query, rows, staging_tables

from spark_flow.postgres.local import LocalPostgres

pytestmark = pytest.mark.postgres

WRITER = Path(__file__).with_name("_pg_writer.py")


def start_writer(server: LocalPostgres, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "SPARK_FLOW_POSTGRES_DSN": server.dsn,
        "PGPASSWORD": server.password,
        "PYSPARK_PYTHON": sys.executable,
    }
    return subprocess.Popen(
        [sys.executable, str(WRITER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def result_of(process: subprocess.Popen[str]) -> dict[str, Any]:
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]
    report: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return report


def test_a_task_killed_mid_copy_leaves_nothing_and_its_retry_commits_once(
    postgres: LocalPostgres, table: str, tmp_path: Path
) -> None:
    marker = tmp_path / "crashed"

    result = result_of(start_writer(postgres, table, "4000", "--crash-mid-copy", str(marker)))

    assert int(marker.read_text()) > 0  # the first attempt died with rows in its COPY
    assert (result["committed"], result["rows_written"]) == (True, 4000)
    assert rows(postgres, table, "count(*), count(DISTINCT id)") == {(4000, 4000): 1}
    assert staging_tables(postgres) == []


def test_two_processes_racing_the_same_batch_commit_it_once(
    postgres: LocalPostgres, table: str, tmp_path: Path
) -> None:
    arrivals = tmp_path / "arrivals"
    arrivals.mkdir()
    racers = [start_writer(postgres, table, "300", "--rendezvous", str(arrivals)) for _ in "ab"]

    results = [result_of(racer) for racer in racers]

    assert sorted(r["committed"] for r in results) == [False, True]
    (lost,) = [r for r in results if not r["committed"]]
    assert "batch 1 of 'racer' was already committed" in lost["skipped_reason"]
    assert rows(postgres, table, "count(*), count(DISTINCT id)") == {(300, 300): 1}
    assert staging_tables(postgres) == []


def test_only_the_attempt_spark_accepted_is_published_when_two_copied_the_same_partition(
    postgres: LocalPostgres, table: str
) -> None:
    # What a speculative copy, or an attempt whose executor died after its COPY committed,
    # leaves in staging: the partition's rows twice, under two task attempt ids.
    from pyspark.sql import types as T

    from spark_flow.postgres import _tables as tables
    from spark_flow.postgres._copy import copy_batches
    from spark_flow.postgres._settings import ServerParams
    from spark_flow.postgres._types import columns_of

    columns = columns_of(T.StructType([T.StructField("id", T.LongType())]))
    batch = pa.RecordBatch.from_pydict({"id": pa.array(range(100), pa.int64())})
    with postgres.settings().connect() as connection:
        target = tables.resolve(connection, None, table)
        with tables.staging_table(connection, target, columns) as staging:
            copy_sql = tables.copy_statement(staging, columns).as_string(connection)
            server = ServerParams.of(connection)
            for attempt in (11, 12):
                assert copy_batches(server, copy_sql, attempt, iter([batch])) == 100
            lost = tables.publish(connection, target, staging, columns, tasks=[12],
                                  batch=("attempts", 1, 100), replace=None)  # fmt: skip

    assert lost is None
    assert rows(postgres, table, "count(*), count(DISTINCT id)") == {(100, 100): 1}
    assert query(postgres, "SELECT 1 FROM pg_class WHERE relname = %s", staging.name) == []
