"""Column mapping (Delta's `delta.columnMapping.mode` `name` or `id`) on the write path.

The protocol's "Writer Requirements for Column Mapping": data files store every column, nested
ones included, under its *physical name* and carry its `delta.columnMapping.id` as the Parquet
`field_id`; partition values and statistics in the log are keyed by physical names. The log's
schema keeps the logical (display) names, so a rename or a drop changes the log only.

`ColumnMapping` is a write's view of that: the table's columns after the write under their
physical names, each field's id in the metadata key Spark's Parquet writer turns into a
`field_id` (`parquet.field.id`, written while `spark.sql.parquet.fieldId.write.enabled` is true,
its default). Files are written from it by Spark (`physical_columns`) or Arrow
(`physical_table`); partition columns keep their logical names until the commit
(`logged_values`): they are not stored in files, and folder names mean nothing to Delta.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

import pyarrow as pa
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DataType, MapType, StructField, StructType

from spark_flow.delta._schema import as_nullable, same_type
from spark_flow.delta._stats import contained, split_unquoted
from spark_flow.errors import ConfigError, UnknownValueError, UnsupportedDeltaFeatureError

if TYPE_CHECKING:
    from deltalake import DeltaTable
    from deltalake.transaction import AddAction
    from pyspark.sql import DataFrame

    from spark_flow.delta._types import WriteRequest

MODE = "delta.columnMapping.mode"
PHYSICAL_NAME = "delta.columnMapping.physicalName"
COLUMN_ID = "delta.columnMapping.id"
MAX_COLUMN_ID = "delta.columnMapping.maxColumnId"
SPARK_FIELD_ID = "parquet.field.id"
_ARROW_FIELD_ID = b"PARQUET:field_id"
_FIELD_ID_WRITE = "spark.sql.parquet.fieldId.write.enabled"

MappingMode = Literal["name", "id"]


def is_mapped(table: DeltaTable) -> bool:
    """Whether the table's files store physical names: a mapping mode *and* a protocol that
    has it.

    deltalake writes `delta.columnMapping.mode` and physical names into tables whose protocol
    lacks the feature, and stores logical names in their files; the protocol decides.
    """
    if table.metadata().configuration.get(MODE, "none") == "none":
        return False
    protocol = table.protocol()
    if protocol.min_reader_version == 2:  # the legacy protocol of column mapping
        return True
    return "columnMapping" in (protocol.reader_features or ())


@dataclass(frozen=True)
class ColumnMapping:
    """How a write's columns are stored in a column-mapped table.

    Attributes:
        mode: `name` or `id`.
        physical: the table's columns after the write, in the order of the logical schema,
            named physically at every depth; each mapped field's metadata holds its id under
            `parquet.field.id`.
        names: top-level logical name -> physical name.
        schema_json: the table's schema after the write as its log names it: logical names,
            each field's mapping in its metadata.
        max_column_id: the table's `delta.columnMapping.maxColumnId` after the write.
        added: the columns the write adds (dotted paths), which need their ids committed.
    """

    mode: MappingMode
    physical: StructType
    names: Mapping[str, str]
    schema_json: str
    max_column_id: int
    added: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # A table's property: a mode Delta does not know is not read as either.
        if self.mode not in get_args(MappingMode):
            raise UnknownValueError(MODE, self.mode, get_args(MappingMode))

    def stored(self, partition_by: Sequence[str]) -> list[str]:
        """The physical names of `partition_by` (logical)."""
        return [self.names[c] for c in partition_by]

    def logged_values(self, values: Mapping[str, str | None]) -> dict[str, str | None]:
        """Partition values keyed by logical names, keyed as the log keys them."""
        return {self.names.get(c, c): v for c, v in values.items()}

    def logical_path(self, dotted: str, logical: StructType) -> str:
        """A dotted path of physical names (as the footer checks give them) in logical names."""
        names: list[str] = []
        physical: DataType = self.physical
        within: DataType = logical
        for part in dotted.split("."):
            inner_logical, inner_physical = _inner(within), _inner(physical)
            index = inner_physical.fieldNames().index(part)
            names.append(inner_logical.fields[index].name)
            within = inner_logical.fields[index].dataType
            physical = inner_physical.fields[index].dataType
        return ".".join(names)

    def indexed(self, indexed: int | tuple[str, ...], logical: StructType) -> int | tuple[str, ...]:
        """The table's statistics columns (`_stats.indexed_columns`) as physical paths."""
        if isinstance(indexed, int):
            return indexed
        paths = []
        for name in indexed:
            physical = _physical_path(name, logical, self.physical)
            if physical is not None:
                paths.append(physical)
        return tuple(paths)


