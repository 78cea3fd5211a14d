"""Reading one planned file with Arrow, in a Python worker of the `delta` data source.

The same plan as Spark's scan (`_read_spark`): the file's stored columns conformed to the table's
logical schema (physical names -> logical names, nested fields too; older files widened to the
table's types), its partition values from the log, minus the rows its deletion vector removes.
Files are opened through `spark_flow.storage`, so stores Spark has no filesystem for need no JAR.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql.types import ArrayType, DataType, MapType, StructType

from spark_flow import storage

if TYPE_CHECKING:
    from spark_flow.delta._read import PlannedFile, ScanPlan


def read_file(plan: ScanPlan, file: PlannedFile, schema: pa.Schema) -> pa.Table:
    """The rows of `file` in `schema` (the table's logical schema as Arrow types)."""
    with storage.open_input_file(file.uri) as source:
        # INT96 as nanoseconds overflows before 1677 and after 2262; Delta reads microseconds.
        parquet = pq.ParquetFile(source, coerce_int96_timestamp_unit="us")
        present = set(parquet.schema_arrow.names)
        data = parquet.read(columns=[p.name for p in plan.physical.fields if p.name in present])
    if file.deleted_rows is not None:
        keep = np.ones(data.num_rows, dtype=bool)
        keep[file.deleted_rows] = False
        data = data.filter(pa.array(keep))
    stored = dict(zip([f.name for f in plan.data_fields], plan.physical.fields, strict=True))
    columns = []
    for target in schema:
        physical = stored.get(target.name)
        if physical is None:  # a partition column: one value per file, from the log
            value = file.partition_values[target.name]
            columns.append(pa.array([value] * data.num_rows, type=target.type))
        elif physical.name in present:
            column = data.column(physical.name).combine_chunks()
            columns.append(_conform(column, physical.dataType, target.type))
        else:  # a column added after this file was written
            columns.append(pa.nulls(data.num_rows, type=target.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _conform(data: pa.Array, physical: DataType, target: pa.DataType) -> pa.Array:
    """`data`, stored as `physical`, in the logical `target` type.

    Arrow casts structs by field name, and the names differ under column mapping: structs,
    lists and maps are rebuilt around their conformed children, leaves are cast (widening).
    """
    if isinstance(physical, StructType):
        stored = {data.type.field(i).name for i in range(data.type.num_fields)}
        children = [
            _conform(data.field(p.name), p.dataType, t.type)
            if p.name in stored
            else pa.nulls(len(data), type=t.type)
            for p, t in zip(physical.fields, target, strict=True)
        ]
        return pa.StructArray.from_arrays(children, fields=list(target), mask=_nulls(data))
    if isinstance(physical, ArrayType):
        values = _conform(data.values, physical.elementType, target.value_type)
        return pa.ListArray.from_arrays(data.offsets, values, type=target, mask=_nulls(data))
    if isinstance(physical, MapType):
        keys = _conform(data.keys, physical.keyType, target.key_type)
        items = _conform(data.items, physical.valueType, target.item_type)
        return pa.MapArray.from_arrays(data.offsets, keys, items, type=target, mask=_nulls(data))
    return data.cast(target)


def _nulls(data: pa.Array) -> Any:
    return data.is_null() if data.null_count else None
