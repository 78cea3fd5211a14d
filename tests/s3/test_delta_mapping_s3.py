"""A column-mapped table on an object store: Arrow workers write physical names and field ids,
the columns a write adds are committed by a conditional put, deltalake reads what we read."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from _delta_tables import FIELD_ID, PHYSICAL, TableBuilder
from _s3_tables import committed_files, open_table, table_rows
from pyarrow.fs import LocalFileSystem, copy_files
from pyspark.sql import SparkSession

from spark_flow import delta, storage


def test_merge_schema_append_to_a_mapped_table_in_a_bucket(
    spark: SparkSession, s3_bucket: str, tmp_path: Path
) -> None:
    built = TableBuilder(tmp_path, [("id", "long"), ("s", [("x", "long")])], mapping="name")
    built.commit(built.add([{"id": 1, "s": {"x": 10}}]))
    built.rename("id", "key")
    table = f"{s3_bucket}/mapped"
    store, location = storage.filesystem(table)
    copy_files(str(tmp_path), location, LocalFileSystem(), store)
    before = committed_files(table)
    wider = spark.createDataFrame([(2, (20,), "new")], "key long, s struct<x: long>, extra string")

    delta.write(wider, table, merge_schema=True, app_id="loader", txn_version=1)
    replay = delta.write(wider, table, merge_schema=True, app_id="loader", txn_version=1)

    assert not replay.committed
    expected = [
        {"key": 1, "s": {"x": 10}, "extra": None},
        {"key": 2, "s": {"x": 20}, "extra": "new"},
    ]
    assert table_rows(table, order_by="key") == expected
    assert sorted(delta.read(spark, table).toArrow().to_pylist(), key=repr) == expected
    logged = json.loads(open_table(table).schema().to_json())
    fields = {f["name"]: f["metadata"] for f in logged["fields"]}
    (written,) = committed_files(table) - before
    with storage.open_input_file(storage.join(table, written)) as source:
        stored = pq.read_schema(source)
    assert {f.name: int(f.metadata[b"PARQUET:field_id"]) for f in stored} == {
        m[PHYSICAL]: m[FIELD_ID] for m in fields.values()
    }
    assert fields["extra"][FIELD_ID] == 4  # after key, s and s.x
