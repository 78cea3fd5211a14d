"""Tables another engine (deltalake) created, appended to by spark_flow and read back by others.

Each table is made with deltalake's own writer, written to through `delta.write` and
`format("delta")`, then read by deltalake and DuckDB (`tests/_duckdb_reader.py`): what the
table declares (its columns' spelling, NOT NULL) must hold after our commit.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import _delta_logs as logs
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _duckdb_reader import duckdb_rows
from deltalake import DeltaTable, write_deltalake
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_flow import delta
from spark_flow.errors import (
    InvalidArgumentError,
    SchemaMismatchError,
    UnsupportedDeltaFeatureError,
)
from spark_flow.testing import count_spark_jobs


def _rows(path: Path, key: str = "id") -> list[dict[str, Any]]:
    """The table's rows as deltalake reads them, checked against DuckDB's reading."""
    ours = sorted(DeltaTable(str(path)).to_pyarrow_table().to_pylist(), key=lambda r: r[key])
    assert sorted(duckdb_rows(path), key=lambda r: r[key]) == ours
    return ours


def _append(df: DataFrame, path: Path, how: str, mode: str = "append") -> None:
    if how == "delta.write":
        delta.write(df, str(path), mode=mode)
    else:
        df.write.format("delta").mode(mode).save(str(path))


@pytest.mark.parametrize("how", ["delta.write", "format"])
def test_columns_spelled_in_another_case_land_in_the_tables_columns(
    spark: SparkSession, tmp_path: Path, how: str
) -> None:
    # Delta matches columns case-insensitively; readers look a file's column up by its exact
    # name, so a file of `ID` read as nulls in the table's `id`.
    path = tmp_path / "t"
    write_deltalake(path, pa.table({"id": pa.array([1], pa.int64()), "Name": ["a"]}))

    _append(spark.createDataFrame([(2, "b")], "ID long, name string"), path, how)

    assert _rows(path) == [{"id": 1, "Name": "a"}, {"id": 2, "Name": "b"}]
    stats = pa.table(DeltaTable(str(path)).get_add_actions(flatten=True)).to_pydict()
    assert set(stats["null_count.id"]) == {0}  # not "every row null": skipping stays right


@pytest.mark.parametrize("how", ["delta.write", "format"])
def test_a_partition_column_spelled_in_another_case_fills_the_tables(
    spark: SparkSession, tmp_path: Path, how: str
) -> None:
    path = tmp_path / "t"
    table = pa.table({"id": pa.array([1], pa.int64()), "day": ["2024-01-01"]})
    write_deltalake(path, table, partition_by=["day"])

    _append(spark.createDataFrame([(2, "2024-01-02")], "id long, DAY string"), path, how)
    delta.write(spark.createDataFrame([(3, "2024-01-03")], "id long, day string"), str(path),
                partition_by=["DAY"])  # fmt: skip

    assert [r["day"] for r in _rows(path)] == ["2024-01-01", "2024-01-02", "2024-01-03"]
    values = pa.table(DeltaTable(str(path)).get_add_actions(flatten=True))["partition.day"]
    assert sorted(set(values.to_pylist())) == ["2024-01-01", "2024-01-02", "2024-01-03"]


def _not_null_table(path: Path) -> None:
    schema = pa.schema(
        [
            pa.field("id", pa.int64(), nullable=False, metadata={"comment": "the key"}),
            pa.field("part", pa.string(), nullable=False),
            pa.field("st", pa.struct([pa.field("a", pa.int32(), nullable=False)]), False),
            pa.field("note", pa.string()),
        ]
    )
    rows = {"id": [1], "part": ["x"], "st": [{"a": 1}], "note": [None]}
    write_deltalake(path, pa.table(rows, schema=schema), partition_by=["part"])


NOT_NULL_DDL = "id long, part string, st struct<a: int>, note string"


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ((None, "x", (2,), "n"), "id"),
        ((2, "x", (None,), "n"), "st.a"),
        ((2, "x", None, "n"), "st.a"),
        ((2, None, (2,), "n"), "part"),
    ],
    ids=["column", "nested-field", "its-struct", "partition"],
)
def test_a_null_in_a_not_null_column_is_refused_and_nothing_committed(
    spark: SparkSession, tmp_path: Path, row: tuple[Any, ...], column: str
) -> None:
    path = tmp_path / "t"
    _not_null_table(path)
    files = sorted(p for p in path.rglob("*.parquet"))
    df = spark.createDataFrame([(3, "x", (3,), None), row], NOT_NULL_DDL)

    with pytest.raises(SchemaMismatchError) as caught:
        delta.write(df, str(path))

    assert [c[0] for c in caught.value.conflicts] == [column]
    assert "not null" in str(caught.value)
    assert DeltaTable(str(path)).version() == 0
    assert sorted(p for p in path.rglob("*.parquet")) == files  # its files removed again


def test_format_delta_refuses_a_null_in_a_not_null_column(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = tmp_path / "t"
    _not_null_table(path)
    df = spark.createDataFrame([(None, "x", (3,), None)], NOT_NULL_DDL)

    with pytest.raises(Exception, match="not null"):
        df.write.format("delta").mode("append").save(str(path))

    assert DeltaTable(str(path)).version() == 0


@pytest.mark.parametrize("how", ["delta.write", "format"])
@pytest.mark.parametrize("mode", ["append", "overwrite"])
def test_rows_without_nulls_keep_a_not_null_tables_schema(
    spark: SparkSession, tmp_path: Path, how: str, mode: str
) -> None:
    # An overwrite commits a schema: the table's, NOT NULL and comments included, not the
    # all-nullable one Spark's DataFrame has.
    path = tmp_path / "t"
    _not_null_table(path)
    schema = DeltaTable(str(path)).schema().to_json()

    _append(spark.createDataFrame([(2, "y", (2,), None)], NOT_NULL_DDL), path, how, mode)

    assert [r["id"] for r in _rows(path)] == ([1, 2] if mode == "append" else [2])
    assert DeltaTable(str(path)).schema().to_json() == schema
    write_deltalake(path, DeltaTable(str(path)).to_pyarrow_table(), mode="append")
    assert len(DeltaTable(str(path)).to_pyarrow_table()) == (4 if mode == "append" else 2)


def test_arrow_workers_report_the_not_null_columns_their_files_hold_nulls_in(
    tmp_path: Path,
) -> None:
    # Object stores and routed writes: Python workers write the files, the driver commits
    # what their rows describe, so the finding must survive the trip as a row.
    from pyspark.sql.types import LongType, StructField, StructType

    from spark_flow.delta._files import FileWriter, WrittenFile

    schema = StructType([StructField("id", LongType(), False), StructField("v", LongType())])
    batch = pa.record_batch({"id": pa.array([1, None], pa.int64()), "v": [None, 2]})

    (written,) = FileWriter(str(tmp_path), "w", schema=schema).write([batch])

    assert WrittenFile.from_row(written.as_row()).null_columns == ("id",)


def test_replace_where_takes_a_boolean_partition_value_as_python_spells_it(
    spark: SparkSession, tmp_path: Path
) -> None:
    # The log spells it `true`; str(True) is `True`, which matched no file's value.
    path = tmp_path / "t"
    flags = pa.array([True, False, None])
    write_deltalake(
        path, pa.table({"id": pa.array([1, 2, 3], pa.int64()), "on": flags}), partition_by=["on"]
    )

    delta.write(
        spark.createDataFrame([(4, True)], "id long, on boolean"),
        str(path),
        mode="overwrite",
        replace_where={"on": True},
    )

    assert _rows(path) == [{"id": 2, "on": False}, {"id": 3, "on": None}, {"id": 4, "on": True}]


@pytest.mark.parametrize("how", ["delta.write", "format"])
def test_a_table_partitioned_by_binary_is_refused_before_any_file_is_written(
    spark: SparkSession, tmp_path: Path, how: str
) -> None:
    # format("delta") logged b"a" as the text "b'a'", which every reader takes as those 4 bytes;
    # Spark's writer fails on bytes no folder name holds.
    path = tmp_path / "t"
    table = pa.table({"id": pa.array([1], pa.int64()), "b": pa.array([b"a"], pa.binary())})
    write_deltalake(path, table, partition_by=["b"])
    files = sorted(path.rglob("*.parquet"))

    with pytest.raises(Exception, match="partition columns of type binary") as caught:
        _append(spark.createDataFrame([(2, b"a")], "id long, b binary"), path, how)

    if how == "delta.write":
        assert isinstance(caught.value, UnsupportedDeltaFeatureError)
    assert DeltaTable(str(path)).version() == 0
    assert sorted(path.rglob("*.parquet")) == files


def _nested_not_null_table(path: Path) -> None:
    # Footers cannot tell these apart: a null `a` counts there whether `st` is null (allowed)
    # or not (a violation), and an array's footer counts its null elements too.
    inner = pa.struct([pa.field("a", pa.int32(), nullable=False)])
    schema = pa.schema(
        [
            pa.field("id", pa.int64()),
            pa.field("st", inner),
            pa.field("tags", pa.list_(pa.string()), nullable=False),
        ]
    )
    write_deltalake(path, pa.table({"id": [1], "st": [None], "tags": [[None]]}, schema=schema))


NESTED_DDL = "id long, st struct<a: int>, tags array<string>"


@pytest.mark.parametrize("how", ["delta.write", "format"])
@pytest.mark.parametrize(
    ("row", "column"),
    [(((2, (None,), ["x"])), "st.a"), ((2, None, None), "tags")],
    ids=["field-of-a-present-struct", "array"],
)
def test_nulls_a_footer_cannot_see_are_refused_from_the_rows(
    spark: SparkSession, tmp_path: Path, how: str, row: tuple[Any, ...], column: str
) -> None:
    path = tmp_path / "t"
    _nested_not_null_table(path)
    allowed = (3, None, [None])  # `st` null (so its `a` too), an array holding a null

    with pytest.raises(Exception, match="not null") as caught:
        _append(spark.createDataFrame([allowed, row], NESTED_DDL), path, how)

    if how == "delta.write":
        assert isinstance(caught.value, SchemaMismatchError)
        assert [c[0] for c in caught.value.conflicts] == [column]
    assert DeltaTable(str(path)).version() == 0


@pytest.mark.parametrize("how", ["delta.write", "format"])
def test_nulls_a_nested_not_null_field_allows_are_appended(
    spark: SparkSession, tmp_path: Path, how: str
) -> None:
    path = tmp_path / "t"
    _nested_not_null_table(path)

    _append(spark.createDataFrame([(3, None, [None]), (4, (4,), [])], NESTED_DDL), path, how)

    # deltalake's own reader fails on these files (Arrow casts the null struct's null `a` to
    # NOT NULL without looking at the struct): DuckDB and ours read them.
    expected = [(1, None, [None]), (3, None, [None]), (4, {"a": 4}, [])]
    assert sorted((r["id"], r["st"], r["tags"]) for r in duckdb_rows(path)) == expected
    read = delta.read(spark, str(path)).collect()
    assert sorted((r.id, r.st and r.st.asDict(), r.tags) for r in read) == expected


def test_a_new_tables_fields_are_nullable_as_delta_spark_makes_them(
    spark: SparkSession, tmp_path: Path
) -> None:
    # Spark calls a struct of literals NOT NULL inside: kept, it would bind every later write.
    path = tmp_path / "t"
    first = spark.range(1).select("id", F.struct(F.lit(1).alias("a")).alias("st"))

    delta.write(first, str(path))
    delta.write(spark.createDataFrame([(2, (None,))], "id long, st struct<a: int>"), str(path))

    assert '"nullable":false' not in DeltaTable(str(path)).schema().to_json()
    assert [r["st"] for r in _rows(path)] == [{"a": 1}, {"a": None}]


@pytest.mark.parametrize(
    ("column", "kind"),
    [("NULL", "void"), ("interval 1 day", "interval day")],
    ids=["void", "interval"],
)
def test_a_column_of_a_type_delta_lacks_is_refused_before_any_spark_job(
    spark: SparkSession, tmp_path: Path, column: str, kind: str
) -> None:
    # A `void` column made a log no other reader opens (DuckDB: "Unsupported Delta table
    # type"); an interval failed deltalake's commit with its Rust backtrace as the message.
    path = tmp_path / "t"
    df = spark.range(2).withColumn("x", F.expr(column))

    with count_spark_jobs(spark) as jobs, pytest.raises(UnsupportedDeltaFeatureError) as caught:
        delta.write(df, str(path))

    assert f"'x': '{kind}'" in str(caught.value)
    assert jobs.count == 0
    assert not path.exists()


def test_columns_differing_in_case_only_are_refused_before_any_spark_job(
    spark: SparkSession, tmp_path: Path
) -> None:
    df = spark.range(1).select("id", F.col("id").alias("ID"))

    with count_spark_jobs(spark) as jobs, pytest.raises(InvalidArgumentError, match="'ID'"):
        delta.write(df, str(tmp_path / "t"))

    assert jobs.count == 0


def test_replace_where_takes_a_decimal_zero_as_spark_gives_it(
    spark: SparkSession, tmp_path: Path
) -> None:
    # A row's decimal zero is Decimal("0E-8"): its str() matched no file's `0.00000000`.
    path = tmp_path / "t"
    price = spark.createDataFrame(
        [(1, Decimal("0")), (2, Decimal("1.5"))], "id long, p decimal(10,8)"
    )
    delta.write(price, str(path), partition_by=["p"])
    zero = delta.read(spark, str(path)).where("id = 1").first()["p"]

    delta.write(
        spark.createDataFrame([(3, zero)], "id long, p decimal(10,8)"),
        str(path),
        mode="overwrite",
        replace_where={"p": zero},
    )

    assert [r["id"] for r in _rows(path)] == [2, 3]


def _not_null_elements_table(path: Path) -> None:
    """Arrays and maps whose elements and values the table declares NOT NULL
    (`containsNull=false`, `valueContainsNull=false`), in columns that may be null."""
    schema = pa.schema(
        [
            pa.field("id", pa.int64()),
            pa.field("tags", pa.list_(pa.field("item", pa.string(), nullable=False))),
            pa.field("attrs", pa.map_(pa.string(), pa.field("value", pa.int32(), nullable=False))),
        ]
    )
    write_deltalake(path, pa.table({"id": [1], "tags": [["a"]], "attrs": [[("k", 1)]]}, schema))


ELEMENTS_DDL = "id long, tags array<string>, attrs map<string, int>"


@pytest.mark.parametrize(
    ("how", "row", "column"),
    [
        ("delta.write", (2, ["b", None], None), "tags.element"),
        ("delta.write", (2, None, {"k": None}), "attrs.value"),
        ("format", (2, ["b", None], {"k": 2}), "tags.element"),
    ],
    ids=["array-element", "map-value", "format-array-element"],
)
def test_a_null_element_or_map_value_the_table_forbids_is_refused(
    spark: SparkSession, tmp_path: Path, how: str, row: tuple[Any, ...], column: str
) -> None:
    path = tmp_path / "t"
    _not_null_elements_table(path)
    files = sorted(p for p in path.rglob("*.parquet"))
    fine = (3, ["c"], {"k": 3})  # null arrays and maps stay allowed: only their contents are not
    df = spark.createDataFrame([fine, (4, None, None), row], ELEMENTS_DDL)

    with pytest.raises(Exception, match="not null") as caught:
        _append(df, path, how)

    if how == "delta.write":
        assert isinstance(caught.value, SchemaMismatchError)
        assert [c[0] for c in caught.value.conflicts] == [column]
    assert column in str(caught.value)
    assert DeltaTable(str(path)).version() == 0
    assert sorted(p for p in path.rglob("*.parquet")) == files  # its files removed again


def test_arrays_and_maps_without_null_contents_keep_the_tables_declarations(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = tmp_path / "t"
    _not_null_elements_table(path)

    delta.write(spark.createDataFrame([(2, ["b"], {"k": 2}), (3, None, None)], ELEMENTS_DDL),
                str(path))  # fmt: skip

    assert [r["tags"] for r in _rows(path)] == [["a"], ["b"], None]
    fields = {f.name: f.type for f in DeltaTable(str(path)).schema().fields}
    assert not fields["tags"].contains_null
    assert not fields["attrs"].value_contains_null


def test_a_v2_checkpoint_table_databricks_made_takes_both_writers_appends(
    spark: SparkSession, tmp_path: Path
) -> None:
    # Its UUID-named checkpoint and sidecar stay readable; the checkpoint after our commit is
    # a V2-spec one (a checkpointMetadata action), as a v2Checkpoint table requires.
    path = logs.table(tmp_path / "t", commits=1)
    logs.set_metadata(
        path, configuration={"delta.checkpointPolicy": "v2", "delta.checkpointInterval": "1"}
    )
    logs.v2_checkpoint(path, form="parquet", sidecars=True)

    for how in ("delta.write", "format"):
        _append(spark.createDataFrame([(7, how)], "id long, day string"), Path(path), how)

    assert sorted(r["day"] for r in duckdb_rows(path)) == ["d0", "delta.write", "format"]
    assert sorted(r.day for r in delta.read(spark, path).collect()) == [
        "d0", "delta.write", "format"
    ]  # fmt: skip
    checkpoint = pq.read_table(Path(path, "_delta_log", f"{2:020d}.checkpoint.parquet"))
    assert {"version": 2} in checkpoint.column("checkpointMetadata").to_pylist()
