"""CSV and JSON lines written by Arrow in Python workers as Spark's own writers write them.

A batch written to a store Spark has no filesystem for must read back, by Spark or by anyone, as
the same batch written by Spark to a disk. pyarrow's CSV writer and `json.dumps` differ from
Spark's writers where readers notice: a quote doubled (`""`) where Spark escapes it (`\\"`), which
Spark's reader keeps as text; `nan` where Spark writes `NaN`, which its reader rejects; binary as
Python's `b'..'` text where Spark writes base64; a map as a list of pairs.

CSV as Spark writes it (its defaults: quote `"`, escape `\\`, escapeQuotes, whitespace trimmed):
a value is quoted when it holds the separator, a quote or a line break, or is empty (null is
nothing at all); inside quotes a quote is `\\"` and the backslashes before it are doubled. JSON
lines as Spark writes them: compact, null fields left out (nested ones too), NaN and infinities
as strings, decimals as numbers, binary as base64, maps as objects.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["text_writer"]

# What univocity (Spark's CSV writer) trims on write: characters up to the space.
_SPACE = "".join(map(chr, range(33)))
_SPECIAL_DOUBLES = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def text_writer(
    stream: Any, format: str, schema: pa.Schema, options: Mapping[str, str]
) -> Callable[[pa.RecordBatch], None]:
    """A function writing each batch to `stream` as Spark's `format` (csv or json) writer
    would; the CSV header first, when `options` ask for one (`header`, default true)."""
    import pyarrow as pa

    if format == "json":
        return lambda batch: stream.write(_json_lines(batch))
    sep = options.get("sep", ",")
    if options.get("header", "true").lower() == "true":  # the names, quoted as values are
        names = _csv_column(pa.array(schema.names, pa.string()), sep).to_pylist()
        stream.write((sep.join(names) + "\n").encode())
    return lambda batch: stream.write(_csv_lines(batch, sep))


def _csv_lines(batch: pa.RecordBatch, sep: str) -> bytes:
    import pyarrow as pa
    import pyarrow.compute as pc

    if batch.num_rows == 0:
        return b""
    columns = [_csv_column(column, sep) for column in batch.columns]
    lines = pc.binary_join_element_wise(
        *columns, pa.scalar(sep), null_handling="replace", null_replacement=""
    )
    return ("\n".join(lines.to_pylist()) + "\n").encode()


def _csv_column(column: pa.Array, sep: str) -> pa.Array:
    """`column`'s values as Spark's CSV writer spells them; null stays null (written empty)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text = pc.utf8_trim(column, characters=_SPACE)
        special = "[" + re.escape(sep) + '"\\n\\r]'
        plain = pc.and_(pc.invert(pc.match_substring_regex(text, special)), pc.not_equal(text, ""))
        escaped = pc.replace_substring_regex(text, pattern=r'(\\*)"', replacement=r'\1\1\\"')
        quoted = pc.binary_join_element_wise('"', escaped, '"', "")
        return pc.if_else(plain, text, quoted)
    if pa.types.is_floating(kind):
        text = column.cast(pa.string())
        for arrow, spark in _SPECIAL_DOUBLES.items():
            text = pc.if_else(pc.equal(text, arrow), spark, text)
        return text
    if pa.types.is_boolean(kind):
        return pc.if_else(column, "true", "false")
    return column.cast(pa.string())


def _json_lines(batch: pa.RecordBatch) -> bytes:
    fields = list(zip(batch.schema.names, batch.schema.types, batch.columns, strict=True))
    values = [(_json_name(name), kind, column.to_pylist()) for name, kind, column in fields]
    lines = []
    for row in range(batch.num_rows):
        members = [f"{name}:{_json_value(column[row], kind)}"
                   for name, kind, column in values if column[row] is not None]  # fmt: skip
        lines.append("{" + ",".join(members) + "}\n")
    return "".join(lines).encode()


def _json_value(value: Any, kind: pa.DataType) -> str:  # noqa: PLR0911  (one case per type)
    """`value` (a Python value of Arrow type `kind`) as Spark's JSON writer writes it."""
    import pyarrow as pa

    if value is None:
        return "null"
    if pa.types.is_struct(kind):
        members = [f"{_json_name(f.name)}:{_json_value(value[f.name], f.type)}"
                   for f in kind if value[f.name] is not None]  # fmt: skip
        return "{" + ",".join(members) + "}"
    if pa.types.is_map(kind):
        pairs = value.items() if isinstance(value, dict) else value
        members = [f"{_json_name(str(k))}:{_json_value(v, kind.item_type)}" for k, v in pairs]
        return "{" + ",".join(members) + "}"
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return "[" + ",".join(_json_value(v, kind.value_type) for v in value) + "]"
    if pa.types.is_floating(kind) and not math.isfinite(value):
        return '"NaN"' if math.isnan(value) else ('"Infinity"' if value > 0 else '"-Infinity"')
    if pa.types.is_decimal(kind):
        return format(value, "f")
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return json.dumps(base64.b64encode(value).decode())
    if pa.types.is_temporal(kind) and hasattr(value, "isoformat"):
        return json.dumps(value.isoformat())
    return json.dumps(value, ensure_ascii=False)


def _json_name(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)
