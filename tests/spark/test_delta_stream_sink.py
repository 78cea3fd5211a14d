"""`writeStream.format("delta")` without the connector: every micro-batch exactly once.

The input is a folder of JSON files read as a stream, run to the end of what is there
(`availableNow`), as a scheduled streaming job runs.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.errors import StreamingQueryException
from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from spark_flow import delta

SCHEMA = "id long, type string"
CHECKPOINTS = "spark.sql.streaming.checkpointLocation"


def _drop(folder: Path, name: str, ids: range) -> None:
    folder.mkdir(exist_ok=True)
    lines = [json.dumps({"id": i, "type": "phone" if i % 2 else "tablet"}) for i in ids]
    (folder / name).write_text("\n".join(lines) + "\n")


def _run(
    spark: SparkSession,
    source: Path,
    table: Path,
    checkpoint: Path | None,
    *,
    partition_by: str | None = None,  # the partitionBy option, e.g. "type"
    query_name: str | None = None,
) -> StreamingQuery:
    writer = (
        spark.readStream.schema(SCHEMA).option("maxFilesPerTrigger", 1).json(str(source))
        .writeStream.format("delta").trigger(availableNow=True)
    )  # fmt: skip
    for name, value in (("checkpointLocation", checkpoint), ("partitionBy", partition_by)):
        if value is not None:
            writer = writer.option(name, str(value))
    if query_name is not None:
        writer = writer.queryName(query_name)
    query = writer.start(str(table))
    query.awaitTermination()
    return query


def _query_id(checkpoint: Path) -> str:
    """The id Spark keeps in the checkpoint for the query's whole life (its restarts included)."""
    return str(json.loads((checkpoint / "metadata").read_text())["id"])


def _data_files(table: Path) -> set[str]:
    return {p.name for p in table.rglob("*.parquet")}


def _committed_files(table: Path) -> set[str]:
    names = set()
    for commit in sorted((table / "_delta_log").glob("*.json")):
        for line in commit.read_text().splitlines():
            add = json.loads(line).get("add")
            if add is not None:
                names.add(Path(add["path"]).name)
    return names


def test_each_micro_batch_commits_once_as_a_transaction_of_the_query(
    spark: SparkSession, tmp_path: Path
) -> None:
    source, table, checkpoint = tmp_path / "in", tmp_path / "table", tmp_path / "checkpoint"
    _drop(source, "a.json", range(0, 5))
    _drop(source, "b.json", range(5, 8))
    _run(spark, source, table, checkpoint)
    _drop(source, "c.json", range(8, 10))
    restarted = _run(spark, source, table, checkpoint)  # a restart picks up where it stopped

    assert sorted(r.id for r in delta.read(spark, str(table)).collect()) == list(range(10))
    # The query's id is the app id, as delta-spark's sink has it: the connector and this
    # source skip each other's batches of one query.
    assert restarted.id == _query_id(checkpoint)
    assert delta.transaction_version(str(table), restarted.id) == 2  # batches 0, 1, 2
    assert _data_files(table) == _committed_files(table)


def test_a_batch_replayed_after_its_commit_writes_nothing(
    spark: SparkSession, tmp_path: Path
) -> None:
    source, table, checkpoint = tmp_path / "in", tmp_path / "table", tmp_path / "checkpoint"
    _drop(source, "a.json", range(0, 5))
    _run(spark, source, table, checkpoint)
    # A crash after the Delta commit, before Spark recorded the batch as done.
    for entry in ("0", ".0.crc"):  # the commit log's entry, and its checksum beside it
        (checkpoint / "commits" / entry).unlink()

    _run(spark, source, table, checkpoint)

    assert sorted(r.id for r in delta.read(spark, str(table)).collect()) == list(range(5))
    assert delta.table_info(str(table)).version == 0  # type: ignore[union-attr]
    assert _data_files(table) == _committed_files(table)  # the replay's files removed


