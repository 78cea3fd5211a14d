"""Delta file statistics (`numRecords`, `minValues`, `maxValues`, `nullCount`) from Parquet footers.

Readers (delta-spark, delta-rs, DuckDB, Databricks) skip a file when its statistics prove that no
row can match a filter, so every bound written here must really bound the file's values. They
come from the row-group statistics of the footer the writer already wrote: no data is read again
and no Spark job runs. What the footer does not say is left out, never guessed.

The rules follow delta-spark's `StatisticsCollection`:

- the first `delta.dataSkippingNumIndexedCols` (32) leaf columns in schema order, partition
  columns excluded, a struct counting as its leaves and an array or map as one; or exactly the
  columns of `delta.dataSkippingStatsColumns`;
- min/max for numbers, dates, timestamps and strings only (not booleans, binary, arrays, maps);
  nested struct fields as nested JSON objects, as the protocol's stats schema mirrors the data's;
- strings cut to 32 characters: the min as a prefix, the max as a prefix plus a tie-breaker
  (U+FFFD, after any characters >= it) so that it stays an upper bound;
- timestamps as ISO-8601 with milliseconds (UTC `Z`; none for timestamp_ntz): the min truncated,
  the max rounded up, so microseconds never fall outside the bounds.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from itertools import takewhile
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql.types import (
    ArrayType,
    ByteType,
    DataType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    MapType,
    ShortType,
    StringType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from spark_flow.delta._footer import column_chunks
from spark_flow.errors import InvalidArgumentError

if TYPE_CHECKING:
    import pyarrow.parquet as pq

NUM_INDEXED_COLS = "delta.dataSkippingNumIndexedCols"
STATS_COLUMNS = "delta.dataSkippingStatsColumns"
DEFAULT_INDEXED_COLUMNS = 32
STRING_PREFIX = 32
_TIE_BREAKER = "\ufffd"
_MIN_MAX_TYPES = (
    ByteType, ShortType, IntegerType, LongType, FloatType, DoubleType, DecimalType,
    DateType, TimestampType, TimestampNTZType, StringType,
)  # fmt: skip
_UNIT_PER_MILLI = {"milliseconds": 1, "microseconds": 1_000, "nanoseconds": 1_000_000}
_EPOCH = dt.datetime(1970, 1, 1)
_MIN_MILLIS = (dt.datetime.min - _EPOCH) // dt.timedelta(milliseconds=1)
_MAX_MILLIS = (dt.datetime.max - _EPOCH) // dt.timedelta(milliseconds=1)
# Writers whose float statistics include NaN as the largest value, as Spark orders it; Arrow's
# writer leaves NaN out of min/max, so a file of it may hold NaN above its max.
_NAN_AWARE_WRITERS = ("parquet-mr", "parquet-java")

Path = tuple[str, ...]


def indexed_columns(configuration: Mapping[str, str | None]) -> int | tuple[str, ...]:
    """The columns a table wants statistics on, from its properties (`metadata().configuration`).

    Returns:
        The column names of `delta.dataSkippingStatsColumns` (dotted paths for nested fields)
        when set, else the `delta.dataSkippingNumIndexedCols` count (32 by default, -1: all).

    Raises:
        InvalidArgumentError: the count is not an integer >= -1.
    """
    names = configuration.get(STATS_COLUMNS)
    if names is not None:
        return tuple(name for name in split_unquoted(names, ",") if name)
    raw = configuration.get(NUM_INDEXED_COLS)
    if raw is None:
        return DEFAULT_INDEXED_COLUMNS
    try:
        count = int(raw)
    except ValueError:
        count = -2
    if count < -1:
        raise InvalidArgumentError(
            NUM_INDEXED_COLS,
            f"the table property is {raw!r}; Delta expects an integer >= -1",
            "Set it to the number of leading columns to keep statistics on (-1: all).",
        )
    return count


def file_stats(
    metadata: pq.FileMetaData,
    schema: StructType,
    *,
    partition_by: Sequence[str],
    indexed_columns: int | Sequence[str],
) -> str:
    """The `stats` JSON of a Delta add action for the Parquet file described by `metadata`.

    Args:
        metadata: the file's footer (`pyarrow.parquet.read_metadata`).
        schema: the table's schema; partition columns are dropped from it.
        partition_by: the table's partition columns (not in the file).
        indexed_columns: a count of leading leaf columns (-1: all), or the names of the columns
            (dotted paths for nested fields), as `indexed_columns(configuration)` returns.

    Returns:
        `{"numRecords": n, "minValues": {...}, "maxValues": {...}, "nullCount": {...}}`, each
        map holding only what the footer proves.
    """
    partitions = {name.lower() for name in partition_by}
    data = StructType([f for f in schema.fields if f.name.lower() not in partitions])
    chunks = column_chunks(metadata)
    nan_aware = (metadata.created_by or "").lower().startswith(_NAN_AWARE_WRITERS)
    stats: dict[str, Any] = {"numRecords": metadata.num_rows}
    minimum: dict[str, Any] = {}
    maximum: dict[str, Any] = {}
    nulls: dict[str, Any] = {}
    for path, data_type in _leaves(_indexed(data, indexed_columns)):
        if isinstance(data_type, (ArrayType, MapType)):
            continue  # the footer counts the nulls of elements, not of the column's values
        found = chunks.get(path)
        if found is None:  # a column the file lacks reads as null in every row
            _put(nulls, path, metadata.num_rows)
            continue
        null_count = _null_count(found)
        if null_count is not None:
            _put(nulls, path, null_count)
        if isinstance(data_type, _MIN_MAX_TYPES):
            bounds = _bounds(found, data_type, nan_aware=nan_aware)
            if bounds is not None:
                _put(minimum, path, bounds[0])
                _put(maximum, path, bounds[1])
    for key, values in (("minValues", minimum), ("maxValues", maximum), ("nullCount", nulls)):
        if values:
            stats[key] = values
    return _json(stats)


def forbidden_nulls(
    metadata: pq.FileMetaData, schema: StructType, *, partition_by: Sequence[str]
) -> tuple[str, ...]:
    """The columns (dotted paths) the table declares NOT NULL that hold a null in this file.

    Writers must keep a table's `nullable: false`; our commit adds files Spark wrote from
    nullable DataFrames, so their footers are checked before the commit. Only what a footer
    tells: leaves reached through non-nullable fields alone, where a null anywhere on the path
    breaks the schema. A column missing from the file is null in every row; one whose footer
    has no null count is listed too, as nothing proves it holds none.
    """
    partitions = {name.lower() for name in partition_by}
    data = StructType([f for f in schema.fields if f.name.lower() not in partitions])
    chunks = {_lower(path): found for path, found in column_chunks(metadata).items()}
    violated = []
    for path in _not_null_leaves(data):
        found = chunks.get(_lower(path))
        nulls = metadata.num_rows if found is None else _null_count(found)
        if nulls is None or nulls > 0:
            violated.append(".".join(path))
    return tuple(violated)


def _not_null_leaves(schema: StructType, parent: Path = ()) -> Iterator[Path]:
    for field in schema.fields:
        if field.nullable:
            continue
        if isinstance(field.dataType, StructType):
            yield from _not_null_leaves(field.dataType, (*parent, field.name))
        elif not isinstance(field.dataType, (ArrayType, MapType)):
            # An array's or map's footer counts null elements too: it cannot tell a null value.
            yield (*parent, field.name)


def row_checked(schema: StructType, *, partition_by: Sequence[str]) -> tuple[str, ...]:
    """The data columns whose NOT NULL fields a footer cannot check (`forbidden_nulls`): a
    field under a nullable struct (null there only counts where its parents are not), an
    array or a map, or their elements and values (`containsNull=false`,
    `valueContainsNull=false`: their footers count null elements and values as one).
    `row_nulls` checks their rows."""
    partitions = {name.lower() for name in partition_by}
    return tuple(
        f.name for f in schema.fields if f.name.lower() not in partitions and _undecided(f, True)
    )


def _undecided(field: StructField, parents_required: bool) -> bool:
    if not field.nullable and not parents_required:
        return True
    if isinstance(field.dataType, (ArrayType, MapType)):
        inner = contained(field.dataType).fields
        return not field.nullable or any(_undecided(child, False) for child in inner)
    if isinstance(field.dataType, StructType):
        required = parents_required and not field.nullable
        return any(_undecided(child, required) for child in field.dataType.fields)
    return False


def row_nulls(table: pa.Table, schema: StructType, columns: Sequence[str]) -> tuple[str, ...]:
    """The NOT NULL fields (dotted paths) within `columns` (`row_checked`) that rows of `table`
    hold a null in, where every struct above the field is not null, as Delta checks them."""
    present = {name.lower(): name for name in table.column_names}
    found: list[str] = []
    for field in schema.fields:
        if field.name not in columns:
            continue
        name = present.get(field.name.lower())
        if name is not None:
            found.extend(_row_nulls(table[name], field, (field.name,), None))
        elif not field.nullable and table.num_rows:  # a column the data lacks: null in each row
            found.append(field.name)
    return tuple(found)


def _row_nulls(values: Any, field: StructField, path: Path, parents: Any) -> Iterator[str]:
    """`parents`: where every struct above holds a value (None at the top: every row)."""
    if not field.nullable:
        nulls = pc.is_null(values) if parents is None else pc.and_(parents, pc.is_null(values))
        if pc.any(nulls).as_py():
            yield ".".join(path)
    if isinstance(field.dataType, StructType):
        here = pc.is_valid(values)  # a child taken from a struct is null where the struct is
        for child in field.dataType.fields:
            index = values.type.get_field_index(child.name)
            if index >= 0:
                inner = pc.struct_field(values, [index])
                yield from _row_nulls(inner, child, (*path, child.name), here)
    for child in contained(field.dataType).fields:
        present = values if parents is None else pc.filter(values, parents)
        yield from _row_nulls(_contents(present), child, (*path, child.name), None)


def contained(data_type: DataType) -> StructType:
    """An array's elements (`element`) or a map's values (`value`) as a field, nullable as the
    type says; no field for other types. Map keys are never null in Spark."""
    if isinstance(data_type, ArrayType):
        return StructType([StructField("element", data_type.elementType, data_type.containsNull)])
    if isinstance(data_type, MapType):
        return StructType([StructField("value", data_type.valueType, data_type.valueContainsNull)])
    return StructType([])


def _contents(values: Any) -> Any:
    """The elements of every list (the values of every map) in `values`; null ones have none."""
    if pa.types.is_map(values.type):  # as a list of entries: a map array has no flatten kernel
        entries = pa.list_(pa.struct([values.type.key_field, values.type.item_field]))
        return pc.struct_field(pc.list_flatten(values.cast(entries)), [1])
    return pc.list_flatten(values)


def split_unquoted(text: str, separator: str) -> list[str]:
    """`text` split at `separator` outside backquotes, each part stripped (quotes kept)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == "`":
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return parts


