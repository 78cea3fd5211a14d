"""Other engines skip files of the tables spark_flow writes, thanks to the statistics it writes.

Two independent readers: DuckDB's `delta_scan` (delta-kernel-rs; its extension from PyPI, see
`tests/_duckdb_reader.py`) and deltalake (its pyarrow dataset and its DataFusion query engine),
whose own writer is also the reference for what the statistics must say.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from _duckdb_reader import duckdb_files_scanned, duckdb_rows
from deltalake import DeltaTable, QueryBuilder, write_deltalake
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_flow import delta

BATCHES = 4
ROWS = 10


def _batch(spark: SparkSession, batch: int) -> DataFrame:
    """ROWS rows with ids batch*ROWS.. and every kind of column statistics treat differently."""
    return (
        spark.range(batch * ROWS, (batch + 1) * ROWS, numPartitions=1)
        .select(
            F.col("id"),
            F.concat(F.lit("device-" + "x" * 30 + "-"), F.col("id").cast("string")).alias("name"),
            F.timestamp_micros(F.lit(1_704_067_200_123_456) + F.col("id")).alias("ts"),
            F.date_add(F.lit("2024-01-01").cast("date"), F.col("id").cast("int")).alias("day"),
            (F.col("id") / 4).cast("decimal(10,2)").alias("price"),
            (F.col("id") * 0.5).alias("value"),
            (F.col("id") % 2 == 0).alias("even"),
            F.struct(F.col("id").alias("a"), F.lit(None).cast("string").alias("b")).alias("st"),
        )
        .withColumn("name", F.when(F.col("id") % 3 == 0, None).otherwise(F.col("name")))
    )


@pytest.fixture(scope="module")
def sorted_table(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("stats") / "table")
    for batch in range(BATCHES):
        delta.write(_batch(spark, batch), path, app_id="stats", txn_version=batch)
    return path


def _files_in_plan(table: DeltaTable, where: str) -> int:
    plan = pa.table(
        QueryBuilder()
        .register("t", table)
        .execute(f"EXPLAIN SELECT * FROM t WHERE {where}")
        .read_all()
    )
    text = "\n".join(str(value) for value in plan.column("plan").to_pylist())
    return len(set(re.findall(r"[\w-]+\.parquet", text)))


def test_deltalake_skips_the_files_whose_statistics_exclude_a_filter(sorted_table: str) -> None:
    table = DeltaTable(sorted_table)
    dataset = table.to_pyarrow_dataset()
    assert len(list(dataset.get_fragments())) == BATCHES
    last_batch = pc.field("id") >= (BATCHES - 1) * ROWS
    assert len(list(dataset.get_fragments(filter=last_batch))) == 1
    assert _files_in_plan(table, f"id >= {(BATCHES - 1) * ROWS}") == 1
    assert _files_in_plan(table, "day < DATE '2024-01-05'") == 1
    assert dataset.to_table(filter=last_batch).num_rows == ROWS


def test_duckdb_skips_the_files_whose_statistics_exclude_a_filter(sorted_table: str) -> None:
    last_batch = f"id >= {(BATCHES - 1) * ROWS}"

    assert duckdb_files_scanned(sorted_table, last_batch) == (1, BATCHES)
    assert duckdb_files_scanned(sorted_table, "day < DATE '2024-01-05'") == (1, BATCHES)
    assert duckdb_files_scanned(sorted_table, "price = 3.25") == (1, BATCHES)  # 13 / 4
    assert sorted(row["id"] for row in duckdb_rows(sorted_table, last_batch)) == list(
        range((BATCHES - 1) * ROWS, BATCHES * ROWS)
    )


def _stats(table: DeltaTable) -> dict[str, Any]:
    [row] = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    return {k: v for k, v in row.items() if k.split(".")[0] in ("min", "max", "null_count")}


def test_the_statistics_match_what_deltalake_writes_for_the_same_data(
    spark: SparkSession, tmp_path: Path
) -> None:
    data = _batch(spark, 0)
    ours_path, theirs_path = str(tmp_path / "ours"), str(tmp_path / "theirs")
    delta.write(data, ours_path)
    write_deltalake(theirs_path, data.toArrow())
    ours, theirs = _stats(DeltaTable(ours_path)), _stats(DeltaTable(theirs_path))

    # delta-spark's truncation rules, which deltalake does not apply: a 32-character prefix
    # for strings (the max with a tie-breaker) and the timestamp max rounded up to the next ms.
    assert theirs["min.name"].startswith(ours["min.name"])
    assert len(ours["min.name"]) == 32
    assert ours["max.name"] > theirs["max.name"]
    assert ours["max.name"].endswith("\ufffd")
    assert ours["max.ts"] - theirs["max.ts"] == pa.scalar(1_000, pa.duration("us")).as_py()
    # Booleans: deltalake bounds them, delta-spark does not (no skipping on them); we follow it.
    assert ours["min.even"] is None
    assert theirs["min.even"] is False
    exempt = {"min.name", "max.name", "max.ts", "min.even", "max.even"}
    assert {k: v for k, v in ours.items() if k not in exempt} == {
        k: v for k, v in theirs.items() if k not in exempt
    }
    assert ours["null_count.name"] == 4
    assert ours["min.id"] == 0
    assert ours["max.id"] == ROWS - 1


def test_the_delta_data_source_writes_statistics_too(spark: SparkSession, tmp_path: Path) -> None:
    path = str(tmp_path / "table")
    _batch(spark, 2).write.format("delta").mode("append").save(path)
    stats = _stats(DeltaTable(path))
    assert (stats["min.id"], stats["max.id"]) == (2 * ROWS, 3 * ROWS - 1)
    assert str(stats["min.day"]) == "2024-01-21"
    assert stats["null_count.name"] == 3
    assert stats["min.value"] is None  # Arrow's writer leaves NaN out of its bounds: none kept


def test_text_that_is_not_utf8_is_written_without_a_string_bound(
    spark: SparkSession, tmp_path: Path
) -> None:
    # Spark keeps the bytes of text it reads (a binary file among text lines), invalid UTF-8
    # included: the write must not fail on decoding the footer's bounds; the column gets none.
    source = tmp_path / "lines.txt"
    source.write_bytes(b"plain\n\xff\xfe\x00broken\n")
    table = str(tmp_path / "table")

    result = delta.write(spark.read.text(str(source)), table)

    assert result.rows_written == 2
    stats = [a["stats"] for a in _adds(table)]
    assert all('"value"' not in s.split('"nullCount"')[0] for s in stats)  # no min/max of value
    assert delta.read(spark, table).count() == 2


def _adds(table: str) -> list[dict[str, Any]]:
    return [
        json.loads(line)["add"]
        for commit in sorted(Path(table, "_delta_log").glob("*.json"))
        for line in commit.read_text().splitlines()
        if '"add"' in line
    ]


def test_a_column_named_like_a_nested_field_keeps_its_own_statistics(
    spark: SparkSession, tmp_path: Path
) -> None:
    # A top-level `x.y` and the field `y` of a struct `x` are two columns whose footer paths
    # both read "x.y": counted as one, every row of `x.y` looked null and readers skipped it.
    path = str(tmp_path / "table")
    df = spark.createDataFrame([(20, (None,))], "`x.y` long, x struct<y: long>")

    delta.write(df.coalesce(1), path)

    [stats] = [json.loads(add["stats"]) for add in _adds(path)]
    assert stats["nullCount"] == {"x.y": 0, "x": {"y": 1}}
    assert stats["minValues"] == stats["maxValues"] == {"x.y": 20}
    # deltalake keeps the file; DuckDB 1.5.5's delta_scan finds no row whatever the statistics.
    assert _files_in_plan(DeltaTable(path), '"x.y" = 20') == 1