def test_a_query_started_over_from_a_new_checkpoint_writes_its_batches_again(
    spark: SparkSession, tmp_path: Path
) -> None:
    # Starting a stream over: its checkpoint deleted, the table emptied. The new checkpoint is
    # a new query (a new id), whose batch 0 is not the old query's batch 0: delta-spark writes
    # it, where an app id taken from the checkpoint's location skipped every batch in silence.
    source, table, checkpoint = tmp_path / "in", tmp_path / "table", tmp_path / "checkpoint"
    _drop(source, "a.json", range(0, 3))
    _drop(source, "b.json", range(3, 5))
    _run(spark, source, table, checkpoint)
    shutil.rmtree(checkpoint)
    delta.write(spark.createDataFrame([], SCHEMA), str(table), mode="overwrite")

    _run(spark, source, table, checkpoint)

    assert sorted(r.id for r in delta.read(spark, str(table)).collect()) == list(range(5))


def test_a_stream_into_a_partitioned_table_keeps_its_partitioning(
    spark: SparkSession, tmp_path: Path
) -> None:
    source, table, checkpoint = tmp_path / "in", tmp_path / "table", tmp_path / "checkpoint"
    delta.write(spark.createDataFrame([(-1, "phone")], SCHEMA), str(table), partition_by=["type"])
    _drop(source, "a.json", range(0, 4))

    _run(spark, source, table, checkpoint, partition_by=None)  # the table's partitioning

    assert sorted(r.id for r in delta.read(spark, str(table)).collect()) == [-1, 0, 1, 2, 3]
    assert {p.name for p in table.iterdir() if p.is_dir() and "=" in p.name} == {
        "type=phone", "type=tablet"
    }  # fmt: skip


def test_a_stream_creating_a_table_takes_the_partitioning_its_option_declares(
    spark: SparkSession, tmp_path: Path
) -> None:
    # Spark never passes writeStream.partitionBy(...) to a Python data source: the option does.
    source, checkpoint = tmp_path / "in", tmp_path / "checkpoint"
    _drop(source, "a.json", range(0, 4))

    _run(spark, source, tmp_path / "by-type", checkpoint, partition_by="type")
    _run(spark, source, tmp_path / "plain", tmp_path / "other")

    by_type = delta.table_info(str(tmp_path / "by-type"))
    plain = delta.table_info(str(tmp_path / "plain"))
    assert by_type is not None
    assert by_type.partition_columns == ("type",)
    assert plain is not None
    assert plain.partition_columns == ()
    rows = delta.read(spark, str(tmp_path / "by-type")).collect()
    assert sorted(r.id for r in rows) == [0, 1, 2, 3]


def test_a_checkpoint_from_the_session_conf_needs_the_query_named(
    spark: SparkSession, tmp_path: Path
) -> None:
    # That conf never reaches a Python data source, and below it an unnamed query gets a new
    # folder at each start: its batches would not be known again after a restart.
    source, table = tmp_path / "in", tmp_path / "table"
    _drop(source, "a.json", range(0, 3))
    _drop(source, "b.json", range(3, 5))
    spark.conf.set(CHECKPOINTS, str(tmp_path / "checkpoints"))
    try:
        with pytest.raises(StreamingQueryException, match=re.escape(CHECKPOINTS)) as caught:
            _run(spark, source, table, None)
        assert ".queryName(" in str(caught.value)

        _run(spark, source, table, None, query_name="devices_stream")
        assert (tmp_path / "checkpoints" / "devices_stream" / "commits").is_dir()
        # Started over under its name: its batch 0 is no replay of the table's batch 1, and
        # skipping it (and batch 1) would write nothing in silence.
        shutil.rmtree(tmp_path / "checkpoints" / "devices_stream")
        with pytest.raises(StreamingQueryException, match="a new name") as again:
            _run(spark, source, table, None, query_name="devices_stream")
        assert "holds its micro-batch 1" in str(again.value)
    finally:
        spark.conf.unset(CHECKPOINTS)

    assert sorted(r.id for r in delta.read(spark, str(table)).collect()) == list(range(5))


@pytest.fixture(autouse=True)
def _no_query_left(spark: SparkSession) -> Iterator[None]:
    yield
    for query in spark.streams.active:
        query.stop()
