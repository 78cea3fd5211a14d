"""Combining parents' DataFrames: by name into one union, or side by side in one join.

`union_by_name` is the chapter's answer to position-based UNION: columns are matched by name,
numeric types widened explicitly, and the N parents combined in one balanced union, so planning
grows linearly with N instead of re-analysing an ever longer chain. `join_fan_in` is the
JOIN-style fan-in, with colliding columns prefixed by their parent's name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal, get_args

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DataType, MapType, StructField, StructType

from spark_flow._common import column_key
from spark_flow.errors import InvalidArgumentError, SchemaMismatchError, UnknownValueError

JoinHow = Literal["inner", "left", "right", "full"]
JOIN_HOWS: tuple[str, ...] = get_args(JoinHow)
# Widening Spark applies silently by position; here it is explicit, and anything else fails.
_NUMERIC_RANK = {"tinyint": 0, "smallint": 1, "int": 2, "bigint": 3, "float": 4, "double": 5}


def union_by_name(
    parents: Sequence[DataFrame] | Mapping[str, DataFrame],
    *,
    allow_missing_columns: bool = False,
    source_column: str | None = None,
) -> DataFrame:
    """One DataFrame holding every parent's rows, columns matched by name.

    Columns match as in Spark's `unionByName`: in any case unless the session sets
    `spark.sql.caseSensitive`, each named as its first parent has it.

    Args:
        parents: the DataFrames, or parent name -> DataFrame (names appear in errors and in
            `source_column`; a sequence's parents are named `parent_0`, `parent_1`, ...).
        allow_missing_columns: fill a column a parent lacks with nulls of the column's type.
        source_column: add this column with each row's parent name.

    Returns:
        The union; columns in order of first appearance, then `source_column`.

    Raises:
        InvalidArgumentError: no parents, a parent with two columns of one name, or a
            `source_column` a parent has already.
        SchemaMismatchError: a column with incompatible types across parents, or missing from
            a parent without `allow_missing_columns`; it names the column and each parent.

    Example:
        >>> union_by_name({"h00": hour_0, "h01": hour_1}, source_column="hour")
    """
    named = (
        dict(parents)
        if isinstance(parents, Mapping)
        else {f"parent_{i}": df for i, df in enumerate(parents)}
    )
    if not named:
        raise InvalidArgumentError(
            "parents", "there are none to union", "Pass at least one DataFrame."
        )
    key = column_key(next(iter(named.values())))
    fields = {name: _fields(name, df, key) for name, df in named.items()}
    if source_column is not None:
        for name, present in fields.items():
            if key(source_column) in present:
                raise InvalidArgumentError(
                    "source_column",
                    f"{present[key(source_column)].name!r} is a column of parent {name!r} "
                    "already, and the union would hold two columns of one name",
                    "Pass another name, or drop that column from the parents.",
                )
    target = _target_types(fields, allow_missing_columns=allow_missing_columns)
    aligned = []
    for name, df in named.items():
        columns: list[Column] = [
            _aligned(column, fields[name].get(k), kind) for k, (column, kind) in target.items()
        ]
        if source_column is not None:
            columns.append(F.lit(name).alias(source_column))
        aligned.append(df.select(*columns))
    while len(aligned) > 1:  # a balanced tree: each union analyses a small plan
        aligned = [
            aligned[i].union(aligned[i + 1]) if i + 1 < len(aligned) else aligned[i]
            for i in range(0, len(aligned), 2)
        ]
    return aligned[0]


def _fields(parent: str, df: DataFrame, key: Callable[[str], str]) -> dict[str, StructField]:
    """The parent's columns by matching key; two columns of one key would be ambiguous."""
    found: dict[str, StructField] = {}
    for field in df.schema.fields:
        other = found.setdefault(key(field.name), field)
        if other is not field:
            raise InvalidArgumentError(
                "parents",
                f"parent {parent!r} has columns {other.name!r} and {field.name!r}, one column "
                "to a union that matches names as Spark does (in any case, unless "
                "spark.sql.caseSensitive is true)",
                "Rename or drop one of them in that parent.",
            )
    return found


def _aligned(column: str, has: StructField | None, wants: DataType) -> Column:
    if has is None:
        return F.lit(None).cast(wants).alias(column)
    source = F.col(f"`{has.name}`")
    if has.dataType != wants:
        return source.cast(wants).alias(column)
    return source if has.name == column else source.alias(column)


def _target_types(
    fields: Mapping[str, Mapping[str, StructField]], *, allow_missing_columns: bool
) -> dict[str, tuple[str, DataType]]:
    """Each column's key -> its name (as first seen) and the type every parent's fits in."""
    types: dict[str, dict[str, DataType]] = {}
    names: dict[str, str] = {}
    for parent, columns in fields.items():
        for key, field in columns.items():
            names.setdefault(key, field.name)
            types.setdefault(key, {})[parent] = field.dataType
    target: dict[str, tuple[str, DataType]] = {}
    conflicts: list[tuple[str, str | None, str]] = []
    for key, by_parent in types.items():
        column = names[key]
        missing = [name for name in fields if name not in by_parent]
        if missing and not allow_missing_columns:
            having = ", ".join(f"{p}: {t.simpleString()}" for p, t in by_parent.items())
            conflicts.append((column, having, f"missing in {', '.join(missing)}"))
            continue
        distinct = {t.simpleString(): t for t in by_parent.values()}
        if len(distinct) == 1:
            target[key] = (column, _nullable_where_any(list(by_parent.values())))
        elif set(distinct) <= set(_NUMERIC_RANK):
            target[key] = (column, distinct[max(distinct, key=_NUMERIC_RANK.__getitem__)])
        else:
            listed = ", ".join(f"{p}: {t.simpleString()}" for p, t in by_parent.items())
            conflicts.append((column, listed, "types that do not widen into one another"))
    if conflicts:
        raise SchemaMismatchError(
            f"union of {', '.join(fields)}",
            conflicts,
            fix="Cast the columns to one type in the parents (numbers widen on their own), "
            "or pass allow_missing_columns=True to fill missing columns with nulls.",
        )
    return target


def _nullable_where_any(types: Sequence[DataType]) -> DataType:
    """One type for parents whose types differ only in nested nullability (a struct field, an
    array's elements, a map's values): nullable wherever one parent's is, as Spark's own union
    types it. Spark casts nothing to a type that is NOT NULL where the data may be null."""
    first = types[0]
    if isinstance(first, StructType):
        structs = [t for t in types if isinstance(t, StructType)]
        return StructType(
            [
                StructField(
                    field.name,
                    _nullable_where_any([s.fields[i].dataType for s in structs]),
                    any(s.fields[i].nullable for s in structs),
                    field.metadata,
                )
                for i, field in enumerate(first.fields)
            ]
        )
    if isinstance(first, ArrayType):
        arrays = [t for t in types if isinstance(t, ArrayType)]
        return ArrayType(
            _nullable_where_any([a.elementType for a in arrays]),
            any(a.containsNull for a in arrays),
        )
    if isinstance(first, MapType):
        maps = [t for t in types if isinstance(t, MapType)]
        return MapType(
            _nullable_where_any([m.keyType for m in maps]),
            _nullable_where_any([m.valueType for m in maps]),
            any(m.valueContainsNull for m in maps),
        )
    return first


def join_fan_in(
    parents: Mapping[str, DataFrame], on: str | Sequence[str], *, how: str = "inner"
) -> DataFrame:
    """Align parents horizontally: join them on `on`, the chapter's JOIN-style fan-in.

    A non-key column that several parents have is prefixed with each one's name
    (`<parent>_<column>`), so no column is silently taken from the wrong parent.

    Raises:
        InvalidArgumentError: fewer than two parents, or a key a parent lacks or has twice.
        UnknownValueError: an unsupported `how`.
    """
    if how not in JOIN_HOWS:
        raise UnknownValueError("how", how, JOIN_HOWS)
    keys = [on] if isinstance(on, str) else list(on)
    if len(parents) < 2 or not keys:
        raise InvalidArgumentError(
            "parents", f"got {len(parents)} parents and keys {keys}", "Join two or more on a key."
        )
    seen: dict[str, int] = {}
    for name, df in parents.items():
        lowered = [c.lower() for c in df.columns]
        lacking = [k for k in keys if k.lower() not in lowered]
        twice = [k for k in keys if lowered.count(k.lower()) > 1]
        if lacking or twice:
            problem = f"lacks {lacking}" if lacking else f"has {twice} more than once (ambiguous)"
            raise InvalidArgumentError(
                "on", f"parent {name!r} {problem}; its columns are {df.columns}",
                "Rename or select the key columns in that parent first.",
            )  # fmt: skip
        for column in df.columns:
            if column not in keys:
                seen[column] = seen.get(column, 0) + 1
    renamed = [
        df.select(*keys, *(F.col(f"`{c}`").alias(f"{name}_{c}") if seen[c] > 1 else F.col(f"`{c}`")
                           for c in df.columns if c not in keys))
        for name, df in parents.items()
    ]  # fmt: skip
    joined = renamed[0]
    for other in renamed[1:]:
        joined = joined.join(other, on=keys, how=how)
    return joined
