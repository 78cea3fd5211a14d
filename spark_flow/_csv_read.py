"""CSV files read by Arrow in Python workers the way Spark's CSV reader reads them.

Spark (PERMISSIVE mode, `multiLine` off) reads one record per line and its columns by
position: with `header`, the file's first line is skipped whatever names it holds (Spark's
`enforceSchema`). An empty field is null, and a zoneless timestamp is a wall time in the
session's time zone. A line with another number of fields, or a field that does not parse as
its column's type, is malformed: the fields that parse are kept, the others are null, and the
line goes to `_corrupt_record` when the schema has that column.

Most files are clean, so pyarrow parses the file and casts whole columns first; a file where
anything does not parse is read again line by line, deciding each field as Spark does.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import partial
from typing import TYPE_CHECKING, Any

from spark_flow._datetime_text import date_of, instant_of

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql.types import DataType, StructType

__all__ = [
    "CORRUPT_RECORD", "CSV_TYPES", "INTEGER_BITS", "JAVA_DOUBLE", "csv_batch", "spark_lines",
]  # fmt: skip

CORRUPT_RECORD = "_corrupt_record"  # Spark's columnNameOfCorruptRecord default

_INTEGER = re.compile(r"[+-]?\d+")
INTEGER_BITS = {"byte": 8, "short": 16, "integer": 32, "long": 64}
JAVA_DOUBLE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?[dDfF]?")
"""A finite number as Java's Double.parseDouble (which Spark calls) takes it: optional exponent
and d/f suffix, ASCII digits only (Python's float() also takes other scripts' digits)."""
# Spark's own spellings of the specials (nanValue, positiveInf, negativeInf).
_INF = float("inf")
_SPECIALS = {"NaN": float("nan"), "Inf": _INF, "-Inf": -_INF, "Infinity": _INF, "+Infinity": _INF,
             "-Infinity": -_INF}  # fmt: skip
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_PLAIN_NUMBER = r"[^0-9eE+.\-]"  # a value holding any other character is left to Python
_LINE_BREAK = re.compile(r"\r\n|\r|\n")

CSV_TYPES = frozenset({"boolean", *INTEGER_BITS, "float", "double", "decimal", "string", "date",
                       "timestamp", "timestamp_ntz"})  # fmt: skip
"""Column types the Arrow path reads from CSV: Spark's CSV reader has no other either."""


def spark_lines(data: bytes) -> list[str]:
    """The non-blank lines of a file as Spark's line-based readers split it: at its line breaks
    only (str.splitlines would also split at \x1c or \u2028 inside a field)."""
    return [
        line for line in _LINE_BREAK.split(data.decode("utf-8", errors="replace")) if line.strip()
    ]


def csv_batch(
    data: bytes, schema: StructType, arrow_schema: pa.Schema, options: Mapping[str, str],
    zone: str,
) -> pa.RecordBatch:  # fmt: skip
    """The rows of one CSV file's `data` in `schema` (whose Arrow form is `arrow_schema`)."""
    import pyarrow as pa

    lines = spark_lines(data)
    if options.get("header", "false").lower() == "true":
        lines = lines[1:]
    fields = [f for f in schema.fields if f.name != CORRUPT_RECORD]
    sep = options.get("sep", ",")
    columns = _whole_columns(lines, fields, sep, zone) if lines else None
    if columns is None:
        columns = _line_by_line(lines, fields, sep, zone)
    else:
        columns[CORRUPT_RECORD] = [None] * len(lines)
    arrays = [_array(columns[f.name], f.type) for f in arrow_schema]
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema)


def _array(values: Any, arrow_type: pa.DataType) -> pa.Array:
    """`values` (a list, or a column pyarrow already cast) as one array of `arrow_type`."""
    import pyarrow as pa

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        return values.cast(arrow_type)
    return pa.array(values, arrow_type)


