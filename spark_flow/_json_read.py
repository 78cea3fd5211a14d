"""JSON lines read by Arrow in Python workers the way Spark's JSON reader reads them.

Spark (PERMISSIVE mode) decides each field on its own: a field whose value does not fit its
column is null, the other fields keep their values, and the line goes to `_corrupt_record`
(when the schema has that column). A line that is not a JSON object is null in every column.
A string column takes any value as the text the line holds (`["a","b"]`, `1.50`), dates and
timestamps are parsed as Spark parses them (zoneless times in the session's time zone), and a
number fits an integral column only within the column's range.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from spark_flow._csv_read import CORRUPT_RECORD, INTEGER_BITS, spark_lines
from spark_flow._datetime_text import date_of, days_of, instant_of

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql.types import StructType

__all__ = ["JSON_TYPES", "json_batch"]

JSON_TYPES = frozenset({"boolean", *INTEGER_BITS, "float", "double", "string", "date", "timestamp",
                        "timestamp_ntz"})  # fmt: skip
"""Column types the Arrow path reads from JSON lines."""

_DECODER = json.JSONDecoder()
# Quoted spellings Spark's reader takes for a float or double (allowNonNumericNumbers).
_INF = float("inf")
_NON_NUMERIC = {"NaN": float("nan"), "+INF": _INF, "+Infinity": _INF, "Infinity": _INF,
                "-INF": -_INF, "-Infinity": -_INF}  # fmt: skip


class _Unfit(ValueError):
    """A value that does not fit its column: null, and the line is malformed."""


def json_batch(
    data: bytes, schema: StructType, arrow_schema: pa.Schema, zone: str
) -> pa.RecordBatch | None:
    """The rows of one file of JSON lines in `schema`; None when it has no line."""
    import pyarrow as pa

    kinds = {f.name: f.dataType.typeName() for f in schema.fields if f.name != CORRUPT_RECORD}
    keeps_corrupt = CORRUPT_RECORD in schema.fieldNames()
    rows = []
    for line in spark_lines(data):
        row, malformed = _row(line, kinds, zone)
        if malformed and keeps_corrupt:
            row[CORRUPT_RECORD] = line
        rows.append(row)
    return pa.RecordBatch.from_pylist(rows, schema=arrow_schema) if rows else None


def _row(line: str, kinds: Mapping[str, str], zone: str) -> tuple[dict[str, Any], bool]:
    """The fields of `line` that fit `kinds`' columns, and whether any did not."""
    members = _members(line)
    if members is None:
        return {}, True
    row: dict[str, Any] = {}
    malformed = False
    for name, kind in kinds.items():
        value, text = members.get(name, (None, "null"))
        if value is None:
            continue
        try:
            row[name] = _convert(kind, value, text, zone)
        except _Unfit:
            malformed = True
    return row, malformed


def _members(line: str) -> dict[str, tuple[Any, str]] | None:
    """Each top-level member of the object on `line`: its value and its text as written, or
    None when the line is not one JSON object."""
    try:
        return dict(_scan_object(line))
    except (ValueError, IndexError):
        return None


def _scan_object(line: str) -> Iterator[tuple[str, tuple[Any, str]]]:
    at = _skip_space(line, 0)
    if line[at] != "{":
        raise ValueError("not an object")
    at = _skip_space(line, at + 1)
    closed = line[at] == "}"
    while not closed:
        name, at = _DECODER.raw_decode(line, at)
        at = _skip_space(line, at)
        if not isinstance(name, str) or line[at] != ":":
            raise ValueError("expected a member name and ':'")
        start = _skip_space(line, at + 1)
        value, at = _DECODER.raw_decode(line, start)
        yield name, (value, line[start:at])
        at = _skip_space(line, at)
        closed = line[at] == "}"
        if not closed and line[at] != ",":
            raise ValueError("expected ',' or '}'")
        at = _skip_space(line, at + 1)
    # What follows the object is ignored, as Spark's parser stops after the first value.


def _skip_space(line: str, at: int) -> int:
    while at < len(line) and line[at] in " \t\n\r":
        at += 1
    return at


def _convert(kind: str, value: Any, text: str, zone: str) -> Any:
    """`value` (written as `text`) in a column of `kind`, as Spark's JSON reader converts it."""
    if kind == "string":
        return value if isinstance(value, str) else text
    fitted = None if isinstance(value, bool) and kind != "boolean" else _FITS[kind](value, zone)
    if fitted is None:
        raise _Unfit(text)
    return fitted


def _integral(bits: int) -> Callable[[Any, str], int | None]:
    bound = 2 ** (bits - 1)
    return lambda value, _: value if isinstance(value, int) and -bound <= value < bound else None


def _floating(value: Any, _: str) -> float | None:
    if isinstance(value, (int, float)):
        return float(value)
    return _NON_NUMERIC.get(value) if isinstance(value, str) else None


def _temporal(kind: str) -> Callable[[Any, str], Any]:
    def parse(value: Any, zone: str) -> Any:
        if kind == "timestamp" and isinstance(value, int):
            return _epoch_seconds(value)
        if not isinstance(value, str):
            return None
        try:
            if kind != "date":
                return instant_of(kind, zone, value)
            try:
                return date_of(value)
            except ValueError:
                return days_of(value)  # how Spark 1.5 wrote dates: days since the epoch
        except ValueError:
            return None

    return parse


_FITS: dict[str, Callable[[Any, str], Any]] = {
    "boolean": lambda value, _: value if isinstance(value, bool) else None,
    **{kind: _integral(bits) for kind, bits in INTEGER_BITS.items()},
    "float": _floating,
    "double": _floating,
    "date": _temporal("date"),
    "timestamp": _temporal("timestamp"),
    "timestamp_ntz": _temporal("timestamp_ntz"),
}


def _epoch_seconds(seconds: int) -> Any:
    """A JSON integer in a timestamp column: seconds since the epoch, as Spark reads it."""
    from datetime import datetime, timezone

    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
