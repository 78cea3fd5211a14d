"""Writes to column-mapped tables (`name`, `id`) on the delta-rs backend, per the protocol.

Each table is made column-mapped by another writer (`tests/_delta_tables.py`, as delta-spark
would), its columns renamed and dropped, then written by `delta.write` (Spark's writer) or
`format("delta")` (Arrow in Python workers). Every result is read in full by three readers:
ours, deltalake's and DuckDB's (`delta_scan`); the new files must store physical names and
field ids, the log key partition values and statistics by physical names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _delta_tables import FIELD_ID, NESTED_FIELDS, PHYSICAL, TableBuilder
from _duckdb_reader import duckdb_rows
from deltalake import DeltaTable
from pyspark.sql import SparkSession

from spark_flow import delta
from spark_flow.errors import ConfigError, UnsupportedDeltaFeatureError

FIELDS = [*NESTED_FIELDS[:2], ("gone", "string"), *NESTED_FIELDS[2:]]  # `gone` is dropped
SCHEMA = (
    "key long, p string, s struct<x: long, y: string>, arr array<struct<a: int>>, "
    "m map<string, struct<b: string>>"
)


def logical_rows(start: int, count: int, p: str) -> list[dict[str, Any]]:
    """Rows of the table after the rename (`id` -> `key`) and the drop (`gone`)."""
    return [
        {
            "key": n,
            "p": p,
            "s": {"x": n * 10, "y": f"y{n}"} if n % 3 else None,
            "arr": [{"a": n}, None],
            "m": {"k": {"b": f"b{n}"}, "n": None},
        }
        for n in range(start, start + count)
    ]


def mapped_table(
    root: Path, mode: str, *, partitioned: bool, features: bool = True
) -> TableBuilder:
    """A column-mapped table with rows in it, then `id` renamed to `key` and `gone` dropped;
    `features=False`: on the legacy protocol (reader 2, writer 5)."""
    partition_columns = ("p",) if partitioned else ()
    table = TableBuilder(
        root, FIELDS, mapping=mode, features=features, partition_columns=partition_columns
    )
    old = [
        {**row, "id": row["key"], "gone": "x", "m": list(row["m"].items())}
        for row in logical_rows(0, 3, "a")
    ]
    table.commit(table.add(old, {"p": "a"} if partitioned else None))
    table.rename("id", "key")
    table.drop("gone")
    return table


def readers(spark: SparkSession, root: Path, *, duckdb: bool) -> list[list[dict[str, Any]]]:
    """The table as each reader reads it, rows sorted (maps as lists of pairs)."""
    ours = delta.read(spark, str(root)).toArrow().to_pylist()
    theirs = pa.table(DeltaTable(str(root)).scan()).to_pylist()
    found = [ours, theirs, *([duckdb_rows(root)] if duckdb else [])]
    return [as_read(rows) for rows in found]


def as_read(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`rows` sorted, each map as its pairs in key order (Spark keeps no order of a dict's)."""
    return sorted(
        ({**r, "m": None if r["m"] is None else sorted(dict(r["m"]).items())} for r in rows),
        key=repr,
    )


def new_files(root: Path, before: set[str]) -> list[Path]:
    return [p for p in root.rglob("*.parquet") if p.relative_to(root).as_posix() not in before]


def assert_stored_physically(table: TableBuilder, files: list[Path]) -> None:
    """Each file holds the data columns under their physical names with their column ids as
    Parquet field ids, nested ones too."""
    expected = {
        f["metadata"][PHYSICAL]: f["metadata"][FIELD_ID]
        for f in table.schema["fields"]
        if f["name"] not in table.partition_columns
    }
    s = table.field("s")
    assert files
    for file in files:
        schema = pq.read_schema(file)
        ids = {f.name: int(f.metadata[b"PARQUET:field_id"]) for f in schema}
        assert ids == expected
        inner = schema.field(s["metadata"][PHYSICAL]).type
        assert [(f.name, int(f.metadata[b"PARQUET:field_id"])) for f in inner] == [
            (f["metadata"][PHYSICAL], f["metadata"][FIELD_ID]) for f in s["type"]["fields"]
        ]