def _whole_columns(
    lines: list[str], fields: list[Any], sep: str, zone: str
) -> dict[str, Any] | None:
    """Every column parsed and cast by pyarrow, or None when any line or value does not fit."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyarrow import csv as pa_csv

    names = [f"c{i}" for i in range(len(fields))]
    try:
        table = pa_csv.read_csv(
            pa.py_buffer("\n".join(lines).encode()),
            read_options=pa_csv.ReadOptions(column_names=names),
            parse_options=pa_csv.ParseOptions(delimiter=sep, escape_char="\\"),
            convert_options=pa_csv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=True,
                null_values=[""],
            ),
        )
    except pa.ArrowInvalid:  # a line with another number of fields, among others
        return None
    if table.num_rows != len(lines):  # a quoted line break: Spark reads two records
        return None
    columns: dict[str, Any] = {}
    for name, field in zip(names, fields, strict=True):
        values = table.column(name)
        kind = field.dataType.typeName()
        try:
            if kind == "string":
                columns[field.name] = values
            elif kind in ("timestamp", "timestamp_ntz"):
                columns[field.name] = _each(values.to_pylist(), _converter(field.dataType, zone))
            elif kind == "boolean":
                lower = pc.utf8_lower(values)
                spelled = pc.is_in(lower, value_set=pa.array(["true", "false"]))
                if not pc.all(pc.or_(pc.is_null(values), spelled)).as_py():
                    return None  # "1", "yes": pyarrow's booleans, not Spark's
                columns[field.name] = pc.equal(lower, "true")
            else:
                if (
                    kind in ("float", "double")
                    and pc.any(pc.match_substring_regex(values, _PLAIN_NUMBER)).as_py()
                ):
                    return None  # NaN, Inf, suffixes: Spark's spellings, decided in Python
                columns[field.name] = values.cast(_arrow_type(field.dataType))
        except (pa.ArrowInvalid, ValueError):
            return None
    return columns


def _each(values: list[str | None], convert: Callable[[str], Any]) -> list[Any]:
    """`values` converted; ValueError when one does not parse."""
    return [None if v is None else convert(v) for v in values]


def _line_by_line(lines: list[str], fields: list[Any], sep: str, zone: str) -> dict[str, Any]:
    """The columns of `lines` decided field by field, malformed lines kept in the corrupt one."""
    converters = [_converter(f.dataType, zone) for f in fields]
    columns: dict[str, list[Any]] = {f.name: [] for f in fields}
    corrupt: list[str | None] = []
    for line in lines:
        tokens = next(csv.reader([line], delimiter=sep, escapechar="\\"), [])
        malformed = len(tokens) != len(fields)
        for i, (field, convert) in enumerate(zip(fields, converters, strict=True)):
            token = tokens[i] if i < len(tokens) else ""
            value = None
            if token != "":
                try:
                    value = convert(token)
                except (ValueError, ArithmeticError):
                    malformed = True
            columns[field.name].append(value)
        corrupt.append(line if malformed else None)
    return {**columns, CORRUPT_RECORD: corrupt}


def _converter(data_type: DataType, zone: str) -> Callable[[str], Any]:
    """Spark's conversion of one CSV field to `data_type`; raises ValueError where Spark's
    would fail (the line is then malformed). Other types are refused before any job."""
    from pyspark.sql.types import DecimalType

    kind = data_type.typeName()
    if isinstance(data_type, DecimalType):
        return _decimal(data_type.precision, data_type.scale)
    if kind in INTEGER_BITS:
        return partial(_integer, 2 ** (INTEGER_BITS[kind] - 1))
    if kind in ("timestamp", "timestamp_ntz"):
        return partial(instant_of, kind, zone)
    simple: dict[str, Callable[[str], Any]] = {
        "string": str, "float": _floating, "double": _floating, "boolean": _boolean,
        "date": date_of,
    }  # fmt: skip
    return simple[kind]


def _integer(bound: int, token: str) -> int:
    value = int(token) if _INTEGER.fullmatch(token) else bound
    if not -bound <= value < bound:
        raise ValueError(token)
    return value


def _floating(token: str) -> float:
    stripped = token.strip()  # Java's parseDouble trims
    if stripped in _SPECIALS:
        return _SPECIALS[stripped]
    if not JAVA_DOUBLE.fullmatch(stripped):
        raise ValueError(token)
    return float(stripped.rstrip("dDfF"))


def _boolean(token: str) -> bool:
    spelled = token.lower()
    if spelled not in ("true", "false"):
        raise ValueError(token)
    return spelled == "true"


def _decimal(precision: int, scale: int) -> Callable[[str], Decimal]:
    quantum = Decimal(1).scaleb(-scale)

    def parse(token: str) -> Decimal:
        plain = token.replace(",", "")  # Spark's parser drops grouping commas
        if not _DECIMAL.fullmatch(plain):
            raise ValueError(token)
        try:
            value = Decimal(plain).quantize(quantum, rounding=ROUND_HALF_UP)
        except InvalidOperation as exc:
            raise ValueError(token) from exc
        if len(value.as_tuple().digits) > precision and value != 0:
            raise ValueError(token)
        return value

    return parse


def _arrow_type(data_type: DataType) -> pa.DataType:
    from pyspark.sql.pandas.types import to_arrow_type

    return to_arrow_type(data_type)
