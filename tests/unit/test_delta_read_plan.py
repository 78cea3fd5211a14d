"""The read planner (no Spark): what it refuses, and what it takes from the log."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from _delta_tables import TableBuilder

from spark_flow.delta import _read
from spark_flow.errors import UnsupportedDeltaFeatureError


def test_a_reader_feature_outside_the_allow_list_is_refused_by_name(tmp_path: Path) -> None:
    table = TableBuilder(tmp_path, [("v", "long")], reader_features=("variantShredding-preview",))
    table.commit(table.add([{"v": 1}]))

    with pytest.raises(UnsupportedDeltaFeatureError) as caught:
        _read.plan(str(tmp_path))

    assert "variantShredding-preview" in caught.value.feature


def test_the_plan_maps_logical_to_physical_names_and_keeps_log_partition_values(
    tmp_path: Path,
) -> None:
    table = TableBuilder(
        tmp_path, [("id", "long"), ("p", "date")], mapping="name", partition_columns=("p",)
    )
    table.commit(table.add([{"id": 1}], {"p": "2024-01-02"}, relative="p=1999-01-01/f.parquet"))

    plan = _read.plan(str(tmp_path))

    assert table.physical("id") != "id"
    assert [f.name for f in plan.physical.fields] == [table.physical("id")]
    assert str(plan.files[0].partition_values["p"]) == "2024-01-02"
    assert plan.files[0].deleted_rows is None


def test_a_mapping_mode_without_the_protocol_feature_reads_logical_names(tmp_path: Path) -> None:
    # deltalake writes such tables when deletion vectors are enabled too: the mode and physical
    # names in the log, logical names in the files, and a reader-3 protocol without
    # columnMapping, which makes the mode inert.
    from deltalake import write_deltalake

    configuration = {"delta.columnMapping.mode": "name", "delta.enableDeletionVectors": "true"}
    write_deltalake(str(tmp_path), pa.table({"id": [1]}), configuration=configuration)

    assert [f.name for f in _read.plan(str(tmp_path)).physical.fields] == ["id"]


def test_the_arrow_reader_plans_and_reads_a_table_on_an_object_store(s3_bucket: str) -> None:
    # The path format("delta") takes where Spark has no filesystem for s3://: no JAR needed.
    from deltalake import write_deltalake
    from pyspark.sql.pandas.types import to_arrow_schema

    from spark_flow.delta import _read_arrow

    path = f"{s3_bucket}/t"
    write_deltalake(path, pa.table({"id": [1, 2], "p": ["a b", None]}), partition_by=["p"])

    plan = _read.plan(path, predicate="p = 'a b'")
    schema = to_arrow_schema(plan.schema, timezone="UTC")
    rows = [r for f in plan.files for r in _read_arrow.read_file(plan, f, schema).to_pylist()]

    assert (len(plan.files), plan.files_in_table) == (1, 2)
    assert rows == [{"id": 1, "p": "a b"}]


def test_deletion_vectors_and_skipping_find_files_with_special_characters(tmp_path: Path) -> None:
    table = TableBuilder(tmp_path, [("id", "long")], deletion_vectors=True)
    add = table.add([{"id": 1}, {"id": 2}], relative="a b%20c=d/f 1.parquet")
    table.commit(add)
    table.commit(*table.delete(add, [0], inline=True))

    plan = _read.plan(str(tmp_path), predicate="id > 0")

    assert len(plan.files) == 1
    assert plan.files[0].deleted_rows is not None
    assert list(plan.files[0].deleted_rows) == [0]
