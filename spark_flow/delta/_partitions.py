"""Which partitions a delta-rs write touches: its files' values, the ones it replaces.

- `folder_values`: a file's partition values from the Hive-style folders Spark's writer made.
- `resolved_replace_where`: a `replace_where`'s values as values of their columns' types, a
  zoneless TIMESTAMP in the session's time zone (as Spark and delta-spark's `replaceWhere`
  read it), spelled as the log spells them.
- `check_replaced`: a `replace_where` overwrite holds rows of the replaced partitions only.
- `replaced`: the table's files in the replaced partitions (Delta's replaceWhere; its dynamic
  partition overwrite: those the new files fall into), to remove in the same commit.

Values are compared typed (the log's, as deltalake reads them; the new files' and the user's,
cast by Arrow from their text), so one value spelled two ways (`1.5` and `1.50` in a
DECIMAL(10,2), `1.0E20` and `1e+20`, a timestamp's offsets) is one partition.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import pyarrow as pa
from deltalake.transaction import AddAction, RemoveAction
from pyspark.sql.pandas.types import to_arrow_type

from spark_flow._paths import HIVE_NULL
from spark_flow.delta import _time_travel
from spark_flow.delta._files import (
    as_instant_text,
    partition_text,
    remove_action,
    spark_partition_text,
)
from spark_flow.delta._types import WriteRequest
from spark_flow.errors import InvalidArgumentError

_NAN = object()  # every NaN partition value compares as this one
_NEGATIVE_ZERO = object()  # -0.0 where a partition of its own

if TYPE_CHECKING:
    from deltalake import DeltaTable
    from pyspark.sql.types import StructType

    from spark_flow.delta._mapping import ColumnMapping


def folder_values(
    relative: Path, partition_by: list[str], micros: list[str]
) -> dict[str, str | None]:
    """The partition values of the file at `relative` (below the write's root), as logged."""
    values: dict[str, str | None] = {}
    for part in relative.parts[: len(partition_by)]:
        name, _, raw = part.partition("=")
        column = unquote(name)
        value = None if raw == HIVE_NULL else unquote(raw)
        values[column] = spark_partition_text(value, column, micros)
    return values


def replace_where_texts(
    replace_where: Mapping[str, object] | None,
) -> tuple[tuple[str, str], ...] | None:
    """`delta.write`'s `replace_where` as text (True as `true`, an aware instant in UTC); the
    plan reads each as a value of its column's type (`resolved_replace_where`).

    Raises:
        InvalidArgumentError: a None value, which names no partition value.
    """
    if replace_where is None:
        return None
    nulls = [column for column, value in replace_where.items() if value is None]
    if nulls:
        # As text it would be the string 'None', another partition than the null one.
        raise InvalidArgumentError(
            "replace_where",
            f"{nulls} are given None, which names no partition value",
            "Name the values to replace; to replace the rows whose partition value is null, "
            "overwrite with dynamic_partitions=True and data holding only those rows.",
        )
    return tuple((column, str(partition_text(value))) for column, value in replace_where.items())


def resolved_replace_where(request: WriteRequest, schema: StructType) -> WriteRequest:
    """`request` with each `replace_where` value as the log spells a value of its column's type
    (a FLOAT's in a double's digits, `0.10000000149011612`, which Java reads as the same float).

    A zoneless value of a TIMESTAMP column is read in `request.time_zone`, as Spark reads
    `at = '2024-01-31 10:00:00'`; the result carries its offset, so resolving again changes
    nothing (a commit retried on a newer snapshot re-checks its plan).

    Raises:
        InvalidArgumentError: a value that is no value of its column's type.
    """
    if not request.replace_where:
        return request
    typed = typed_values(
        request.replace_where, schema, path=request.path, time_zone=request.time_zone,
        argument="replace_where",
    )  # fmt: skip
    resolved = tuple((column, str(partition_text(value))) for column, value in typed)
    return replace(request, replace_where=resolved)


def typed_values(
    given: Iterable[tuple[str, str | None]],
    schema: StructType,
    *,
    path: str,
    time_zone: str | None,
    argument: str,
) -> list[tuple[str, Any]]:
    """Partition values given as text (`replace_where`, `optimize(partition=)`), each as a
    value of its column's type; a zoneless TIMESTAMP is read in `time_zone`; None stays None.

    Raises:
        InvalidArgumentError: a value that is no value of its column's type, named `argument`.
    """
    typed = []
    for column, given_text in given:
        arrow_type = _arrow_type(schema, column)
        instant = pa.types.is_timestamp(arrow_type) and arrow_type.tz is not None
        text = _instant_text(given_text, time_zone) if instant and given_text else given_text
        try:
            typed.append((column, _typed(text, arrow_type)))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InvalidArgumentError(
                argument,
                f"{column} is a {schema[column].dataType.simpleString()} partition column of "
                f"{path!r}, and {text!r} is no value of that type",
                "Pass a value of the column's type, as a Python value or its text.",
            ) from None
    return typed


def check_replaced(request: WriteRequest, schema: StructType, actions: list[AddAction]) -> None:
    """Every file of a partition replacement lies in the partitions it replaces
    (`request` as `resolved_replace_where` made it)."""
    types = {c: _arrow_type(schema, c) for c, _ in request.replace_where or ()}
    wanted = {c: _key(_typed(v, types[c])) for c, v in request.replace_where or ()}
    for action in actions:
        found = {c: action.partition_values.get(c) for c in wanted}
        if {c: _key(_typed(v, types[c])) for c, v in found.items()} != wanted:
            raise InvalidArgumentError(
                "replace_where",
                f"it replaces {dict(request.replace_where or ())} of {request.path!r}, but the "
                f"data has rows in {found}",
                "Filter the data to the replaced partitions, or widen replace_where.",
            )


def replaced(
    table: DeltaTable,
    request: WriteRequest,
    actions: list[AddAction],
    partition_by: list[str],
    mapping: ColumnMapping | None = None,
) -> list[RemoveAction] | None:
    """The files of `table` a partial overwrite removes in its commit: those in the partitions
    `replace_where` names (resolved), or, for Delta's dynamic partition overwrite, in those the
    data's `actions` add files to. None for an append or an overwrite of the whole table.

    Found by typed values, not by deltalake's `partition_filters`, which compare the log's text.
    `actions` key partition values by logical names; the removes as the log keys them.
    """
    if request.replace_where:
        columns, values = zip(*request.replace_where, strict=True)
        return _removed(table, list(columns), [values], mapping)
    if request.dynamic_partitions and partition_by:
        data = [tuple(action.partition_values.get(c) for c in partition_by) for action in actions]
        # The partitions the data writes to, as the writers keep them apart: -0.0 is not 0.0.
        return _removed(table, partition_by, data, mapping, signed_zeros=True)
    return None


def _removed(
    table: DeltaTable,
    columns: list[str],
    partitions: list[tuple[str | None, ...]],
    mapping: ColumnMapping | None,
    *,
    signed_zeros: bool = False,
) -> list[RemoveAction]:
    """Remove actions of `table`'s files whose values of `columns` are one of `partitions`
    (logged text), compared as values of the log's type of each column (with `signed_zeros`,
    -0.0 and 0.0 as two values, as two partitions; else one, as SQL compares them)."""
    partition_by = table.metadata().partition_columns
    names = [f"partition.{c}" for c in columns]
    wanted = {"path", "size_bytes", *names, *(f"partition.{c}" for c in partition_by)}
    everything = pa.table(table.get_add_actions(flatten=True))
    # Only what a remove action needs: statistics columns would cross into Python for nothing.
    listed = everything.select([n for n in everything.column_names if n in wanted])
    types = [listed.schema.field(name).type for name in names]
    touched = {
        tuple(_key(_typed(v, t), signed_zeros) for v, t in zip(values, types, strict=True))
        for values in partitions
    }
    return [
        remove_action(row, partition_by, mapping=mapping)
        for row in listed.to_pylist()
        if tuple(_key(row[n], signed_zeros) for n in names) in touched
    ]


def same(value: Any, other: Any) -> bool:
    """Whether two typed partition values are one as Spark SQL compares them (NaN = NaN)."""
    return bool(_key(value) == _key(other))


def _key(value: Any, signed_zeros: bool = False) -> Any:
    """A typed partition value to compare: NaN equals NaN, as in Spark SQL (and delta-spark's
    replaceWhere and dynamic overwrite), where Python's `==` matches it with nothing; with
    `signed_zeros`, -0.0 is apart from 0.0, as the partitions the writers make are."""
    if not isinstance(value, float):
        return value
    if math.isnan(value):
        return _NAN
    return _NEGATIVE_ZERO if signed_zeros and value == 0 and math.copysign(1, value) < 0 else value


def _arrow_type(schema: StructType, column: str) -> pa.DataType:
    return to_arrow_type(schema[column].dataType, timezone="UTC")


def _instant_text(text: str, time_zone: str | None) -> str:
    """A TIMESTAMP value given by the user, zoneless in `time_zone`, in the log's UTC form."""
    try:
        at = _time_travel.parse(text, time_zone=time_zone)
    except InvalidArgumentError:
        return text  # no timestamp: the cast refuses it, naming the column
    return str(partition_text(at))


def _typed(text: str | None, data_type: pa.DataType) -> Any:
    """A logged partition value as a value of `data_type` (None stays None); a zoneless
    TIMESTAMP is UTC, as the log's values are."""
    if text is None:
        return None
    if pa.types.is_timestamp(data_type) and data_type.tz is not None:
        text = as_instant_text(text)
    return pa.array([text]).cast(data_type)[0].as_py()
