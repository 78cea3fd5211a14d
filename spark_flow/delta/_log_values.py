"""A metaData action and the partition values of add actions, checked against the protocol.

Only a log deltalake refused is checked (`_validate.diagnose`): where its kernel says "Unsupported
Delta table type: 'lonk'" or "Failed to parse value 'abc' as 'integer'", these name the version,
the column and the value in the protocol's terms.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from spark_flow.delta._mapping import PHYSICAL_NAME

_DECIMAL = re.compile(r"decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)")
_NUMBERS = {"NaN", "Infinity", "-Infinity"}  # how Delta spells the doubles JSON lacks


def _timestamp(value: str) -> object:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _integer(value: str) -> object:
    return int(value)


def _floating(value: str) -> object:
    return float(value) if value not in _NUMBERS else value


def _boolean(value: str) -> object:
    return {"true": True, "false": False}[value.lower()]


_PARSERS: dict[str, Callable[[str], object]] = {
    "string": str,
    "binary": str,
    "long": _integer,
    "integer": _integer,
    "short": _integer,
    "byte": _integer,
    "float": _floating,
    "double": _floating,
    "boolean": _boolean,
    "date": dt.date.fromisoformat,
    "timestamp": _timestamp,
    "timestamp_ntz": _timestamp,
}
_OTHER_TYPES = {"variant"}  # no partition column can have it


def metadata_defect(metadata: object) -> str | None:
    """What makes a metaData action unreadable: a schema that is no struct of Delta types, or
    partition columns the schema lacks; None where neither."""
    if not isinstance(metadata, dict):
        return "its metaData action is not a JSON object"
    schema, defect = _schema(metadata.get("schemaString"))
    if defect is not None:
        return defect
    columns = {field.get("name") for field in schema["fields"] if isinstance(field, dict)}
    missing = [c for c in metadata.get("partitionColumns") or [] if c not in columns]
    if missing:
        return f"its partitionColumns name {missing}, which its schema lacks"
    return None


def _schema(text: object) -> tuple[dict[str, Any], str | None]:
    """A metaData action's schemaString parsed, or what keeps it from parsing."""
    if not isinstance(text, str):
        return {}, "its metaData action has no schemaString (the protocol requires the schema)"
    try:
        schema = json.loads(text)
    except ValueError:
        return {}, "the schemaString of its metaData action is not JSON"
    if not isinstance(schema, dict) or not isinstance(schema.get("fields"), list):
        return {}, "the schemaString of its metaData action is not a struct type"
    for name, data_type in _leaves(schema, ""):
        if not _known(data_type):
            return {}, f"its schema gives column {name!r} the type {data_type!r}, no Delta type"
    return schema, None


def partition_value_defect(add: object, metadata: dict[str, Any]) -> str | None:
    """The partition value of an add action that is no value of its column's type, or None.

    Values are keyed by the physical name under column mapping; null ("" or absent) is allowed.
    """
    if not isinstance(add, dict) or not isinstance(add.get("partitionValues"), dict):
        return None
    values = add["partitionValues"]
    fields = json.loads(metadata["schemaString"])["fields"]
    for field in fields:
        if field.get("name") not in (metadata.get("partitionColumns") or []):
            continue
        key = (field.get("metadata") or {}).get(PHYSICAL_NAME, field["name"])
        value = values.get(key)
        if value in (None, "") or _parses(str(value), field.get("type")):
            continue
        return (
            f"the add action of {add.get('path')!r} gives partition column {field['name']!r} "
            f"the value {value!r}, which is no {field.get('type')}"
        )
    return None


def _parses(value: str, data_type: object) -> bool:
    decimal = _DECIMAL.fullmatch(str(data_type))
    try:
        if decimal is not None:
            Decimal(value)
        else:
            _PARSERS.get(str(data_type), str)(value)
    except (ValueError, KeyError, InvalidOperation):
        return False
    return True


def _known(data_type: object) -> bool:
    text = str(data_type)
    return text in _PARSERS or text in _OTHER_TYPES or _DECIMAL.fullmatch(text) is not None


def _leaves(data_type: object, name: str) -> Iterator[tuple[str, object]]:
    """(dotted name, type) of every primitive type in a schema's JSON, nested ones included."""
    if not isinstance(data_type, dict):
        yield name, data_type
        return
    kind = data_type.get("type")
    if kind == "struct":
        for field in data_type.get("fields") or []:
            inner = f"{name}.{field.get('name')}" if name else str(field.get("name"))
            yield from _leaves(field.get("type"), inner)
    elif kind == "array":
        yield from _leaves(data_type.get("elementType"), f"{name}.element")
    elif kind == "map":
        yield from _leaves(data_type.get("keyType"), f"{name}.key")
        yield from _leaves(data_type.get("valueType"), f"{name}.value")
    else:
        yield name, kind
