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
