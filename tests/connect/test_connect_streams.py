"""`writeStream.format("delta")` from a Spark Connect client: the query runs on the server, and
each micro-batch is still one Delta transaction of the query, committed once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from spark_flow import delta


def _drop(folder: Path, name: str, ids: range) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text("".join(json.dumps({"id": i}) + "\n" for i in ids))


def _run(spark: SparkSession, source: Path, table: Path, checkpoint: Path) -> None:
    query = (
        spark.readStream.schema("id long").option("maxFilesPerTrigger", 1).json(str(source))
        .writeStream.format("delta").option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True).start(str(table))
    )  # fmt: skip
    query.awaitTermination()


def test_a_stream_commits_each_micro_batch_once_and_a_replay_writes_nothing(
    connect_spark: SparkSession, tmp_path: Path
) -> None:
    source, table, checkpoint = tmp_path / "in", tmp_path / "table", tmp_path / "checkpoint"
    _drop(source, "a.json", range(0, 5))
    _drop(source, "b.json", range(5, 8))
    _run(connect_spark, source, table, checkpoint)
    # A crash after batch 1's Delta commit, before Spark recorded the batch as done.
    for entry in ("1", ".1.crc"):
        (checkpoint / "commits" / entry).unlink()

    _run(connect_spark, source, table, checkpoint)

    assert sorted(r.id for r in delta.read(connect_spark, str(table)).collect()) == list(range(8))
    assert delta.table_info(str(table)).version == 1  # type: ignore[union-attr]
    app_id = json.loads((checkpoint / "metadata").read_text())["id"]  # the query's id
    assert delta.transaction_version(str(table), app_id) == 1
    committed = {
        Path(json.loads(line)["add"]["path"]).name
        for commit in (table / "_delta_log").glob("*.json")
        for line in commit.read_text().splitlines()
        if '"add"' in line
    }
    assert {p.name for p in table.rglob("*.parquet")} == committed  # the replay's files removed


def test_a_split_branch_of_a_registered_output_type_writes_from_the_servers_foreach_batch(
    connect_spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spark_flow import outputs
    from spark_flow.fan_out import Branch, ParallelSplit
    from spark_flow.testing import read_output

    # The function runs in the server's Python, whose registry holds the built-in types only.
    monkeypatch.setattr(outputs, "_REGISTRY", dict(outputs._REGISTRY))
    outputs.register_output("lines", lambda: outputs.FileOutput("json"))
    split = ParallelSplit("lines", [Branch("copy", str(tmp_path / "copy"), writer="lines")])
    _drop(tmp_path / "in", "a.json", range(3))
    query = (
        connect_spark.readStream.schema("id long").json(str(tmp_path / "in"))
        .writeStream.foreachBatch(split.for_each_batch())
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .trigger(availableNow=True).start()
    )  # fmt: skip
    query.awaitTermination()

    assert read_output(connect_spark, "json", str(tmp_path / "copy")).count() == 3


@pytest.fixture(autouse=True)
def _no_query_left(connect_spark: SparkSession) -> Iterator[None]:
    yield
    for query in connect_spark.streams.active:
        query.stop()
