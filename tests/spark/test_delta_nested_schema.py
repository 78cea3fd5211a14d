"""Appends whose structs differ from the table's: nested fields in another order or spelling,
missing, or added with merge_schema. delta-spark accepts them; they were refused as a type
change. The files are written in the table's shape, so independent readers agree."""

from __future__ import annotations

from pathlib import Path

import pytest
from _duckdb_reader import duckdb_rows
from pyspark.sql import SparkSession

from spark_flow import delta
from spark_flow.errors import SchemaMismatchError

FIRST = (
    "SELECT 1 AS id, named_struct('a', 1, 'b', 'x', 'c', array(named_struct('p', 1, 'q', 2))) AS s"
)
# Fields reordered, `b` missing, `p` missing inside the array's structs.
REORDERED = "SELECT 2 AS id, named_struct('c', array(named_struct('q', 20)), 'a', 2) AS s"
# Through format("delta"), columns swapped and `b` spelled in another case.
RESPELLED = "SELECT named_struct('B', 'y', 'a', 3) AS s, 3 AS id"


def test_structs_in_another_order_or_lacking_fields_are_appended_in_the_tables_shape(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = str(tmp_path / "devices")
    delta.write(spark.sql(FIRST), path)
    delta.write(spark.sql(REORDERED), path)
    spark.sql(RESPELLED).write.format("delta").mode("append").save(path)

    expected = [
        {"id": 1, "s": {"a": 1, "b": "x", "c": [{"p": 1, "q": 2}]}},
        {"id": 2, "s": {"a": 2, "b": None, "c": [{"p": None, "q": 20}]}},
        {"id": 3, "s": {"a": 3, "b": "y", "c": None}},
    ]
    read = delta.read(spark, path).orderBy("id").collect()
    assert [r.asDict(recursive=True) for r in read] == expected
    assert sorted(duckdb_rows(path), key=lambda r: r["id"]) == expected
    assert delta.read(spark, path).schema.simpleString() == spark.sql(FIRST).schema.simpleString()


def test_merge_schema_adds_nested_fields_and_without_it_they_are_refused(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = str(tmp_path / "devices")
    delta.write(spark.sql(FIRST), path)
    wider = (
        "SELECT 2 AS id, "
        "named_struct('a', 2, 'd', 4.5, 'c', array(named_struct('q', 3, 'r', 'new'))) AS s"
    )

    with pytest.raises(SchemaMismatchError, match="struct<a:int,b:string"):
        delta.write(spark.sql(wider), path)
    delta.write(spark.sql(wider), path, merge_schema=True)

    read = delta.read(spark, path).orderBy("id").collect()
    assert read[1].s.asDict(recursive=True) == {
        "a": 2,
        "b": None,
        "c": [{"p": None, "q": 3, "r": "new"}],
        "d": 4.5,
    }
    assert (read[0].s.d, read[0].s.c[0].r) == (None, None)
    assert [r["s"]["d"] for r in sorted(duckdb_rows(path), key=lambda r: r["id"])] == [None, 4.5]


def test_a_nested_type_change_is_still_refused(spark: SparkSession, tmp_path: Path) -> None:
    path = str(tmp_path / "devices")
    delta.write(spark.sql(FIRST), path)

    with pytest.raises(SchemaMismatchError):
        delta.write(spark.sql("SELECT 2 AS id, named_struct('a', 'text') AS s"), path,
                    merge_schema=True)  # fmt: skip