def _name_path(name: str) -> Path:
    return tuple(part.strip("`").lower() for part in split_unquoted(name, "."))


def _indexed(schema: StructType, indexed: int | Sequence[str]) -> StructType:
    """The part of `schema` statistics are kept on."""
    if isinstance(indexed, int):
        return schema if indexed < 0 else _first_leaves(schema, indexed)[0]
    return _named(schema, [_name_path(name) for name in indexed])


def _first_leaves(schema: StructType, count: int) -> tuple[StructType, int]:
    fields, taken = [], 0
    for field in schema.fields:
        if taken >= count:
            break
        if isinstance(field.dataType, StructType):
            inner, used = _first_leaves(field.dataType, count - taken)
            fields.append(StructField(field.name, inner, field.nullable))
            taken += used
        else:
            fields.append(field)
            taken += 1
    return StructType(fields), taken


def _named(schema: StructType, paths: list[Path]) -> StructType:
    fields = []
    for field in schema.fields:
        wanted = [path[1:] for path in paths if path[0] == field.name.lower()]
        if not wanted:
            continue
        if any(not rest for rest in wanted):
            fields.append(field)
        elif isinstance(field.dataType, StructType):
            inner = _named(field.dataType, wanted)
            fields.append(StructField(field.name, inner, field.nullable))
    return StructType(fields)


