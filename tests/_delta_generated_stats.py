"""File statistics as delta-spark writes them, for generated tables: what file skipping trusts.

Per the protocol, keyed by physical names, nested structs as nested objects: `nullCount` for every
column, `minValues` / `maxValues` for numbers, decimals (exact JSON numbers), dates, timestamps
(cut to the millisecond, as delta-spark does: the max may lie below the largest value) and
strings (cut to 32 characters; a cut max gets delta-spark's tie-breaker `\\uffff`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Any

from _delta_tables import PHYSICAL

_PREFIX = 32
_DECIMAL = re.compile(r'"decimal:([-0-9.E+]+)"')
_NO_BOUNDS = {"boolean", "binary"}


def stats_json(fields: list[dict[str, Any]], rows: list[dict[str, Any]]) -> str:
    """The `stats` of an add action for `rows` (logical names) of the data `fields` (the log's)."""
    low: dict[str, Any] = {}
    high: dict[str, Any] = {}
    nulls: dict[str, Any] = {}
    _struct(fields, rows, low, high, nulls)
    stats = {"numRecords": len(rows), "minValues": low, "maxValues": high, "nullCount": nulls}
    # Decimals are exact JSON numbers: json would write them as floats, or refuse.
    return _DECIMAL.sub(r"\1", json.dumps(stats, default=lambda d: f"decimal:{d}"))


def _struct(
    fields: list[dict[str, Any]],
    rows: list[dict[str, Any] | None],
    low: dict[str, Any],
    high: dict[str, Any],
    nulls: dict[str, Any],
) -> None:
    for f in fields:
        name = f["metadata"].get(PHYSICAL, f["name"])
        values = [None if row is None else row.get(f["name"]) for row in rows]
        data_type = f["type"]
        if isinstance(data_type, dict) and data_type["type"] == "struct":
            low[name], high[name], nulls[name] = {}, {}, {}
            _struct(data_type["fields"], values, low[name], high[name], nulls[name])
            continue
        nulls[name] = sum(v is None for v in values)
        present = [v for v in values if v is not None]
        if not isinstance(data_type, str) or data_type in _NO_BOUNDS or not present:
            continue
        if any(isinstance(v, float) and not math.isfinite(v) for v in present):
            continue  # NaN and infinities have no JSON number
        low[name] = _spelled(data_type, min(present), high=False)
        high[name] = _spelled(data_type, max(present), high=True)


def _spelled(data_type: str, value: Any, *, high: bool) -> Any:
    if isinstance(value, dt.datetime):
        text = value.replace(microsecond=value.microsecond // 1000 * 1000, tzinfo=None)
        spelled = text.isoformat(timespec="milliseconds")
        return spelled + "Z" if data_type == "timestamp" else spelled
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str) and len(value) > _PREFIX:
        return value[:_PREFIX] + ("\uffff" if high else "")
    return value
