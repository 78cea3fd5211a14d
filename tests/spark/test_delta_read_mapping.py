"""Column mapping (`name`, `id`; legacy and table-features protocols) read right by both readers.

Each table is written per the protocol (`tests/_delta_tables.py`): the files store physical names
(`col-<uuid>`) and field ids, the log the logical ones. Every read is compared in full with
deltalake's own reader (DataFusion), at each version: before and after a rename and a drop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from _delta_tables import NESTED_FIELDS, TableBuilder
from _duckdb_reader import duckdb_rows
from deltalake import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from spark_flow import delta


def rows(start: int, count: int, p: str | None) -> list[dict[str, Any]]:
    return [
        {
            "id": n,
            "p": p,
            "s": {"x": n * 10, "y": f"y{n}"} if n % 3 else None,
            "arr": [{"a": n}, None, {"a": -n}],
            "m": [("k", {"b": f"b{n}"}), ("n", None)],
        }
        for n in range(start, start + count)
    ]


def deltalake_rows(root: Path, version: int | None = None) -> list[dict[str, Any]]:
    """The table as deltalake reads it: the independent reader every test compares with."""
    table = DeltaTable(str(root), version=version)
    return sorted(pa.table(table.scan()).to_pylist(), key=repr)


def spark_rows(frame: DataFrame) -> list[dict[str, Any]]:
    return sorted(frame.toArrow().to_pylist(), key=repr)


def both_readers(spark: SparkSession, root: Path, version: int | None = None) -> list[DataFrame]:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return [delta.read(spark, str(root), version=version), reader.load(str(root))]


def assert_reads_like_deltalake(
    spark: SparkSession, root: Path, version: int | None = None, *, duckdb: bool = True
) -> None:
    """Both our readers and DuckDB (the latest version) read what deltalake reads.

    `duckdb=False` for partitioned column-mapped tables: DuckDB 1.5.5 reads their partition
    columns as null (their `partitionValues` are keyed by physical name, as the protocol says;
    deltalake agrees).
    """
    expected = deltalake_rows(root, version)
    assert expected  # a fixture that reads empty proves nothing
    for frame in both_readers(spark, root, version):
        assert spark_rows(frame) == expected
    if duckdb and version is None:
        assert sorted(duckdb_rows(root), key=repr) == expected


@pytest.mark.parametrize("features", [True, False], ids=["reader3", "legacy-reader2"])
@pytest.mark.parametrize("mode", ["name", "id"])
def test_mapped_nested_columns_read_by_physical_name_across_rename_and_drop(
    spark: SparkSession, tmp_path: Path, mode: str, features: bool
) -> None:
    table = TableBuilder(
        tmp_path, NESTED_FIELDS, mapping=mode, features=features, partition_columns=("p",)
    )
    table.commit(
        table.add(rows(0, 5, "a"), {"p": "a"}),
        table.add(rows(5, 3, None), {"p": None}, relative="no/hive/layout.parquet"),
    )
    before_rename = table.version
    table.rename("id", "key")
    table.commit(table.add([{**r, "key": r["id"]} for r in rows(8, 2, "b")], {"p": "b"}))
    table.drop("s")

    for version in (before_rename, before_rename + 2, None):
        assert_reads_like_deltalake(spark, tmp_path, version, duckdb=False)  # partitioned
    latest = delta.read(spark, str(tmp_path))
    assert latest.columns == ["key", "p", "arr", "m"]
    assert latest.where("key = 9").first()["m"] == {"k": ("b9",), "n": None}