def _inner(data_type: DataType) -> StructType:
    """The struct a dotted path steps into: a struct, an array's `element`, a map's `value`."""
    return data_type if isinstance(data_type, StructType) else contained(data_type)


def _physical_path(name: str, logical: StructType, physical: StructType) -> str | None:
    """A `delta.dataSkippingStatsColumns` name (logical, dotted) as a path of physical names;
    None for a name of no column (statistics are kept on the columns that exist)."""
    parts: list[str] = []
    for part in split_unquoted(name, "."):
        wanted = part.strip("`").lower()
        index = next((i for i, f in enumerate(logical.fields) if f.name.lower() == wanted), None)
        if index is None:
            return None
        parts.append(physical.fields[index].name)
        inner_logical, inner_physical = logical.fields[index].dataType, physical.fields[index]
        if not isinstance(inner_logical, StructType):
            return ".".join(parts)
        logical, physical = inner_logical, inner_physical.dataType  # type: ignore[assignment]
    return ".".join(parts)


def mapping_of(
    request: WriteRequest, table: DeltaTable | None, planned: StructType
) -> ColumnMapping | None:
    """The mapping of a write of `planned` (the table's logical schema after the write) to
    `table`, or None when its files store logical names.

    Columns the write adds (`merge_schema`), nested fields included, get the next ids after
    the table's `delta.columnMapping.maxColumnId` and physical names made of the table's id,
    their id and their path. Unique in the table (an id is never given twice), and the same
    for every plan of the same change to the same table: a write planned again after a lost
    commit race, a stream's later micro-batches (whose files follow the query's first plan),
    two writers adding one column at once (the loser finds the winner's, as its files have it).

    Raises:
        UnsupportedDeltaFeatureError: `overwrite_schema`, which would replace every column id.
    """
    if table is None or not is_mapped(table):
        return None
    if request.overwrite_schema:
        raise UnsupportedDeltaFeatureError(
            f"overwrite_schema on a column-mapped table ({request.path!r}): its columns would "
            "need new column ids and physical names",
            "Overwrite without overwrite_schema (the data may lack columns, and add some with "
            "merge_schema), write to a new table, or use the delta-spark connector (backend "
            "'jvm')",
        )
    configuration = table.metadata().configuration
    logged = json.loads(table.schema().to_json())
    known = max([int(configuration.get(MAX_COLUMN_ID) or 0), *_ids(logged)])
    columns = _NewColumns(str(table.metadata().id), known)
    stored, schema_json = _physical_type(planned, logged, "", columns)
    physical = cast(StructType, stored)
    names = {f.name: p.name for f, p in zip(planned.fields, physical.fields, strict=True)}
    return ColumnMapping(
        cast(MappingMode, configuration[MODE]),
        physical,
        names,
        schema_json=json.dumps(schema_json),
        max_column_id=columns.last_id,
        added=tuple(columns.added),
    )


def logged(actions: list[AddAction], mapping: ColumnMapping | None) -> list[AddAction]:
    """`actions` with their partition values keyed as the log keys them (physical names under
    column mapping); a write's checks compare them by logical names before its commit."""
    if mapping is None:
        return actions
    return [replace(a, partition_values=mapping.logged_values(a.partition_values)) for a in actions]


def logical_paths(
    mapping: ColumnMapping | None, logical: StructType, dotted: list[str]
) -> list[str]:
    """Columns (dotted paths) the files' checks name, in the logical names errors give."""
    return dotted if mapping is None else [mapping.logical_path(d, logical) for d in dotted]


