"""Every shape of log the protocol allows reads the same through `delta.read` as through deltalake.

Checkpoints are built the ways the protocol allows (tests/_delta_logs.py), and the commits they
replace are deleted as Delta's metadata cleanup does, so the reader has to use the checkpoint.
The independent reader is deltalake's DataFusion query engine over the same table.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import _delta_logs as logs
import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable, QueryBuilder, write_deltalake
from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession

from spark_flow import delta
from spark_flow.errors import InvalidDeltaLogError
from spark_flow.testing import count_spark_jobs

Row = tuple[tuple[str, Any], ...]


def independent_rows(path: str, version: int | None = None) -> list[Row]:
    table = DeltaTable(path) if version is None else DeltaTable(path, version=version)
    data = pa.table(QueryBuilder().register("t", table).execute("select * from t").read_all())
    return sorted(tuple(sorted(row.items())) for row in data.to_pylist())


def assert_reads_alike(spark: SparkSession, path: str, version: int | None = None) -> None:
    ours = [
        tuple(sorted(r.asDict().items()))
        for r in delta.read(spark, path, version=version).collect()
    ]
    assert sorted(ours) == independent_rows(path, version)


def clean_up_before(path: str, version: int) -> None:
    """Delete the commits before `version`, as Delta's metadata cleanup does after a checkpoint."""
    for old in range(version):
        logs.commit_file(path, old).unlink()


def classic(path: str) -> None:
    DeltaTable(path).create_checkpoint()
    (Path(path) / "_delta_log" / "_last_checkpoint").unlink(missing_ok=False)


@pytest.mark.parametrize(
    "build",
    [
        lambda p: DeltaTable(p).create_checkpoint(),
        classic,  # a checkpoint found by listing, without its _last_checkpoint hint
        lambda p: logs.multi_part_checkpoint(p, parts=3),
        lambda p: logs.v2_checkpoint(p, form="json", sidecars=False),
        lambda p: logs.v2_checkpoint(p, form="json", sidecars=True),
        lambda p: logs.v2_checkpoint(p, form="parquet", sidecars=False),
        lambda p: logs.v2_checkpoint(p, form="parquet", sidecars=True),
    ],
    ids=["classic", "no-hint", "multi-part", "v2-json", "v2-json-sidecars", "v2-parquet",
         "v2-parquet-sidecars"],
)  # fmt: skip
def test_a_checkpointed_log_reads_like_deltalake_reads_it(
    spark: SparkSession, tmp_path: Path, build: Any
) -> None:
    path = logs.table(tmp_path / "devices", commits=5, partition_by=["day"])
    build(path)
    clean_up_before(path, 4)
    logs.table(Path(path), commits=2, partition_by=["day"])  # commits after the checkpoint

    assert delta.read(spark, path).count() == 7
    assert_reads_alike(spark, path)


def test_a_log_compaction_file_reads_like_deltalake_reads_it(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = logs.table(tmp_path / "devices", commits=6)
    write_deltalake(path, pd.DataFrame({"id": [9], "day": ["d9"]}), mode="overwrite")
    logs.table(Path(path), commits=1)
    logs.compaction_file(path, 1, 6)

    assert delta.read(spark, path).count() == 2
    assert_reads_alike(spark, path)
    assert_reads_alike(spark, path, version=3)


def test_time_travel_crosses_a_schema_change(spark: SparkSession, tmp_path: Path) -> None:
    path = logs.table(tmp_path / "devices", commits=2)
    write_deltalake(
        path, pd.DataFrame({"id": [7], "day": ["d7"], "model": ["pixel"]}), mode="append",
        schema_mode="merge",
    )  # fmt: skip

    assert delta.read(spark, path, version=1).columns == ["id", "day"]
    assert delta.read(spark, path).columns == ["id", "day", "model"]
    for version in (1, 2):
        assert_reads_alike(spark, path, version)


def test_time_travel_crosses_a_partition_change(spark: SparkSession, tmp_path: Path) -> None:
    path = logs.table(tmp_path / "devices", commits=2)
    write_deltalake(
        path, pd.DataFrame({"id": [7, 8], "day": ["d7", "d8"]}), mode="overwrite",
        schema_mode="overwrite", partition_by=["day"],
    )  # fmt: skip

    assert delta.table_info(path).partition_columns == ("day",)  # type: ignore[union-attr]
    for version in (1, 2):
        assert_reads_alike(spark, path, version)


def test_both_readers_refuse_a_broken_log_with_our_error(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = logs.table(tmp_path / "devices", commits=3)
    logs.commit_file(path, 1).unlink()

    with pytest.raises(InvalidDeltaLogError) as caught:
        delta.read(spark, path)
    with pytest.raises(InvalidDeltaLogError) as through_source:
        spark.read.format("delta").load(path).collect()

    assert caught.value.version == through_source.value.version == 1
    # Also what pyspark would have raised, for code written against delta-spark.
    assert isinstance(through_source.value, AnalysisException)
    assert str(through_source.value) == str(caught.value)
    assert "00000000000000000001.json) is missing" in str(through_source.value)
    assert pickle.loads(pickle.dumps(through_source.value)).args == caught.value.args
    assert_reads_alike(spark, path, version=0)


def test_a_missing_data_file_fails_before_any_spark_job(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = logs.table(tmp_path / "devices", commits=2)
    Path(DeltaTable(path, version=1).file_uris()[0]).unlink()

    with count_spark_jobs(spark) as jobs, pytest.raises(InvalidDeltaLogError, match="data file"):
        delta.read(spark, path)
    assert jobs.count == 0
    with pytest.raises(InvalidDeltaLogError, match="data file"):
        spark.read.format("delta").load(path).collect()
