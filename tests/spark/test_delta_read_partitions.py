"""Partition values come from the log's add actions, not from folder names.

The files of these tables lie where other writers put them: random prefixes, no `col=value/`
folders, folders that lie about the value, absolute `file:` URIs, names with special characters.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _delta_tables import TableBuilder
from pyspark.sql import SparkSession
from test_delta_read_mapping import (
    assert_reads_like_deltalake,
    both_readers,
    deltalake_rows,
    spark_rows,
)

PARTITION_TYPES = [
    ("s", "string"),
    ("l", "long"),
    ("i", "integer"),
    ("sh", "short"),
    ("b", "byte"),
    ("d", "double"),
    ("f", "float"),
    ("flag", "boolean"),
    ("day", "date"),
    ("ts", "timestamp"),
    ("ntz", "timestamp_ntz"),
    ("dec", "decimal(20,4)"),
]
VALUES = {
    "s": "a b:c/d%e=f é",
    "l": "-9000000000",
    "i": "7",
    "sh": "-3",
    "b": "12",
    "d": "1.5",
    "f": "-0.25",
    "flag": "true",
    "day": "2024-02-29",
    "ts": "2024-03-10 01:59:59.123456",
    "ntz": "2024-03-10 01:59:59",
    "dec": "1234567890123456.1234",
}


def test_every_partition_type_and_null_read_from_the_log(
    spark: SparkSession, tmp_path: Path
) -> None:
    names = tuple(name for name, _ in PARTITION_TYPES)
    table = TableBuilder(
        tmp_path,
        [("id", "long"), *PARTITION_TYPES],
        partition_columns=names,
        reader_features=("timestampNtz",),
    )
    table.commit(
        # Folders that say nothing, or lie: the log is the truth.
        table.add([{"id": 1}], VALUES, relative="x7/part-1.parquet"),
        table.add([{"id": 2}], dict.fromkeys(names), relative="s=wrong/l=1/part-2.parquet"),
        table.add([{"id": 3}], VALUES, relative="odd name [1] {x}.parquet"),
        table.add([{"id": 4}], {**VALUES, "s": ""}, absolute=True, relative="abs/p%20q.parquet"),
    )

    # deltalake's scan reads the empty partition value as '', delta-spark (and we) as null.
    expected = [{**row, "s": row["s"] or None} for row in deltalake_rows(tmp_path)]
    for frame in both_readers(spark, tmp_path):
        assert spark_rows(frame) == sorted(expected, key=repr)
        by_id = {row["id"]: row for row in spark_rows(frame)}
        assert by_id[1]["s"] == "a b:c/d%e=f é"
        assert by_id[2]["s"] is None
        assert by_id[4]["s"] is None


# Spark's file index drops files named like these even when it is handed them one by one, and
# Hadoop's local filesystem fails on a `:` in a file's name.
SPARK_MISREADS = ["_x.parquet", ".x.parquet", "_metadata_x.parquet", "x._COPYING_", "x:y.parquet"]


@pytest.mark.parametrize("partitioned", [False, True], ids=["plain", "partitioned"])
def test_files_spark_cannot_read_by_name_are_read(
    spark: SparkSession, tmp_path: Path, partitioned: bool
) -> None:
    table = TableBuilder(
        tmp_path, [("id", "long"), ("p", "string")], partition_columns=("p",) if partitioned else ()
    )
    values = {"p": "a"} if partitioned else None
    table.commit(
        table.add([{"id": 0, "p": "a"}], values, relative="plain.parquet"),
        *(table.add([{"id": n + 1, "p": "a"}], values, relative=f"dir/{name}")
          for n, name in enumerate(SPARK_MISREADS)),
    )  # fmt: skip

    assert_reads_like_deltalake(spark, tmp_path)
    for frame in both_readers(spark, tmp_path):
        assert sorted(row["id"] for row in spark_rows(frame)) == [0, 1, 2, 3, 4, 5]


def test_a_file_name_with_a_control_character_is_not_taken_for_missing(
    spark: SparkSession, tmp_path: Path
) -> None:
    # deltalake leaves `%09` encoded in the file names it lists (its paths cannot hold a tab),
    # and cannot read such a table itself: the expected rows are the values.
    table = TableBuilder(tmp_path, [("id", "long"), ("p", "string")], partition_columns=("p",))
    table.commit(
        table.add([{"id": 1}], {"p": "a\tb"}, relative="p=a\tb/x\ty.parquet"),
        table.add([{"id": 2}], {"p": "100%41"}, relative="p=100%41/z.parquet"),
    )

    for frame in both_readers(spark, tmp_path):
        assert spark_rows(frame) == [{"id": 1, "p": "a\tb"}, {"id": 2, "p": "100%41"}]