def last_commit(root: Path) -> list[dict[str, Any]]:
    latest = max((root / "_delta_log").glob("*.json"))
    return [json.loads(line) for line in latest.read_text().splitlines()]


# Each mode and each writer once: Spark's writer and Arrow's get their names from one mapping.
@pytest.mark.parametrize(("mode", "writer"), [("name", "write"), ("id", "format")])
def test_append_stores_physical_names_and_field_ids_read_alike_by_three_readers(
    spark: SparkSession, tmp_path: Path, mode: str, writer: str
) -> None:
    table = mapped_table(tmp_path, mode, partitioned=False)
    before = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet")}
    rows = logical_rows(10, 4, "b")
    df = spark.createDataFrame(rows, SCHEMA).coalesce(1)  # one file: its statistics known
    if writer == "write":
        delta.write(df, str(tmp_path), app_id="loader", txn_version=1)
    else:
        df.write.format("delta").mode("append").save(str(tmp_path))

    ours, deltalake_rows, duck = readers(spark, tmp_path, duckdb=True)
    assert ours == deltalake_rows == duck == as_read(logical_rows(0, 3, "a") + rows)
    assert_stored_physically(table, new_files(tmp_path, before))
    stats = json.loads(next(a["add"]["stats"] for a in last_commit(tmp_path) if "add" in a))
    x, y = (f["metadata"][PHYSICAL] for f in table.field("s")["type"]["fields"])
    assert stats["minValues"] == {
        table.physical("key"): 10,
        table.physical("p"): "b",
        table.physical("s"): {x: 100, y: "y10"},
    }


def test_partitioned_append_replay_and_partition_overwrite_on_the_legacy_protocol(
    spark: SparkSession, tmp_path: Path
) -> None:
    table = mapped_table(tmp_path, "id", partitioned=True, features=False)
    b_rows = logical_rows(10, 2, "b")
    df = spark.createDataFrame(b_rows, SCHEMA)
    first = delta.write(df, str(tmp_path), app_id="loader", txn_version=1)
    replay = delta.write(df, str(tmp_path), app_id="loader", txn_version=1)
    assert first.committed
    assert not replay.committed
    a_rows = logical_rows(20, 1, "a")
    delta.write(
        spark.createDataFrame(a_rows, SCHEMA), str(tmp_path), mode="overwrite",
        replace_where={"p": "a"},
    )  # fmt: skip

    files = [
        a.get("add") or a["remove"] for a in last_commit(tmp_path) if a.keys() & {"add", "remove"}
    ]
    assert len(files) == 2  # the new file, and the old one of the replaced partition
    assert all(file["partitionValues"] == {table.physical("p"): "a"} for file in files)
    ours, deltalake_rows = readers(spark, tmp_path, duckdb=False)
    assert ours == deltalake_rows == as_read(a_rows + b_rows)
    assert delta.read(spark, str(tmp_path)).where("p = 'b' AND key = 11").count() == 1