def stored_columns(
    mapping: ColumnMapping | None,
    schema: StructType,
    partition_by: Sequence[str],
    indexed: int | tuple[str, ...],
) -> tuple[StructType, tuple[str, ...], int | tuple[str, ...]]:
    """A write's schema, partition columns and statistics columns (`_stats.indexed_columns`)
    under the names its files store: the physical ones where `mapping` is not None."""
    if mapping is None:
        return schema, tuple(partition_by), indexed
    return mapping.physical, tuple(mapping.stored(partition_by)), mapping.indexed(indexed, schema)


def _by_name(node: Any) -> dict[str, dict[str, Any]]:
    """The fields of a struct's JSON by lower-case name ({} for anything else)."""
    if not isinstance(node, dict) or node.get("type") != "struct":
        return {}
    return {str(f["name"]).lower(): f for f in node["fields"]}


@dataclass
class _NewColumns:
    """Ids and physical names given to the columns a write adds, in the order met."""

    table_id: str
    last_id: int
    added: list[str] = dataclasses.field(default_factory=list)

    def new(self, path: str) -> dict[str, Any]:
        self.last_id += 1
        self.added.append(path)
        named = uuid.uuid5(uuid.NAMESPACE_URL, f"delta:{self.table_id}/{self.last_id}/{path}")
        return {COLUMN_ID: self.last_id, PHYSICAL_NAME: f"col-{named}"}


def _ids(node: Any) -> Iterator[int]:
    """Every column id a schema's JSON holds, nested fields' included."""
    if isinstance(node, dict):
        if COLUMN_ID in (node.get("metadata") or {}):
            yield int(node["metadata"][COLUMN_ID])
        for value in node.values():
            yield from _ids(value)
    elif isinstance(node, list):
        for value in node:
            yield from _ids(value)


def _physical_field(
    field: StructField, logged: dict[str, Any] | None, path: str, columns: _NewColumns
) -> tuple[StructField, dict[str, Any]]:
    """`field` (logical) under its physical name and id, and its field in the log's schema:
    as logged (metadata kept: comments, type changes ...), or new with its mapping."""
    if logged is None:
        logged = {"name": field.name, "nullable": True, "metadata": columns.new(path)}
    metadata = logged["metadata"]
    kept = {SPARK_FIELD_ID: int(metadata[COLUMN_ID])} if COLUMN_ID in metadata else {}
    data_type, type_json = _physical_type(field.dataType, logged.get("type"), path, columns)
    name = str(metadata.get(PHYSICAL_NAME, field.name))
    return StructField(name, data_type, field.nullable, kept), {**logged, "type": type_json}


def _physical_type(
    data_type: DataType, logged: Any, path: str, columns: _NewColumns
) -> tuple[DataType, Any]:
    """`data_type` (logical) with physical names at every depth, and its type in the log's
    schema; `logged` is the log's type JSON (None for a new column)."""
    if isinstance(data_type, StructType):
        known = _by_name(logged)
        pairs = [
            _physical_field(f, known.get(f.name.lower()), f"{path}.{f.name}".lstrip("."), columns)
            for f in data_type.fields
        ]
        return StructType([p for p, _ in pairs]), {
            "type": "struct",
            "fields": [j for _, j in pairs],
        }
    inner = logged if isinstance(logged, dict) else {}
    if isinstance(data_type, ArrayType):
        element, element_json = _physical_type(
            data_type.elementType, inner.get("elementType"), path, columns
        )
        array = {
            "type": "array",
            "elementType": element_json,
            "containsNull": data_type.containsNull,
        }
        return ArrayType(element, data_type.containsNull), array
    if isinstance(data_type, MapType):
        key, key_json = _physical_type(data_type.keyType, inner.get("keyType"), path, columns)
        value, value_json = _physical_type(
            data_type.valueType, inner.get("valueType"), path, columns
        )
        kind = {"type": "map", "keyType": key_json, "valueType": value_json,
                "valueContainsNull": data_type.valueContainsNull}  # fmt: skip
        return MapType(key, value, data_type.valueContainsNull), kind
    return data_type, data_type.jsonValue() if logged is None else logged


