"""Schema translation and checks shared by the Delta backends.

Spark types are the vocabulary of errors and comparisons: the people reading them write PySpark.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar, cast

import pyarrow as pa
from deltalake import Schema as DeltaSchema
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    CalendarIntervalType,
    DataType,
    DayTimeIntervalType,
    MapType,
    NullType,
    StructField,
    StructType,
    YearMonthIntervalType,
)

from spark_flow.delta._stats import contained
from spark_flow.errors import (
    InvalidArgumentError,
    SchemaMismatchError,
    UnsupportedDeltaFeatureError,
)

if TYPE_CHECKING:
    from deltalake import DeltaTable

_UNPARTITIONABLE = (BinaryType, ArrayType, MapType, StructType)
_T = TypeVar("_T", bound=DataType)
# Spark types the Delta protocol has no name for.
_UNSTORABLE = (NullType, DayTimeIntervalType, YearMonthIntervalType, CalendarIntervalType)


def to_delta_schema(schema: StructType) -> DeltaSchema:
    """The Delta schema a table gets for data of this Spark schema (all fields nullable)."""
    arrow = to_arrow_schema(as_nullable(schema), timezone="UTC")
    return DeltaSchema.from_arrow(arrow)


def as_nullable(data_type: _T) -> _T:
    """`data_type` with every field, element and value nullable, nested ones included.

    Columns a write brings to a table are nullable, as delta-spark makes them (`asNullable`):
    Spark's non-nullable struct fields (`F.struct(F.lit(1))`) would otherwise become NOT NULL
    constraints every later write must be checked against.
    """
    if isinstance(data_type, StructType):
        fields = [StructField(f.name, as_nullable(f.dataType), True, f.metadata) for f in data_type]
        return cast(_T, StructType(fields))
    if isinstance(data_type, ArrayType):
        return cast(_T, ArrayType(as_nullable(data_type.elementType), True))
    if isinstance(data_type, MapType):
        key, value = as_nullable(data_type.keyType), as_nullable(data_type.valueType)
        return cast(_T, MapType(key, value, True))
    return data_type


def commit_schema(
    table: DeltaTable | None, planned: StructType, *, overwrite_schema: bool
) -> DeltaSchema:
    """The schema a write's commit names: the table's own, with the columns the write adds.

    The table's fields are kept as its log holds them (NOT NULL, comments and other field
    metadata), which a round trip through Spark types would lose: an overwrite commits the
    schema it is given. Only a new table or a schema overwrite takes the data's.
    """
    data = to_delta_schema(planned)
    if table is None or overwrite_schema:
        return data
    kept = table.schema()
    known = {field.name.lower() for field in kept.fields}
    added = [field for field in data.fields if field.name.lower() not in known]
    # A struct column that gained nested fields (merge_schema) takes its planned type.
    before = {f.name: _type(f.dataType) for f in table_spark_schema(table).fields}
    evolved = {
        f.name: to_delta_schema(StructType([f])).fields[0]
        for f in planned.fields
        if f.name in before and _type(f.dataType) != before[f.name]
    }
    fields = [evolved.get(field.name, field) for field in kept.fields]
    return DeltaSchema([*fields, *added]) if added or evolved else kept


def table_spark_schema(table: DeltaTable) -> StructType:
    """The table's schema in Spark types, in the table's column order."""
    arrow = pa.schema(table.schema().to_arrow())
    return from_arrow_schema(arrow, prefer_timestamp_ntz=True)


def _type(data_type: DataType) -> str:
    return data_type.simpleString()


def same_type(a: DataType, b: DataType) -> bool:
    """Whether two Spark types are the same type, nested fields and their order included."""
    return _type(a) == _type(b)


def planned_schema(
    path: str,
    table_schema: StructType | None,
    data_schema: StructType,
    *,
    merge_schema: bool,
) -> StructType:
    """The table schema after this write, or SchemaMismatchError.

    Columns are matched by name, case-insensitively as Delta does. A column the data lacks is
    fine (it reads as null); a new column needs `merge_schema`; a changed type is never applied.

    Raises:
        SchemaMismatchError: a new column without `merge_schema`, a changed type.
        InvalidArgumentError: two columns of the data whose names differ in case only.
        UnsupportedDeltaFeatureError: a new column of a type Delta does not store.
    """
    seen: dict[str, str] = {}
    twice = [
        f.name for f in data_schema.fields if seen.setdefault(f.name.lower(), f.name) != f.name
    ]
    if twice:
        raise InvalidArgumentError(
            "df",
            f"columns {twice} of the data repeat others in another case; Delta matches column "
            "names case-insensitively",
            "Rename or drop one of each.",
        )
    if table_schema is None:
        _check_storable(path, data_schema.fields)
        return as_nullable(data_schema)
    by_name = {f.name.lower(): f for f in table_schema.fields}
    conflicts: list[tuple[str, str | None, str]] = []
    added: list[StructField] = []
    evolved: dict[str, DataType] = {}
    for field in data_schema.fields:
        existing = by_name.get(field.name.lower())
        if existing is None:
            added.append(as_nullable(StructType([field]))[0])
            if not merge_schema:
                conflicts.append((field.name, None, _type(field.dataType)))
        elif _type(existing.dataType) != _type(field.dataType):
            merged = merged_type(existing.dataType, field.dataType, merge=merge_schema)
            if merged is None:
                conflicts.append((field.name, _type(existing.dataType), _type(field.dataType)))
            else:
                evolved[existing.name] = merged
    if conflicts:
        raise SchemaMismatchError(path, conflicts)
    _check_storable(path, added)
    kept = [
        StructField(f.name, evolved[f.name], f.nullable, f.metadata) if f.name in evolved else f
        for f in table_schema.fields
    ]
    return StructType([*kept, *added])


def merged_type(table: DataType, data: DataType, *, merge: bool) -> DataType | None:
    """The table's type of a column after writing `data`'s type into it, or None when `data`
    does not fit: its structs may hold their fields in any order and lack some (they read as
    null), as delta-spark accepts; fields it adds are appended only with `merge`. Any other
    difference is a type change, which Delta never applies."""
    merged: DataType | None = None
    if same_type(table, data):
        merged = table
    elif isinstance(table, StructType) and isinstance(data, StructType):
        merged = _merged_struct(table, data, merge=merge)
    elif isinstance(table, ArrayType) and isinstance(data, ArrayType):
        element = merged_type(table.elementType, data.elementType, merge=merge)
        merged = None if element is None else ArrayType(element, table.containsNull)
    elif isinstance(table, MapType) and isinstance(data, MapType):
        value = merged_type(table.valueType, data.valueType, merge=merge)
        if value is not None and _type(table.keyType) == _type(data.keyType):
            merged = MapType(table.keyType, value, table.valueContainsNull)
    return merged


def _merged_struct(table: StructType, data: StructType, *, merge: bool) -> StructType | None:
    theirs = {f.name.lower(): f for f in data.fields}
    fields = []
    for field in table.fields:
        other = theirs.pop(field.name.lower(), None)
        merged = (
            field.dataType if other is None
            else merged_type(field.dataType, other.dataType, merge=merge)
        )  # fmt: skip
        if merged is None:
            return None
        fields.append(StructField(field.name, merged, field.nullable, field.metadata))
    if theirs and not merge:
        return None
    return StructType([*fields, *as_nullable(StructType(list(theirs.values()))).fields])


def _check_storable(path: str, fields: Iterable[StructField]) -> None:
    """Refuse new columns of types the Delta protocol has no name for (`void`, intervals):
    a log naming them is one no other reader opens."""
    found = {
        name: _type(data_type)
        for field in fields
        for name, data_type in _types_within(field.name, field.dataType)
        if isinstance(data_type, _UNSTORABLE)
    }
    if found:
        raise UnsupportedDeltaFeatureError(
            f"columns of types the Delta protocol does not have ({found}, written to {path!r})",
            "Cast them to a Delta type (a null literal to its column's type, F.lit(None)."
            "cast('string'); an interval to a string or a number), or drop them",
        )


def _types_within(name: str, data_type: DataType) -> Iterator[tuple[str, DataType]]:
    yield name, data_type
    if isinstance(data_type, StructType):
        for field in data_type.fields:
            yield from _types_within(f"{name}.{field.name}", field.dataType)
    elif isinstance(data_type, ArrayType):
        yield from _types_within(f"{name}[]", data_type.elementType)
    elif isinstance(data_type, MapType):
        yield from _types_within(f"{name}{{key}}", data_type.keyType)
        yield from _types_within(f"{name}{{value}}", data_type.valueType)


def table_spelling(names: Sequence[str], schema: StructType) -> dict[str, str]:
    """The columns of `names` that `schema` (the table's) spells in another case, each mapped
    to the table's spelling.

    Delta matches a write's columns to the table's case-insensitively, but readers find a
    column in a file by its exact name: a file holding `ID` reads as nulls in a table's `id`.
    """
    spelled = {field.name.lower(): field.name for field in schema.fields}
    return {
        name: spelled[name.lower()] for name in names if spelled.get(name.lower(), name) != name
    }


def refuse_nulls(path: str, schema: StructType, columns: Iterable[str]) -> None:
    """Refuse a write whose data holds nulls in the NOT NULL `columns` (dotted paths) of the
    table's `schema`.

    Raises:
        SchemaMismatchError: naming each column, when `columns` is not empty.
    """
    found = sorted(set(columns))
    if found:
        raise SchemaMismatchError(
            path,
            [(column, f"{_type(_field_at(schema, column).dataType)} not null", "nulls")
             for column in found],
            fix="Filter or fill the nulls before writing, as the table's schema forbids them "
            "in these columns; nothing was committed.",
        )  # fmt: skip


def _field_at(schema: StructType, dotted: str) -> StructField:
    """The field a dotted path names: struct fields, an array's `element`, a map's `value`."""
    head, _, rest = dotted.partition(".")
    field = next(f for f in schema.fields if f.name.lower() == head.lower())
    if not rest:
        return field
    inner = field.dataType if isinstance(field.dataType, StructType) else contained(field.dataType)
    return _field_at(inner, rest)


def planned_partitioning(
    path: str, table_partitioning: list[str] | None, requested: list[str] | None, schema: StructType
) -> list[str]:
    """The partition columns of the write: the table's, which a write may not change.

    Columns are matched case-insensitively, as Delta matches them: the data's `Day` fills a
    table's `day`, and `partition_by=["DAY"]` names it.
    """
    if (
        table_partitioning is not None
        and requested is not None
        and [c.lower() for c in requested] != [c.lower() for c in table_partitioning]
    ):
        raise InvalidArgumentError(
            "partition_by",
            f"the table at {path!r} is partitioned by {table_partitioning}, not {requested}",
            "Omit partition_by (the table's partitioning is used) or write to a new table.",
        )
    columns = table_partitioning if table_partitioning is not None else (requested or [])
    spelled = {f.name.lower(): f.name for f in schema.fields}
    missing = [c for c in columns if c.lower() not in spelled]
    if missing:
        raise InvalidArgumentError(
            "partition_by",
            f"columns {missing} are not in the data (it has {sorted(spelled.values())})",
            "Name existing columns.",
        )
    kinds = {c: schema[spelled[c.lower()]].dataType for c in columns}
    unsupported = {c: _type(t) for c, t in kinds.items() if isinstance(t, _UNPARTITIONABLE)}
    if unsupported:
        # Binary values have no folder name Spark's writer can make of any bytes, and readers
        # disagree on their text in the log (deltalake reads back its own escapes as bytes).
        raise UnsupportedDeltaFeatureError(
            f"partition columns of type binary, array, map or struct ({unsupported} of the "
            f"table at {path!r})",
            "Partition by another column, e.g. a string such as hex() of a binary one",
        )
    if table_partitioning is not None:
        return columns
    return [spelled[c.lower()] for c in columns]  # a new table's, as its schema spells them