def test_merge_schema_gives_new_columns_and_nested_fields_the_next_ids(
    spark: SparkSession, tmp_path: Path
) -> None:
    mapped_table(tmp_path, "id", partitioned=False)
    before = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet")}
    wider = spark.createDataFrame(
        [(7, "c", (70, "y7", True), "new")],
        "key long, p string, s struct<x: long, y: string, z: boolean>, extra string",
    ).coalesce(1)

    delta.write(wider, str(tmp_path), merge_schema=True, app_id="loader", txn_version=1)

    logged = json.loads(DeltaTable(str(tmp_path)).schema().to_json())
    fields = {f["name"]: f for f in logged["fields"]}
    z = fields["s"]["type"]["fields"][-1]
    # Ten columns had ids, `gone` (dropped) included: the new ones take 11 and 12, in order.
    assert (z["name"], z["metadata"][FIELD_ID]) == ("z", 11)
    assert fields["extra"]["metadata"][FIELD_ID] == 12
    configuration = DeltaTable(str(tmp_path)).metadata().configuration
    assert configuration["delta.columnMapping.maxColumnId"] == "12"
    (file,) = new_files(tmp_path, before)
    stored = pq.read_schema(file)
    extra = stored.field(fields["extra"]["metadata"][PHYSICAL])
    assert extra.metadata[b"PARQUET:field_id"] == b"12"
    ours, deltalake_rows, duck = readers(spark, tmp_path, duckdb=True)
    assert ours == deltalake_rows == duck
    new = next(r for r in ours if r["key"] == 7)
    assert (new["s"], new["extra"]) == ({"x": 70, "y": "y7", "z": True}, "new")
    assert next(r for r in ours if r["key"] == 1)["s"]["z"] is None


def test_overwrite_schema_is_refused_before_any_file(spark: SparkSession, tmp_path: Path) -> None:
    mapped_table(tmp_path, "name", partitioned=False)
    other = spark.createDataFrame([(1, "new")], "key long, extra string")
    version = DeltaTable(str(tmp_path)).version()

    with pytest.raises(UnsupportedDeltaFeatureError, match="overwrite_schema") as caught:
        delta.write(other, str(tmp_path), mode="overwrite", overwrite_schema=True)

    assert "merge_schema" in caught.value.fix
    assert DeltaTable(str(tmp_path)).version() == version
    assert not list(tmp_path.rglob("_spark_flow_staging"))


def test_a_stream_adding_a_column_commits_each_micro_batch_under_one_mapping(
    spark: SparkSession, tmp_path: Path
) -> None:
    # The query's tasks write every micro-batch for the plan made as it starts; each commit
    # plans again, and the column the first one adds must be named as the files name it.
    table = TableBuilder(tmp_path / "table", [("id", "long"), ("type", "string")], mapping="name")
    table.commit(table.add([{"id": 0, "type": "old"}]))
    source = tmp_path / "in"
    source.mkdir()
    for n in (1, 2):
        line = {"id": n, "type": "phone", "extra": f"e{n}"}
        (source / f"{n}.json").write_text(json.dumps(line) + "\n")

    (
        spark.readStream.schema("id long, type string, extra string")
        .option("maxFilesPerTrigger", 1).json(str(source))
        .writeStream.format("delta").trigger(availableNow=True)
        .option("checkpointLocation", str(tmp_path / "checkpoint")).option("mergeSchema", "true")
        .start(str(table.root)).awaitTermination()
    )  # fmt: skip

    rows = sorted(pa.table(DeltaTable(str(table.root)).scan()).to_pylist(), key=repr)
    expected = [{"id": 0, "type": "old", "extra": None}] + [
        {"id": n, "type": "phone", "extra": f"e{n}"} for n in (1, 2)
    ]
    assert rows == sorted(expected, key=repr)
    assert sorted(delta.read(spark, str(table.root)).toArrow().to_pylist(), key=repr) == rows


def test_an_id_mapped_write_without_parquet_field_ids_is_refused(
    spark: SparkSession, tmp_path: Path
) -> None:
    mapped_table(tmp_path, "id", partitioned=False)
    version = DeltaTable(str(tmp_path)).version()
    spark.conf.set("spark.sql.parquet.fieldId.write.enabled", "false")
    try:
        with pytest.raises(ConfigError) as caught:
            delta.write(spark.createDataFrame(logical_rows(5, 1, "b"), SCHEMA), str(tmp_path))
    finally:
        spark.conf.unset("spark.sql.parquet.fieldId.write.enabled")

    assert caught.value.source == "spark.sql.parquet.fieldId.write.enabled"
    assert DeltaTable(str(tmp_path)).version() == version