def physical_columns(
    df: DataFrame, mapping: ColumnMapping | None, partition_by: Sequence[str]
) -> DataFrame:
    """`df` (columns spelled and shaped as the table's) with its data columns under their
    physical names and field ids, for Spark's writer (`df` itself without `mapping`);
    partition columns are left as they are.

    A cast renames nested fields: Spark casts structs field by field in order, and the data's
    structs are in the table's order (`_shape`). Casting keeps the target's field metadata,
    so nested fields get their ids too.
    """
    if mapping is None:
        return df
    if mapping.mode == "id" and df.sparkSession.conf.get(_FIELD_ID_WRITE, "true") == "false":
        # id mode reads columns by field id alone: files without ids read as nulls.
        raise ConfigError(
            _FIELD_ID_WRITE,
            "it is false, so Spark's writer would store no Parquet field ids, and readers of a "
            "table in column mapping mode 'id' read the columns of such files as nulls",
            f"Set {_FIELD_ID_WRITE} to true (its default) for this write",
        )
    stored = _by_logical_name(mapping)
    columns = []
    for name in df.columns:
        physical = stored.get(name.lower())
        column = F.col(f"`{name}`")
        if physical is None or name in partition_by:
            columns.append(column)
            continue
        if not same_type(df.schema[name].dataType, physical.dataType):
            # Nullable: Spark refuses to cast a nullable field to a NOT NULL one; the footer
            # checks (`_stats.forbidden_nulls`) keep the table's NOT NULL.
            column = column.cast(as_nullable(physical.dataType))
        columns.append(column.alias(physical.name, metadata=dict(physical.metadata)))
    return df.select(*columns)


def _by_logical_name(mapping: ColumnMapping) -> dict[str, StructField]:
    """The physical top-level fields by lower-case logical name, as data columns are matched."""
    return {name.lower(): mapping.physical[physical] for name, physical in mapping.names.items()}


def physical_table(
    table: pa.Table, mapping: ColumnMapping, partition_by: Sequence[str]
) -> pa.Table:
    """`table` (a task's Arrow rows, shaped as the table's) with its data columns under their
    physical names and field ids, for Arrow's Parquet writer; partition columns as they are."""
    stored = _by_logical_name(mapping)
    arrays, fields = [], []
    for index, name in enumerate(table.column_names):
        physical = stored.get(name.lower())
        column = table.column(index).combine_chunks()
        if physical is None or name in partition_by:
            arrays.append(column)
            fields.append(table.field(index))
            continue
        array, field = _physical_array(column, physical)
        arrays.append(array)
        fields.append(field)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _physical_array(
    array: Any, physical: StructField, *, nullable: bool = True
) -> tuple[Any, pa.Field]:
    """`array` rebuilt under `physical`'s names (nested ones too), and its field with the id
    in the metadata key Arrow's writer turns into the Parquet `field_id`.

    Fields stay nullable, as in files written without mapping: the table's NOT NULL is
    checked on the footers and rows before the commit (`_stats`), and Arrow's writer would
    not refuse a null in a required field.
    """
    kind = physical.dataType
    nested = isinstance(kind, (StructType, ArrayType, MapType))  # a leaf keeps its array as is
    mask = array.is_null() if nested and array.null_count else None
    if isinstance(kind, StructType):
        children = [_physical_array(array.field(i), f) for i, f in enumerate(kind.fields)]
        array = pa.StructArray.from_arrays(
            [c[0] for c in children], fields=[c[1] for c in children], mask=mask
        )
    elif isinstance(kind, ArrayType):
        element = StructField("element", kind.elementType, kind.containsNull)
        values, value_field = _physical_array(array.values, element)
        array = pa.ListArray.from_arrays(
            array.offsets, values, type=pa.list_(value_field), mask=mask
        )
    elif isinstance(kind, MapType):
        key = StructField("key", kind.keyType, False)
        keys, key_field = _physical_array(array.keys, key, nullable=False)  # never null
        value = StructField("value", kind.valueType, kind.valueContainsNull)
        items, item_field = _physical_array(array.items, value)
        array = pa.MapArray.from_arrays(
            array.offsets, keys, items, type=pa.map_(key_field, item_field), mask=mask
        )
    field_id = physical.metadata.get(SPARK_FIELD_ID)
    metadata = None if field_id is None else {_ARROW_FIELD_ID: str(field_id).encode()}
    return array, pa.field(physical.name, array.type, nullable, metadata)
