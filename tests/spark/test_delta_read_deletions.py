"""Deletion vectors: rows a DV removes are never returned, by either reader.

DVs are written per the protocol (`tests/_delta_tables.py`): RoaringBitmapArrays inline (Z85) and in
`deletion_vector_<uuid>.bin` files, on partitioned tables, replaced by a second delete, and read
from a checkpoint. Every read is compared in full with deltalake's reader.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from _delta_tables import TableBuilder
from deltalake import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from test_delta_read_mapping import assert_reads_like_deltalake, both_readers, spark_rows

from spark_flow import delta
from spark_flow.delta import _deletions, _read_spark
from spark_flow.delta._deletions import BUCKET_BITS

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


def bucketed_table(root: Path) -> tuple[TableBuilder, list[int]]:
    """Two files with DVs: one spanning four bitmap buckets, one with every row deleted.

    The big file has deletions in its first, third and last (partial) buckets, none in its
    second; the first and last rows of a bucket and of the file are among them. A third file
    has no DV. Returns the builder and the ids a read must return.
    """
    size = 1 << BUCKET_BITS
    table = TableBuilder(root, [("id", "long"), ("name", "string")], deletion_vectors=True)
    big = table.add(rows(0, 3 * size + 100))
    gone = table.add(rows(100_000, 10))
    plain = table.add(rows(200_000, 3))
    table.commit(big, gone, plain)
    removed = [0, 1, 63, 64, size - 1, 2 * size, 2 * size + 4000, 3 * size, 3 * size + 99]
    table.commit(*table.delete(big, removed, inline=False))
    table.commit(*table.delete(gone, list(range(10)), inline=True))
    kept = [*sorted(set(range(3 * size + 100)) - set(removed)), 200_000, 200_001, 200_002]
    return table, kept


def test_deletions_across_bitmap_buckets(spark: SparkSession, tmp_path: Path) -> None:
    _, kept = bucketed_table(tmp_path)

    assert_reads_like_deltalake(spark, tmp_path)
    for frame in both_readers(spark, tmp_path):
        assert sorted(row["id"] for row in spark_rows(frame)) == kept


@pytest.mark.parametrize(
    "case",
    [
        ((), "the file's size"),
        (("sizes",), "the file's path hash"),
        (("sizes", "hashes"), "(file, bucket)"),
    ],
)
def test_files_sharing_a_key_join_on_the_next_exact_one(
    spark: SparkSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    case: tuple[tuple[str, ...], str],
) -> None:
    collide, joined_on = case
    # Keys alike on the driver only: a join on them would match none of the keys Spark computes.
    if "sizes" in collide:
        monkeypatch.setattr(_read_spark, "_local_sizes", lambda files: [5] * len(files))
    if "hashes" in collide:
        monkeypatch.setattr(_deletions, "path_hash", lambda name: 7)
    _, kept = bucketed_table(tmp_path)

    with caplog.at_level(logging.DEBUG, logger=_deletions.__name__):
        frame = delta.read(spark, str(tmp_path))
    assert sorted(row["id"] for row in spark_rows(frame)) == kept
    assert f"joined on {joined_on}" in caplog.text


def test_the_exact_join_on_a_partitioned_table(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fallback joins on the file path, which the partition values join on too.
    monkeypatch.setattr(_read_spark, "_local_sizes", lambda files: [5] * len(files))
    monkeypatch.setattr(_deletions, "path_hash", lambda name: 7)
    table = TableBuilder(tmp_path, FIELDS, deletion_vectors=True, partition_columns=("day",))
    first = table.add(rows(0, 10), {"day": "2024-01-01"})
    second = table.add(rows(10, 5), {"day": None})
    table.commit(first, second)
    table.commit(
        *table.delete(first, [0, 9], inline=True), *table.delete(second, [1], inline=False)
    )

    read = spark_rows(delta.read(spark, str(tmp_path)))
    assert sorted((row["id"], str(row["day"])) for row in read) == [
        *((n, "2024-01-01") for n in range(1, 9)),
        *((n, "None") for n in (10, 12, 13, 14)),
    ]


def test_file_sizes_come_from_the_files_not_the_log(spark: SparkSession, tmp_path: Path) -> None:
    # A writer that logged wrong sizes: keys from the log's sizes would match no row.
    table = TableBuilder(tmp_path, [("id", "long"), ("name", "string")], deletion_vectors=True)
    first, second = table.add(rows(0, 20)), table.add(rows(20, 20))
    first["size"] = second["size"] = 1234
    table.commit(first, second)
    table.commit(
        *table.delete(first, [0, 19], inline=True), *table.delete(second, [5], inline=True)
    )

    expected = sorted(set(range(40)) - {0, 19, 25})
    assert sorted(row["id"] for row in spark_rows(delta.read(spark, str(tmp_path)))) == expected


@pytest.mark.parametrize("deleted", [False, True], ids=["plain", "deletion-vector"])
def test_a_column_named_like_sparks_row_index_keeps_its_values(
    spark: SparkSession, tmp_path: Path, deleted: bool
) -> None:
    # Spark's Parquet scan would fill it with row indexes: such a table is read with Arrow.
    name = _deletions.ROW_INDEX_COLUMN
    table = TableBuilder(tmp_path, [("id", "long"), (name, "long")], deletion_vectors=True)
    first = table.add([{"id": n, name: 100 + n} for n in range(6)])
    table.commit(first)
    if deleted:
        table.commit(*table.delete(first, [1, 4], inline=True))

    assert_reads_like_deltalake(spark, tmp_path)
    read = sorted((row["id"], row[name]) for row in spark_rows(delta.read(spark, str(tmp_path))))
    ids = [0, 2, 3, 5] if deleted else range(6)
    assert read == [(n, 100 + n) for n in ids]


def test_row_indexes_from_the_row_based_parquet_reader(spark: SparkSession, tmp_path: Path) -> None:
    _, kept = bucketed_table(tmp_path)
    spark.conf.set("spark.sql.parquet.enableVectorizedReader", "false")
    try:
        frame = delta.read(spark, str(tmp_path))
        assert sorted(row["id"] for row in spark_rows(frame)) == kept
    finally:
        spark.conf.unset("spark.sql.parquet.enableVectorizedReader")


def test_the_driver_hashes_file_paths_as_spark_does(spark: SparkSession) -> None:
    names = ["file:/tmp/t/part-0.parquet", "s3a://b/d%3D1/é ü.parquet", "", "x" * 200]
    hashed = spark.createDataFrame([(n,) for n in names], "f string").select(F.xxhash64("f"))
    assert [row[0] for row in hashed.collect()] == [_deletions.path_hash(n) for n in names]


def test_rows_past_the_keyed_range_join_on_the_exact_file() -> None:
    far = np.array([1, 1 << 40], dtype=np.int64)
    near = np.array([1, 2], dtype=np.int64)
    assert _deletions.file_prefixes(["a", "b"], [near, far], [10, 20]) is None
    assert _deletions.file_prefixes(["a", "b"], [near, near], [10, 20]) is not None


def test_sizes_too_large_for_the_key_fall_back_to_path_hashes() -> None:
    near = np.array([1, 2], dtype=np.int64)
    prefixes = _deletions.file_prefixes(["a", "b"], [near, near], [10, 1 << 40])
    assert prefixes is not None
    assert prefixes[1] is False


def test_a_row_without_its_index_fails_the_read(spark: SparkSession) -> None:
    # Were Spark ever to leave the row index out, the row could be a deleted one.
    rows = spark.range(1).select(F.lit(None).cast("long").alias(_deletions.ROW_INDEX_COLUMN))
    keyed = rows.select(F.expr(_deletions._key_sql("5")))
    with pytest.raises(Exception, match="gave a row no index"):
        keyed.collect()


def test_a_file_split_over_several_tasks_keeps_its_row_indexes(
    spark: SparkSession, tmp_path: Path
) -> None:
    # Row groups of 1,000 rows, splits of 4 KiB: each task starts mid-file.
    table = TableBuilder(tmp_path, [("id", "long"), ("name", "string")], deletion_vectors=True)
    big = table.add(rows(0, 20_000), row_group_size=1_000)
    table.commit(big)
    removed = [0, 999, 1_000, 12_345, 19_999]
    table.commit(*table.delete(big, removed, inline=False))

    spark.conf.set("spark.sql.files.maxPartitionBytes", "4096")
    try:
        frame = delta.read(spark, str(tmp_path))
        assert frame.rdd.getNumPartitions() > 1
        assert sorted(row["id"] for row in spark_rows(frame)) == sorted(
            set(range(20_000)) - set(removed)
        )
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
