"""A streaming Parallel Split with a Postgres branch: restarted after a failure, each row once."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _pg import rows
from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame, SparkSession

from spark_flow import delta
from spark_flow.delta import WriteResult
from spark_flow.fan_out import Branch, ParallelSplit
from spark_flow.generate import DEVICE_SCHEMA, generate_devices
from spark_flow.outputs import MicroBatchWriter
from spark_flow.postgres import PostgresOutput
from spark_flow.postgres.local import LocalPostgres

pytestmark = pytest.mark.postgres


@dataclass
class FailsOnce:
    """The Postgres writer, failing once on one micro-batch: before writing, or right after."""

    txn_version: int
    after_writing: bool
    inner: PostgresOutput = field(default_factory=PostgresOutput)
    failed: bool = False

    def written(self, path: str, *, app_id: str, txn_version: int | None) -> str | None:
        return self.inner.written(path, app_id=app_id, txn_version=txn_version)

    def write(
        self, df: DataFrame, path: str, *, app_id: str, txn_version: int | None
    ) -> WriteResult:
        failing = txn_version == self.txn_version and not self.failed
        if failing and not self.after_writing:
            self.failed = True
            raise RuntimeError("the server went away")
        result = self.inner.write(df, path, app_id=app_id, txn_version=txn_version)
        if failing:
            self.failed = True
            raise RuntimeError("the driver died after the commit")
        return result


def land_files(folder: Path, sizes: list[int]) -> Counter[tuple[Any, ...]]:
    """One devices file per size, oldest first (the file source takes them in that order)."""
    folder.mkdir(parents=True)
    records: Counter[tuple[Any, ...]] = Counter()
    landed = time.time() - len(sizes)
    for n, size in enumerate(sizes):
        target = folder / f"devices-{n}.json"
        shutil.move(generate_devices(folder.parent / f"made-{n}", rows=size, seed=n), target)
        os.utime(target, (landed + n, landed + n))
        for line in target.read_text().splitlines():
            record = json.loads(line)
            records[(record["type"], record["full_name"], record["version"])] += 1
    return records


def stream(spark: SparkSession, source: Path, sink: MicroBatchWriter, checkpoint: Path) -> None:
    query = (
        spark.readStream.schema(DEVICE_SCHEMA)
        .option("maxFilesPerTrigger", 1)
        .json(str(source))
        .writeStream.foreachBatch(sink)
        .option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()


@pytest.mark.parametrize("after_writing", [False, True], ids=["before", "after its commit"])
def test_a_split_restarted_after_its_postgres_branch_failed_writes_each_row_once(
    spark: SparkSession, postgres: LocalPostgres, table: str, tmp_path: Path, after_writing: bool
) -> None:
    expected = land_files(tmp_path / "in", [20, 30, 40])
    split = ParallelSplit(
        "devices",
        [
            Branch("raw", str(tmp_path / "raw")),
            Branch("pg", table, writer=FailsOnce(txn_version=1, after_writing=after_writing)),
        ],
    )
    checkpoint = tmp_path / "checkpoint"

    with pytest.raises(StreamingQueryException, match="branch 'pg'"):
        stream(spark, tmp_path / "in", split.for_each_batch(app_id="devices"), checkpoint)
    restarted = split.for_each_batch(app_id="devices")
    stream(spark, tmp_path / "in", restarted, checkpoint)

    replayed = dict(restarted.reports)[1].branch("pg")
    # Committed before the crash: the replay skips it; failed before writing: the replay writes.
    assert (replayed.rows_written, bool(replayed.skipped_reason)) == (
        (0, True) if after_writing else (30, False)
    )
    assert rows(postgres, table, "type, full_name, version") == expected
    assert delta.read(spark, str(tmp_path / "raw")).count() == expected.total()
