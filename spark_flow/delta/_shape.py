"""Struct columns written in the table's shape: its nested fields, in its order.

The data's structs may hold their fields in another order than the table's, or lack some
(`_schema.merged_type` accepts both, as delta-spark does). Their files are written in the
table's shape, nested fields by name, the missing ones null, so that every reader (ours,
deltalake, DuckDB, delta-spark) finds the same values whatever shape each write had.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DataType, MapType, StructType

from spark_flow.delta._schema import same_type

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame

__all__ = ["shaped_columns", "shaped_table"]


def shaped_columns(df: DataFrame, schema: StructType) -> DataFrame:
    """`df` with each nested column that differs from `schema`'s in the table's shape."""
    targets = {f.name.lower(): f.dataType for f in schema.fields}
    changed = {
        f.name: _column(F.col(f"`{f.name}`"), f.dataType, targets[f.name.lower()])
        for f in df.schema.fields
        if f.name.lower() in targets and not same_type(f.dataType, targets[f.name.lower()])
    }
    return df.withColumns(changed) if changed else df


def _column(value: Column, data: DataType, target: DataType) -> Column:
    if isinstance(data, StructType) and isinstance(target, StructType):
        theirs = {f.name.lower(): f for f in data.fields}
        parts = []
        for field in target.fields:
            other = theirs.get(field.name.lower())
            part = (
                F.lit(None).cast(field.dataType)
                if other is None
                else _column(value.getField(other.name), other.dataType, field.dataType)
            )
            parts.append(part.alias(field.name))
        return F.when(value.isNull(), F.lit(None).cast(target)).otherwise(F.struct(*parts))
    if isinstance(data, ArrayType) and isinstance(target, ArrayType):
        if same_type(data.elementType, target.elementType):
            return value
        return F.transform(value, lambda e: _column(e, data.elementType, target.elementType))
    if isinstance(data, MapType) and isinstance(target, MapType):
        if same_type(data.valueType, target.valueType):
            return value
        return F.transform_values(value, lambda _, v: _column(v, data.valueType, target.valueType))
    return value  # the same type: merged_type accepts no other difference


def shaped_table(table: pa.Table, schema: StructType) -> pa.Table:
    """`table` (a task's Arrow rows) with its struct columns in `schema`'s shape."""
    from pyspark.sql.pandas.types import from_arrow_type

    targets = {f.name.lower(): f.dataType for f in schema.fields}
    for index, name in enumerate(table.column_names):
        target = targets.get(name.lower())
        column = table.column(index)
        if not isinstance(target, (StructType, ArrayType, MapType)) or same_type(
            from_arrow_type(column.type), target
        ):
            continue
        array = _array(column.combine_chunks(), target)
        table = table.set_column(index, table.field(index).with_type(array.type), array)
    return table


def _array(array: Any, target: DataType) -> Any:
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_type

    kind = array.type
    if pa.types.is_struct(kind) and isinstance(target, StructType):
        theirs = {kind.field(i).name.lower(): i for i in range(kind.num_fields)}
        children = [
            pa.nulls(len(array), to_arrow_type(f.dataType))
            if f.name.lower() not in theirs
            else _array(array.field(theirs[f.name.lower()]), f.dataType)
            for f in target.fields
        ]
        names = [f.name for f in target.fields]
        return pa.StructArray.from_arrays(children, names=names, mask=array.is_null())
    if pa.types.is_list(kind) and isinstance(target, ArrayType):
        values = _array(array.flatten(), target.elementType)
        return pa.ListArray.from_arrays(_from_zero(array), values, mask=array.is_null())
    if pa.types.is_map(kind) and isinstance(target, MapType):
        items = _array(array.items, target.valueType)
        return pa.MapArray.from_arrays(_from_zero(array), array.keys, items, mask=array.is_null())
    return array


def _from_zero(array: Any) -> Any:
    """A (maybe sliced) list array's offsets into its flattened values."""
    import pyarrow.compute as pc

    return pc.subtract(array.offsets, array.offsets[0])
