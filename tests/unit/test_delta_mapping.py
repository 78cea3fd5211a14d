"""A write's column mapping, planned from the log alone: ids and physical names of the columns it
adds, statistics columns and NOT NULL paths between logical and physical names, Arrow files."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from _delta_tables import FIELD_ID, PHYSICAL, TableBuilder
from deltalake import DeltaTable
from pyspark.sql.types import (
    ArrayType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
)

from spark_flow.delta import _evolve, _mapping, rs
from spark_flow.delta._types import WriteRequest
from spark_flow.errors import UnknownValueError, UnsupportedDeltaFeatureError

S = StructType([StructField("x", LongType())])
ARR = ArrayType(StructType([StructField("a", IntegerType())]))
M = MapType(StringType(), StructType([StructField("b", StringType())]))
PLANNED = StructType(
    [
        StructField("id", LongType()),
        StructField("s", StructType([*S.fields, StructField("z", StringType())])),
        StructField("arr", ARR),
        StructField("m", M),
        StructField("extra", StringType()),
    ]
)


@pytest.fixture
def table(tmp_path: Path) -> TableBuilder:
    fields = [("id", "long"), ("s", [("x", "long")]),
              ("arr", {"type": "array", "elementType": [("a", "integer")], "containsNull": True}),
              ("m", {"type": "map", "keyType": "string", "valueType": [("b", "string")],
                     "valueContainsNull": True})]  # fmt: skip
    return TableBuilder(tmp_path, fields, mapping="id")


def mapping_of(table: TableBuilder) -> _mapping.ColumnMapping:
    found = _mapping.mapping_of(WriteRequest(str(table.root)), DeltaTable(str(table.root)), PLANNED)
    assert found is not None
    return found


def test_new_columns_take_the_next_ids_and_names_every_plan_of_the_change_repeats(
    table: TableBuilder,
) -> None:
    mapping = mapping_of(table)

    assert mapping.added == ("s.z", "extra")
    assert mapping.max_column_id == 9  # seven known: id, s, s.x, arr, arr.a, m, m.b
    z = mapping.physical[table.physical("s")].dataType.fields[-1]  # type: ignore[attr-defined]
    assert z.metadata == {"parquet.field.id": 8}
    assert z.name.startswith("col-")
    assert mapping.physical.fieldNames()[:4] == [table.physical(c) for c in ("id", "s", "arr", "m")]
    # A retry, a stream's next micro-batch, a racing writer: the files they wrote still match.
    assert mapping_of(table).physical == mapping.physical


def test_statistics_columns_and_not_null_paths_cross_between_logical_and_physical_names(
    table: TableBuilder,
) -> None:
    mapping = mapping_of(table)
    s, x = table.physical("s"), table.field("s")["type"]["fields"][0]["metadata"][PHYSICAL]
    arr, a = table.physical("arr"), table.field("arr")["type"]["elementType"]["fields"][0]

    assert mapping.indexed(("ID", "`s`.x", "gone"), PLANNED) == (table.physical("id"), f"{s}.{x}")
    assert mapping.indexed(5, PLANNED) == 5
    assert mapping.logical_path(f"{s}.{x}", PLANNED) == "s.x"
    assert mapping.logical_path(f"{arr}.element.{a['metadata'][PHYSICAL]}", PLANNED) == (
        "arr.element.a"
    )


def test_arrow_rows_are_stored_under_physical_names_with_field_ids_at_every_depth(
    table: TableBuilder,
) -> None:
    mapping = mapping_of(table)
    rows = pa.table(
        {
            "id": [1, 2],
            "s": [{"x": 1, "z": "a"}, None],
            "arr": [[{"a": 1}, None], None],
            "m": pa.array(
                [[("k", {"b": "v"})], None], pa.map_(pa.string(), pa.struct([("b", pa.string())]))
            ),
            "extra": ["e", None],
        }
    )

    stored = _mapping.physical_table(rows, mapping, partition_by=["extra"])

    def ids(field: pa.Field) -> tuple[str, int | None]:
        raw = (field.metadata or {}).get(b"PARQUET:field_id")
        return field.name, None if raw is None else int(raw)

    assert [ids(f) for f in stored.schema][:4] == [
        (table.physical(c), table.field(c)["metadata"][FIELD_ID]) for c in ("id", "s", "arr", "m")
    ]
    assert stored.schema.field(4).name == "extra"  # a partition column: not stored in files
    element = stored.schema.field(2).type.value_type
    assert (
        ids(element.field(0))[1]
        == table.field("arr")["type"]["elementType"]["fields"][0]["metadata"][FIELD_ID]
    )
    assert stored.column(1).to_pylist()[1] is None
    assert stored.column(3).to_pylist() == [
        [("k", {ids(f)[0]: "v" for f in stored.schema.field(3).type.item_type})],
        None,
    ]


def test_files_planned_before_another_writer_added_the_column_its_own_way_are_refused(
    table: TableBuilder,
) -> None:
    request = WriteRequest(str(table.root), merge_schema=True)
    before = rs.plan_write(request, PLANNED)
    # delta-spark names a new column by a random UUID: not the name our files gave `extra`.
    table.schema["fields"].append(table._field("extra", "string"))
    table.commit(table._metadata())
    after = rs.plan_write(request, PLANNED)
    assert isinstance(before, rs.WritePlan)
    assert isinstance(after, rs.WritePlan)

    assert _evolve.same_mapping(before, before) is before
    with pytest.raises(UnsupportedDeltaFeatureError, match="racing a commit"):
        _evolve.same_mapping(before, after)


def test_a_mapping_mode_delta_does_not_know_is_refused_by_name(tmp_path: Path) -> None:
    TableBuilder(tmp_path, [("id", "long")], mapping="names")

    with pytest.raises(UnknownValueError) as caught:
        rs.plan_write(WriteRequest(str(tmp_path)), StructType([StructField("id", LongType())]))

    assert (caught.value.key, caught.value.value_received) == ("delta.columnMapping.mode", "names")
    assert "Did you mean 'name'?" in str(caught.value)


def test_added_columns_whose_version_another_commit_took_are_committed_on_top_of_it(
    table: TableBuilder,
) -> None:
    plan = rs.plan_write(WriteRequest(str(table.root), merge_schema=True, app_id="a",
                                      txn_version=1), PLANNED)  # fmt: skip
    assert isinstance(plan, rs.WritePlan)
    raced = table.commit(table._metadata())  # another writer's commit takes the next version

    result = rs.commit_written(plan, [])

    assert result.table_version == raced + 2  # our columns at raced + 1, then the data
    logged = DeltaTable(str(table.root))
    assert logged.metadata().configuration["delta.columnMapping.maxColumnId"] == "9"
    assert logged.transaction_version("a") == 1
    fields = {f.name: f.metadata for f in logged.schema().fields}
    assert fields["extra"][FIELD_ID] == 9
    assert mapping_of(table).physical == plan.mapping.physical  # type: ignore[union-attr]
