"""Spark types as PostgreSQL columns: what a new table gets, what an existing one may have.

Values travel as CSV written by Arrow (`COPY ... (FORMAT csv)`), which PostgreSQL parses with
each column's own input function, so most types need no conversion. Two do, in Spark before
the copy: binary becomes bytea's hex text (`\\x00ff`), and arrays, maps and structs become JSON
(`to_json`) for `jsonb` columns.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyspark.sql import types as T

from spark_flow.errors import InvalidArgumentError, SchemaMismatchError

if TYPE_CHECKING:
    from pyspark.sql import Column

# The column every staging row carries: the Spark task attempt that copied it.
TASK_COLUMN = "_spark_flow_task"
MAX_IDENTIFIER = 63  # bytes; PostgreSQL truncates longer names silently

# Spark type -> (type of a new column, other types an existing column may have).
_ATOMIC: dict[type[T.DataType], tuple[str, tuple[str, ...]]] = {
    T.BooleanType: ("boolean", ()),
    T.ByteType: ("smallint", ("integer", "bigint")),
    T.ShortType: ("smallint", ("integer", "bigint")),
    T.IntegerType: ("integer", ("bigint",)),
    T.LongType: ("bigint", ()),
    T.FloatType: ("real", ("double precision",)),
    T.DoubleType: ("double precision", ()),
    T.StringType: ("text", ("character varying",)),
    T.BinaryType: ("bytea", ()),
    T.DateType: ("date", ()),
    T.TimestampType: ("timestamp with time zone", ()),
    T.TimestampNTZType: ("timestamp without time zone", ()),
}
if hasattr(T, "TimeType"):  # Spark 4.1 and later
    _ATOMIC[T.TimeType] = ("time without time zone", ())
_NESTED = (T.ArrayType, T.MapType, T.StructType)


@dataclass(frozen=True)
class PgColumn:
    """A DataFrame column as the postgres output writes it."""

    name: str
    spark_type: T.DataType
    pg_type: str
    also_accepted: tuple[str, ...] = ()

    def accepts(self, existing: str) -> bool:
        """Whether a table column of type `existing` (`format_type`) holds these values as is."""
        if existing == self.pg_type:
            return True
        unconstrained = re.sub(r"\(.*\)", "", existing)  # varchar(20) -> varchar
        return unconstrained in self.also_accepted

    def expression(self) -> Column:
        """The column as COPY reads it: bytea hex text, JSON for nested types, else itself."""
        from pyspark.sql import functions as F

        column = F.col(f"`{self.name.replace('`', '``')}`")
        if isinstance(self.spark_type, T.BinaryType):
            column = F.concat(F.lit("\\x"), F.hex(column))
        elif isinstance(self.spark_type, _NESTED):
            # A struct's null field stays a JSON null instead of vanishing from the object.
            column = F.to_json(column, {"ignoreNullFields": "false"})
        return column.alias(self.name)


def _column(name: str, spark_type: T.DataType) -> PgColumn | None:
    if type(spark_type) in _ATOMIC:
        created, accepted = _ATOMIC[type(spark_type)]
        return PgColumn(name, spark_type, created, accepted)
    if isinstance(spark_type, T.DecimalType):
        precision, scale = spark_type.precision, spark_type.scale
        return PgColumn(name, spark_type, f"numeric({precision},{scale})", ("numeric",))
    if isinstance(spark_type, _NESTED):
        return PgColumn(name, spark_type, "jsonb", ("json",))
    return None


def columns_of(schema: T.StructType) -> tuple[PgColumn, ...]:
    """The schema's columns with their PostgreSQL types; refuses what cannot be written.

    Raises:
        InvalidArgumentError: a column of a type without a mapping (named with its type), a
            name PostgreSQL cannot hold, two columns of the same name, or no columns at all.
    """
    if not schema.fields:
        raise InvalidArgumentError(
            "df", "it has no columns", "Select the columns to write to the table."
        )
    names = [f.name for f in schema.fields]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidArgumentError(
            "df",
            f"columns {duplicates} appear more than once",
            "Rename or drop the duplicates: a table's columns have unique names.",
        )
    columns, refused = [], []
    for f in schema.fields:
        _check_name(f.name)
        column = _column(f.name, f.dataType)
        if column is None:
            refused.append(f"{f.name} ({f.dataType.simpleString()})")
        else:
            columns.append(column)
    if refused:
        raise InvalidArgumentError(
            "df",
            f"the postgres output cannot write column(s) {', '.join(refused)}",
            "Cast or drop them first. It writes boolean, tinyint, smallint, int, bigint, float, "
            "double, decimal, string, binary, date, timestamp, timestamp_ntz, time, and arrays, "
            "maps and structs (as jsonb).",
        )
    return tuple(columns)


def _check_name(name: str) -> None:
    if name == TASK_COLUMN or len(name.encode()) > MAX_IDENTIFIER or "\x00" in name:
        raise InvalidArgumentError(
            "df",
            f"column {name!r} cannot be a PostgreSQL column here (longer than "
            f"{MAX_IDENTIFIER} bytes, a NUL character, or the writer's own {TASK_COLUMN!r})",
            "Rename it, e.g. df.withColumnRenamed(old, new).",
        )


def check_table_columns(
    table: str, columns: Sequence[PgColumn], existing: Sequence[tuple[str, str, bool]]
) -> None:
    """Refuse to write `columns` to a table whose columns are `(name, format_type, has_default)`.

    Every DataFrame column must exist with an accepting type; a table column the DataFrame
    lacks must have a default (serial, identity, `DEFAULT now()`), which fills it.

    Raises:
        SchemaMismatchError: naming each conflicting column with both types.
    """
    table_types = {name: kind for name, kind, _ in existing}
    conflicts: list[tuple[str, str | None, str]] = []
    for column in columns:
        kind = table_types.get(column.name)
        if kind is None or not column.accepts(kind):
            conflicts.append((column.name, kind, column.pg_type))
    ours = {c.name for c in columns}
    conflicts += [
        (name, kind, "no such column")
        for name, kind, has_default in existing
        if name not in ours and not has_default
    ]
    if conflicts:
        raise SchemaMismatchError(
            table,
            conflicts,
            fix="Select and cast the DataFrame's columns to the table's (a table column the "
            "data lacks needs a DEFAULT), or write to a new table.",
        )
