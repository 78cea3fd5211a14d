"""Deletion vectors: rows a DV removes are never returned, by either reader.

DVs are written per the protocol (`tests/_delta_tables.py`): RoaringBitmapArrays inline (Z85) and in
`deletion_vector_<uuid>.bin` files, on partitioned tables, replaced by a second delete, and read
from a checkpoint. Every read is compared in full with deltalake's reader.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _delta_tables import TableBuilder
from deltalake import DeltaTable
from pyspark.sql import SparkSession
from test_delta_read_mapping import assert_reads_like_deltalake, both_readers, spark_rows

FIELDS = [("id", "long"), ("day", "date"), ("name", "string")]


def rows(start: int, count: int) -> list[dict[str, object]]:
    return [{"id": n, "name": f"n{n}"} for n in range(start, start + count)]


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "in-file"])
def test_deleted_rows_are_never_returned(spark: SparkSession, tmp_path: Path, inline: bool) -> None:
    table = TableBuilder(
        tmp_path, FIELDS, deletion_vectors=True, partition_columns=("day",), mapping="name"
    )
    first = table.add(rows(0, 10), {"day": "2024-01-01"})
    second = table.add(rows(10, 5), {"day": None})
    table.commit(first, second)
    removed, deleted_once = table.delete(first, [0, 3, 9], inline=inline)
    table.commit(removed, deleted_once)
    # A second delete replaces the file's DV with a larger one, stored the other way.
    deleted_again = table.delete(deleted_once, [0, 3, 4, 9], inline=not inline)
    table.commit(*deleted_again, *table.delete(second, [2], inline=inline))

    assert_reads_like_deltalake(spark, tmp_path, duckdb=False)  # partitioned, mapped
    assert_reads_like_deltalake(spark, tmp_path, version=1)
    for frame in both_readers(spark, tmp_path):
        ids = sorted(row["id"] for row in spark_rows(frame))
        assert ids == [1, 2, 5, 6, 7, 8, 10, 11, 13, 14]


def test_deletions_read_from_a_checkpoint(spark: SparkSession, tmp_path: Path) -> None:
    table = TableBuilder(tmp_path, FIELDS, deletion_vectors=True)
    first = table.add(rows(0, 6))
    table.commit(first)
    table.commit(*table.delete(first, [1, 2], inline=False))
    DeltaTable(str(tmp_path)).create_checkpoint()
    table.commit(table.add(rows(6, 2)))

    assert_reads_like_deltalake(spark, tmp_path)
    for frame in both_readers(spark, tmp_path):
        assert sorted(row["id"] for row in spark_rows(frame)) == [0, 3, 4, 5, 6, 7]