def _leaves(schema: StructType, parent: Path = ()) -> Iterator[tuple[Path, DataType]]:
    for field in schema.fields:
        if isinstance(field.dataType, StructType):
            yield from _leaves(field.dataType, (*parent, field.name))
        else:
            yield (*parent, field.name), field.dataType


def _lower(path: Path) -> Path:
    return tuple(name.lower() for name in path)


def _null_count(chunks: list[Any]) -> int | None:
    total = 0
    for chunk in chunks:
        statistics = chunk.statistics
        if statistics is None or not statistics.has_null_count:
            return None
        total += statistics.null_count
    return total


def _bounds(chunks: list[Any], data_type: DataType, *, nan_aware: bool) -> tuple[Any, Any] | None:
    """The column's (min, max) over all row groups as Delta writes them, or None if unknown."""
    found = _footer_bounds(chunks, data_type)
    if found is None:
        return None
    low, high = found
    if isinstance(data_type, (FloatType, DoubleType)) and not (
        nan_aware and math.isfinite(low) and math.isfinite(high)
    ):
        return None  # NaN may hide above the max; JSON has no NaN or infinity
    if isinstance(data_type, StringType):
        return low[:STRING_PREFIX], _truncated_max(high)
    if isinstance(data_type, (TimestampType, TimestampNTZType)):
        return _timestamp(low, data_type), _timestamp(high, data_type)
    if isinstance(data_type, DateType):
        return low.isoformat(), high.isoformat()
    return low, high


