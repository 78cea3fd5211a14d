"""Whether delta-rs may skip files by a Spark SQL predicate: it must read it as Spark does.

`delta.read(..., filter=)` hands the predicate to deltalake's file pruning (DataFusion's SQL),
which drops every file whose partition values and statistics say no row matches. Where
DataFusion reads the predicate otherwise than Spark, that drops files holding matching rows,
in silence; so a predicate either reads alike in both, or skips no file at all (the rows are
filtered by Spark either way).
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from spark_flow.delta import _time_travel

# Text a number in a predicate cannot hide in: string literals and quoted identifiers.
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`(?:[^`]|``)*`")
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
# A string literal followed by another: Spark joins them into one (`'a' 'b'` is 'ab').
_ADJACENT_STRINGS = re.compile(rf"(?:{_STRING.pattern})\s+['\"]")
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d*)?|\.\d+)")
_FLOAT_DIGITS = 15  # a double holds any decimal number of 15 significant digits exactly
# A number literal as Spark writes it (`1.5`, `15e-1`, `10L`, `1.5BD`), and what splits a
# predicate into its comparisons.
_LITERAL = re.compile(
    r"(?<![\w.])((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(?:[lLsSyYdDfF]|[bB][dD])?(?![\w.])"
)
_HOLE = "\x00"  # where a string literal stood, once the predicate is taken apart
_CONNECTIVE = re.compile(r"\b(?:AND|OR)\b", re.IGNORECASE)
_BETWEEN = re.compile(r"(\bBETWEEN\b.*?)\bAND\b", re.IGNORECASE | re.DOTALL)  # its own AND
_INTEGER_BITS = {"byte": 7, "short": 15, "integer": 31, "long": 63}
_FLOATING = ("float", "double")
_EXACT_POWERS_OF_TEN = 22
_ROUNDING_MARGIN = Decimal("0.25")
DECIMAL_TYPE = re.compile(r"decimal\((\d+),\s*(\d+)\)")
"""A Delta decimal type as the schema spells it: its precision and scale."""


def read_alike(predicate: str, schema_json: dict[str, Any], time_zone: str | None) -> bool:
    """Whether delta-rs (DataFusion's SQL) reads `predicate` as Spark does; skipping by a
    predicate read otherwise drops files holding matching rows.

    They differ on string literals: a backslash escapes in Spark, not in DataFusion, so
    `s = 'a\\\\b'` skips the files holding `a\\b`, and Spark joins adjacent ones (`'a' 'b'`
    is 'ab'). On numbers: DataFusion parses a literal as a double, which rounds past 15
    significant digits, so against a decimal column's statistics
    `d = 978717917231933506.8604905661` skips the very file that holds the row; and it casts
    a number to the type of the column it meets (`_literals_fit`). And on time: Spark reads
    `at >= '2024-01-31 19:00:00'` in the session's time zone, DataFusion in UTC, so outside
    UTC a predicate on a TIMESTAMP column skips nothing.
    """
    if "\\" in predicate or _ADJACENT_STRINGS.search(predicate):
        return False
    if not _time_travel.is_utc(time_zone) and _mentions_instants(predicate, schema_json):
        return False
    if not _literals_fit(predicate, schema_json):
        return False
    if "decimal" not in json.dumps(schema_json):  # at any depth, array elements included
        return True
    outside_quotes = _QUOTED.sub(" ", predicate)
    return all(
        len(number.replace(".", "").lstrip("0")) <= _FLOAT_DIGITS
        for number in _NUMBER.findall(outside_quotes)
    )


def _literals_fit(predicate: str, schema_json: dict[str, Any]) -> bool:
    """Whether each number of `predicate` holds exactly in the type of every column named
    beside it (between the same ANDs and ORs, BETWEEN's own AND aside: taken as compared,
    a conservative guess); a number in quotes, in the type of every numeric column.

    DataFusion casts the literal to the column's type, Spark widens the column to the
    literal's: `i < 1.5` became `i < 1` and skipped the file holding i = 1, a FLOAT met `1.1`
    (or '1.1') rounded to a float instead of as a double, and a STRING `'01'` met `1` as the
    text '1' where Spark compares it as the number 1.
    """
    typed = [(f["name"], f["type"]) for f in fields(schema_json) if isinstance(f["type"], str)]
    quoted = [_number_in(text) for text in _STRING.findall(predicate)]
    unquoted = _BETWEEN.sub(r"\1 ", _STRING.sub(f" {_HOLE} ", predicate))
    for part in _CONNECTIVE.split(unquoted):
        numbers = [Decimal(n) for n in _LITERAL.findall(_QUOTED.sub(" ", part))]
        holes = part.count(_HOLE)
        texts, quoted = quoted[:holes], quoted[holes:]
        for name, data_type in typed:
            if not _names(part, name):
                continue
            numeric = data_type in _INTEGER_BITS or data_type in _FLOATING or "decimal" in data_type
            checked = numbers + [n for n in texts if n is not None and numeric]
            if not all(_fits(number, data_type) for number in checked):
                return False
    return True


def _number_in(literal: str) -> Decimal | None:
    """The number a string literal spells (Spark casts `'1.1'` to one), else None."""
    try:
        number = Decimal(literal[1:-1].strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _fits(number: Decimal, data_type: str) -> bool:
    """Whether `number` casts to `data_type` without changing its value (Spark's DOUBLE
    comparisons cast the literal to a double too, so any number but zero fits a double)."""
    if data_type in _FLOATING and number == 0:
        return False  # Spark takes -0.0 = 0.0, DataFusion orders -0.0 below 0.0
    if data_type == "double":
        return True
    if data_type in _INTEGER_BITS:
        bound = 2 ** _INTEGER_BITS[data_type]
        return -bound <= number < bound and number == number.to_integral_value()
    if data_type == "float":
        return _a_float(float(number))
    decimal = DECIMAL_TYPE.fullmatch(data_type)
    # Text, dates, booleans: Spark casts the column to the number's type, DataFusion the number.
    return decimal is not None and _fits_decimal(number, int(decimal[1]), int(decimal[2]))


def _a_float(value: float) -> bool:
    """Whether the double `value` is a FLOAT (32 bits) exactly."""
    try:
        (rounded,) = struct.unpack("<f", struct.pack("<f", value))
    except OverflowError:
        return False
    return math.isfinite(value) and bool(rounded == value)


def _fits_decimal(number: Decimal, precision: int, scale: int) -> bool:
    whole_digits = max(number.adjusted() + 1, 0) if number else 0  # never int(1e999999999)
    if whole_digits > precision - scale:
        return False
    if _fraction_digits(number) > scale:
        return False
    # DataFusion parses the literal as a double and scales it (x * 10^scale, rounded): a
    # decimal(38,18) met 1234567.891 as 1234567.890999999916. Exact only where the product
    # lies within rounding of the scaled number (10^22 is the last power a double holds).
    if scale > _EXACT_POWERS_OF_TEN:
        return False
    product = Decimal(float(number) * 10.0**scale)
    return abs(product - number.scaleb(scale)) < _ROUNDING_MARGIN


def _fraction_digits(number: Decimal) -> int:
    """How many digits `number` has after the point, trailing zeros aside (as `normalize()`
    would say, without rounding 1e-999999999 to 0 as it does past the context's range)."""
    _, digits, exponent = number.as_tuple()
    if not isinstance(exponent, int) or not any(digits):
        return 0
    zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(-(exponent + zeros), 0)


def _names(text: str, name: str) -> bool:
    """Whether `text` names the column `name` (plain or in backticks; Spark ignores case)."""
    return re.search(rf"(?<!\w)`?{re.escape(name)}`?(?!\w)", text, re.IGNORECASE) is not None


def _mentions_instants(predicate: str, schema_json: dict[str, Any]) -> bool:
    """Whether `predicate` names a TIMESTAMP (with time zone) field of the table, at any depth."""
    outside_strings = _STRING.sub(" ", predicate)
    return any(
        _names(outside_strings, f["name"]) for f in fields(schema_json) if f["type"] == "timestamp"
    )


def fields(node: Any) -> Iterator[dict[str, Any]]:
    """Every field of a schema's JSON, nested ones (in structs, arrays, maps) included."""
    if isinstance(node, dict):
        if "name" in node and "type" in node:
            yield node
        for value in node.values():
            yield from fields(value)
    elif isinstance(node, list):
        for value in node:
            yield from fields(value)
