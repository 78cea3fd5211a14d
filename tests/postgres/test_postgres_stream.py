"""A streaming Parallel Split with a Postgres branch: restarted after a failure, each row once."""

from __future__ import annotations

from pathlib import Path

import pytest
from _pg import rows
from _streams import FailsOnce, land_files, stream
from pyspark.errors import StreamingQueryException
from pyspark.sql import SparkSession

from spark_flow import delta
from spark_flow.fan_out import Branch, ParallelSplit
from spark_flow.postgres import PostgresOutput
from spark_flow.postgres.local import LocalPostgres

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("after_writing", [False, True], ids=["before", "after its commit"])
def test_a_split_restarted_after_its_postgres_branch_failed_writes_each_row_once(
    spark: SparkSession, postgres: LocalPostgres, table: str, tmp_path: Path, after_writing: bool
) -> None:
    expected = land_files(tmp_path / "in", [20, 30, 40])
    split = ParallelSplit(
        "devices",
        [
            Branch("raw", str(tmp_path / "raw")),
            Branch(
                "pg",
                table,
                writer=FailsOnce(PostgresOutput(), txn_version=1, after_writing=after_writing),
            ),
        ],
    )
    checkpoint = tmp_path / "checkpoint"

    with pytest.raises(StreamingQueryException, match="branch 'pg'"):
        stream(spark, tmp_path / "in", split.for_each_batch(app_id="devices"), checkpoint)
    restarted = split.for_each_batch(app_id="devices")
    stream(spark, tmp_path / "in", restarted, checkpoint)

    replayed = dict(restarted.reports)[1].branch("pg")
    # Committed before the crash: the replay skips it; failed before writing: the replay writes.
    assert (replayed.status, replayed.rows_written) == (
        ("already_done", 0) if after_writing else ("success", 30)
    )
    assert rows(postgres, table, "type, full_name, version") == expected
    assert delta.read(spark, str(tmp_path / "raw")).count() == expected.total()