def _footer_bounds(chunks: list[Any], data_type: DataType) -> tuple[Any, Any] | None:
    """The smallest min and largest max of the row groups, None if one of them has no bounds."""
    lows, highs = [], []
    for chunk in chunks:
        statistics = chunk.statistics
        if statistics is None:
            return None
        if not statistics.has_min_max:
            if statistics.has_null_count and statistics.null_count == chunk.num_values:
                continue  # only nulls in this row group: nothing to bound
            return None
        low = _value(statistics, statistics.min_raw, data_type, upper=False)
        high = _value(statistics, statistics.max_raw, data_type, upper=True)
        if low is None or high is None:
            return None
        lows.append(low)
        highs.append(high)
    return (min(lows), max(highs)) if lows else None


def _value(statistics: Any, raw: Any, data_type: DataType, *, upper: bool) -> Any:
    """A footer bound as a comparable Python value (timestamps: epoch milliseconds, rounded
    outwards), or None when the footer's encoding of it is not one we know."""
    logical = statistics.logical_type
    kind = getattr(logical, "type", "NONE")
    if isinstance(data_type, (TimestampType, TimestampNTZType)):
        if kind != "TIMESTAMP":
            return None  # INT96 or an unannotated integer: no order we can trust
        per_milli = _UNIT_PER_MILLI[json.loads(logical.to_json())["timeUnit"]]
        millis = -(-raw // per_milli) if upper else raw // per_milli
        # Rounded outwards past 9999-12-31 (or before year 1): no bound a reader's timestamp holds.
        return millis if _MIN_MILLIS <= millis <= _MAX_MILLIS else None
    if isinstance(data_type, StringType):
        return _text(raw)
    if isinstance(data_type, (DecimalType, DateType)):
        return statistics.max if upper else statistics.min
    return raw


def _text(raw: Any) -> Any:
    """A string bound, or None for bytes that are not UTF-8 (Spark keeps the bytes of text it
    read from a binary file as they are): no bound to log."""
    if not isinstance(raw, bytes):
        return raw
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return None


def _truncated_max(value: str) -> str:
    if len(value) <= STRING_PREFIX:
        return value
    # The tie-breaker is only larger than what it replaces if the cut character is smaller; keep
    # the characters that are not (delta-spark's truncateMaxStringAgg, in code points).
    kept = "".join(takewhile(lambda c: c >= _TIE_BREAKER, value[STRING_PREFIX:]))
    return value[:STRING_PREFIX] + kept + _TIE_BREAKER


def _timestamp(millis: int, data_type: DataType) -> str:
    moment = _EPOCH + dt.timedelta(milliseconds=millis)
    text = moment.isoformat(timespec="milliseconds")
    return text + "Z" if isinstance(data_type, TimestampType) else text


def _put(target: dict[str, Any], path: Path, value: Any) -> None:
    for name in path[:-1]:
        target = target.setdefault(name, {})
    target[path[-1]] = value


def _json(value: Any) -> str:
    """JSON with decimals as exact numbers (json.dumps would need a float)."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Decimal):
        return format(value, "f")
    return json.dumps(value, ensure_ascii=False)
