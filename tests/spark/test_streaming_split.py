"""Parallel Split and single writers inside foreachBatch: exactly once across query restarts."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from _streams import FailsOnce, land_files, stream
from pyspark.errors import StreamingQueryException
from pyspark.sql import SparkSession

from spark_flow import delta
from spark_flow.errors import InvalidArgumentError
from spark_flow.fan_out import Branch, ParallelSplit
from spark_flow.outputs import (
    DeltaOutput,
    MicroBatchWriter,
    OutputWriter,
    for_each_batch,
    output_writer,
)
from spark_flow.testing import read_output


def rows_of(spark: SparkSession, table: Path) -> Counter[tuple[Any, ...]]:
    rows = delta.read(spark, str(table)).select("type", "full_name", "version").collect()
    return Counter(tuple(row) for row in rows)


def two_branches(tmp_path: Path, enriched_writer: OutputWriter | str) -> ParallelSplit:
    return ParallelSplit(
        "stream",
        [
            Branch("raw", str(tmp_path / "raw")),
            Branch("enriched", str(tmp_path / "enriched"), writer=enriched_writer),
        ],
    )


def test_a_failed_branch_stops_the_query_and_a_restart_completes_its_micro_batch_once(
    spark: SparkSession, tmp_path: Path
) -> None:
    expected = land_files(tmp_path / "in", [20, 30, 40])
    checkpoint = tmp_path / "checkpoint"
    split = two_branches(tmp_path, FailsOnce(DeltaOutput(), txn_version=1))

    with pytest.raises(StreamingQueryException) as stopped:
        stream(spark, tmp_path / "in", split.for_each_batch(app_id="devices"), checkpoint)
    assert "branch 'enriched': RuntimeError: disk full" in str(stopped.value)
    assert delta.read(spark, str(tmp_path / "raw")).count() == 50  # batches 0 and 1
    assert delta.read(spark, str(tmp_path / "enriched")).count() == 20  # batch 0 only

    restarted = split.for_each_batch(app_id="devices")
    stream(spark, tmp_path / "in", restarted, checkpoint)

    replay = dict(restarted.reports)[1]
    assert replay.branch("raw").status == "already_done"
    assert "already committed" in (replay.branch("raw").reason or "")
    assert replay.branch("enriched").status == "success"
    assert [batch_id for batch_id, _ in restarted.reports] == [1, 2]
    assert rows_of(spark, tmp_path / "raw") == expected
    assert rows_of(spark, tmp_path / "enriched").total() == expected.total()


def test_available_now_splits_a_folder_into_micro_batches_each_written_once(
    spark: SparkSession, tmp_path: Path
) -> None:
    expected = land_files(tmp_path / "in", [5, 6, 7, 8, 9])
    checkpoint = tmp_path / "checkpoint"
    split = two_branches(tmp_path, "delta")

    sink = split.for_each_batch(app_id="devices")
    stream(spark, tmp_path / "in", sink, checkpoint)

    assert [batch_id for batch_id, _ in sink.reports] == [0, 1, 2, 3, 4]
    assert [report.branch("raw").rows_written for _, report in sink.reports] == [5, 6, 7, 8, 9]
    raw = str(tmp_path / "raw")
    assert delta.transaction_version(raw, "devices.raw") == 4
    assert rows_of(spark, tmp_path / "raw") == expected

    more = land_files(tmp_path / "in-later", [4])
    shutil.move(tmp_path / "in-later" / "devices-000.json", tmp_path / "in" / "late.json")
    again = split.for_each_batch(app_id="devices")
    stream(spark, tmp_path / "in", again, checkpoint)
    assert [batch_id for batch_id, _ in again.reports] == [5]
    assert rows_of(spark, tmp_path / "raw") == expected + more


def test_file_branches_publish_one_folder_per_micro_batch_across_a_restart(
    spark: SparkSession, tmp_path: Path
) -> None:
    expected = land_files(tmp_path / "in", [10, 11, 12])
    checkpoint = tmp_path / "checkpoint"
    parquet = FailsOnce(output_writer("parquet"), txn_version=2, after_writing=True)
    split = two_branches(tmp_path, parquet)

    with pytest.raises(StreamingQueryException):
        stream(spark, tmp_path / "in", split.for_each_batch(app_id="devices"), checkpoint)
    restarted = split.for_each_batch(app_id="devices")
    stream(spark, tmp_path / "in", restarted, checkpoint)

    assert restarted.reports[0][1].branch("enriched").status == "already_done"  # published before
    folders = sorted(p.name for p in (tmp_path / "enriched").glob("batch_id=*"))
    assert folders == ["batch_id=0", "batch_id=1", "batch_id=2"]
    published = read_output(spark, "parquet", str(tmp_path / "enriched"))
    assert published.count() == expected.total()


def test_a_single_writer_replayed_after_its_commit_skips_the_batch(
    spark: SparkSession, tmp_path: Path
) -> None:
    expected = land_files(tmp_path / "in", [7, 8])
    checkpoint, table = tmp_path / "checkpoint", str(tmp_path / "devices")
    crashing = FailsOnce(DeltaOutput(), txn_version=1, after_writing=True)

    with pytest.raises(StreamingQueryException, match="the driver died after the commit"):
        stream(spark, tmp_path / "in", for_each_batch(crashing, table, app_id="one"), checkpoint)
    restarted = for_each_batch(crashing, table, app_id="one")
    stream(spark, tmp_path / "in", restarted, checkpoint)

    ((batch_id, replay),) = restarted.reports
    assert (batch_id, replay.committed) == (1, False)
    assert rows_of(spark, Path(table)) == expected


@pytest.mark.parametrize("shape", ["split", "single"])
def test_a_stream_started_over_under_its_old_app_id_is_refused_not_skipped(
    spark: SparkSession, tmp_path: Path, shape: str
) -> None:
    # Started over: checkpoint deleted, so its micro-batch ids start at 0 again. Under the old
    # app id Delta takes batch 0 for a replay of the old batch 0 and skips it, and every batch
    # after it, in silence; a replay is only ever of the last batch, so an output already
    # holding a *later* batch of the app id says the checkpoint is not the one it wrote with.
    land_files(tmp_path / "in", [3, 4])
    checkpoint, table = tmp_path / "checkpoint", tmp_path / "raw"

    def sink() -> MicroBatchWriter:
        if shape == "split":
            return two_branches(tmp_path, "delta").for_each_batch(app_id="devices")
        return for_each_batch(DeltaOutput(), str(table), app_id="devices.raw")

    stream(spark, tmp_path / "in", sink(), checkpoint)
    shutil.rmtree(checkpoint)

    with pytest.raises(StreamingQueryException, match="new app_id") as refused:
        stream(spark, tmp_path / "in", started_over := sink(), checkpoint)

    assert isinstance(started_over.failure, InvalidArgumentError)
    assert "already committed txnVersion=1 >= 1" in str(refused.value)
    assert delta.read(spark, str(table)).count() == 7  # nothing written twice either
