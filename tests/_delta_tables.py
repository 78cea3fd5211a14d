"""Delta tables built the way the protocol says, for the readers' tests: no copied fixtures.

deltalake writes neither column-mapped files nor deletion vectors, so `TableBuilder` writes the
log (JSON commits) and the Parquet files itself, as another engine (Spark with delta-spark,
Databricks) would: physical column names (`col-<uuid>`) and field ids under column mapping,
deletion vectors as RoaringBitmapArrays inline (Z85) or in `deletion_vector_<uuid>.bin` files,
partition values only in the log, files wherever the writer wants them.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import struct
import uuid
import zlib
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq
from pyroaring import BitMap

PHYSICAL = "delta.columnMapping.physicalName"
FIELD_ID = "delta.columnMapping.id"
# A table's columns with nesting at every depth (a struct, structs in an array and a map), for
# column mapping, which names nested fields physically too.
NESTED_FIELDS: list[tuple[str, Any]] = [
    ("id", "long"),
    ("p", "string"),
    ("s", [("x", "long"), ("y", "string")]),
    ("arr", {"type": "array", "elementType": [("a", "integer")], "containsNull": True}),
    (
        "m",
        {"type": "map", "keyType": "string", "valueType": [("b", "string")],
         "valueContainsNull": True},
    ),
]  # fmt: skip
_Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
_ROARING_MAGIC = 1681511377
_PRIMITIVES = {
    "string": pa.string(),
    "long": pa.int64(),
    "integer": pa.int32(),
    "short": pa.int16(),
    "byte": pa.int8(),
    "double": pa.float64(),
    "float": pa.float32(),
    "boolean": pa.bool_(),
    "binary": pa.binary(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "timestamp_ntz": pa.timestamp("us"),
}


def z85(data: bytes) -> str:
    """Z85 text of `data`, zero-padded to a multiple of 4 bytes as Delta's inline DVs are."""
    data += b"\0" * (-len(data) % 4)
    out = []
    for (word,) in struct.iter_unpack(">I", data):
        chars, rest = [], word
        for _ in range(5):
            rest, digit = divmod(rest, 85)
            chars.append(_Z85[digit])
        out.extend(reversed(chars))
    return "".join(out)


def _typed(data_type: pa.DataType, value: Any) -> Any:
    """A value of the log (statistics JSON, partition value text) as an Arrow `data_type` one."""
    if isinstance(value, Decimal) and pa.types.is_floating(data_type):
        return float(value)
    if value is None or not isinstance(value, str):
        return value
    if pa.types.is_binary(data_type):
        return value.encode()
    if pa.types.is_timestamp(data_type):  # Arrow's cast takes no zoneless text for UTC
        at = dt.datetime.fromisoformat(value)
        return at.replace(tzinfo=dt.timezone.utc) if data_type.tz and not at.tzinfo else at
    return pa.scalar(value).cast(data_type).as_py()


_TEXT_MAP = pa.map_(pa.string(), pa.string())
_METADATA = pa.struct(
    [("id", pa.string()), ("name", pa.string()), ("description", pa.string()),
     ("format", pa.struct([("provider", pa.string()), ("options", _TEXT_MAP)])),
     ("schemaString", pa.string()), ("partitionColumns", pa.list_(pa.string())),
     ("configuration", _TEXT_MAP), ("createdTime", pa.int64())]
)  # fmt: skip
_PROTOCOL = pa.struct(
    [("minReaderVersion", pa.int32()), ("minWriterVersion", pa.int32()),
     ("readerFeatures", pa.list_(pa.string())), ("writerFeatures", pa.list_(pa.string()))]
)  # fmt: skip


def roaring_array(rows: list[int]) -> bytes:
    """Delta's RoaringBitmapArray (portable format) of 64-bit row indexes."""
    groups = itertools.groupby(sorted(rows), key=lambda row: row >> 32)
    bitmaps = [(high, BitMap(row & 0xFFFFFFFF for row in lows)) for high, lows in groups]
    out = struct.pack("<iq", _ROARING_MAGIC, len(bitmaps))
    for high, bitmap in bitmaps:
        out += struct.pack("<i", high) + bitmap.serialize()
    return out


class TableBuilder:
    """A Delta table written commit by commit, per the protocol.

    Args:
        root: the table folder.
        fields: the logical schema: `(name, Delta type JSON)` pairs, e.g. `("id", "long")`.
        mapping: `none`, `name` or `id` (column mapping mode).
        features: True for reader v3 / writer v7 with feature lists, False for the legacy
            protocol (reader 2 / writer 5 under column mapping, 1 / 2 otherwise).
        deletion_vectors: enable deletion vectors (needs `features`).
    """

    def __init__(
        self,
        root: Path,
        fields: list[tuple[str, Any]],
        *,
        mapping: str = "none",
        features: bool = True,
        deletion_vectors: bool = False,
        partition_columns: tuple[str, ...] = (),
        reader_features: tuple[str, ...] = (),
    ) -> None:
        self.root = root
        self.mapping = mapping
        self.partition_columns = partition_columns
        self.ids = itertools.count(1)
        schema = {"type": "struct", "fields": [self._field(n, t) for n, t in fields]}
        self.schema = schema
        self.version = -1
        readers = set(reader_features)
        if mapping != "none":
            readers.add("columnMapping")
        if deletion_vectors:
            readers.add("deletionVectors")
        if features:
            protocol: dict[str, Any] = {
                "minReaderVersion": 3,
                "minWriterVersion": 7,
                "readerFeatures": sorted(readers),
                "writerFeatures": sorted(readers),
            }
        else:
            legacy = mapping != "none"
            protocol = {
                "minReaderVersion": 2 if legacy else 1,
                "minWriterVersion": 5 if legacy else 2,
            }
        self.protocol = protocol
        self.configuration = {"delta.columnMapping.mode": mapping}
        if mapping != "none":
            self.configuration["delta.columnMapping.maxColumnId"] = str(next(self.ids) - 1)
        if deletion_vectors:
            self.configuration["delta.enableDeletionVectors"] = "true"
        self.commit({"protocol": protocol}, self._metadata())

    def _field(self, name: str, data_type: Any) -> dict[str, Any]:
        metadata = {}
        if self.mapping != "none":
            metadata = {FIELD_ID: next(self.ids), PHYSICAL: f"col-{uuid.uuid4()}"}
        return {"name": name, "type": self._type(data_type), "nullable": True, "metadata": metadata}

    def _type(self, data_type: Any) -> Any:
        if isinstance(data_type, list):  # a struct: [(name, type), ...]
            return {"type": "struct", "fields": [self._field(n, t) for n, t in data_type]}
        if isinstance(data_type, dict) and data_type["type"] == "array":
            element = self._type(data_type["elementType"])
            return {**data_type, "elementType": element}
        if isinstance(data_type, dict) and data_type["type"] == "map":
            key, value = self._type(data_type["keyType"]), self._type(data_type["valueType"])
            return {**data_type, "keyType": key, "valueType": value}
        return data_type

    def _metadata(self) -> dict[str, Any]:
        return {
            "metaData": {
                "id": "fixture",
                "format": {"provider": "parquet", "options": {}},
                "schemaString": json.dumps(self.schema),
                "partitionColumns": list(self.partition_columns),
                "configuration": self.configuration,
                "createdTime": 0,
            }
        }

    def commit(self, *actions: dict[str, Any]) -> int:
        """Write the next commit with `actions`; returns its version."""
        self.version += 1
        log = self.root / "_delta_log"
        log.mkdir(parents=True, exist_ok=True)
        lines = [json.dumps(a) for a in actions]
        (log / f"{self.version:020d}.json").write_text("\n".join(lines) + "\n")
        return self.version

    def field(self, column: str) -> dict[str, Any]:
        """The logged field of the top-level `column` (name, type, metadata)."""
        return next(f for f in self.schema["fields"] if f["name"] == column)

    def physical(self, column: str) -> str:
        return str(self.field(column)["metadata"].get(PHYSICAL, column))

    def add(
        self,
        rows: list[dict[str, Any]],
        partition_values: dict[str, str | None] | None = None,
        *,
        relative: str | None = None,
        absolute: bool = False,
        stats: bool = True,
        **parquet: Any,
    ) -> dict[str, Any]:
        """Write `rows` (logical names; maps as lists of pairs) to a new file; its add action.

        The file goes to `relative` (a path inside the table, any layout; default a random name
        at the root); `absolute` names it by its full `file:` URI in the log; `parquet` are
        options of `pyarrow.parquet.write_table` (INT96 timestamps, decimals as integers ...).
        """
        relative = relative or f"{uuid.uuid4().hex[:4]}/part-{uuid.uuid4()}.parquet"
        data_fields = [f for f in self.schema["fields"] if f["name"] not in self.partition_columns]
        arrow_schema = pa.schema([self._arrow_field(f) for f in data_fields])
        physical_rows = [
            {self._name(f): self._value(f["type"], row.get(f["name"])) for f in data_fields}
            for row in rows
        ]
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(physical_rows, schema=arrow_schema), target, **parquet)
        values = {self.physical(c): v for c, v in (partition_values or {}).items()}
        path = target.as_uri() if absolute else quote(relative)
        add = {
            "path": path,
            "partitionValues": values,
            "size": target.stat().st_size,
            "modificationTime": 0,
            "dataChange": True,
        }
        if stats:
            add["stats"] = json.dumps({"numRecords": len(rows)})
        return {"add": add}

    def checkpoint(
        self,
        adds: list[dict[str, Any]],
        *,
        stats_as_json: bool = True,
        stats_as_struct: bool = True,
    ) -> Path:
        """A classic checkpoint of the latest version, shaped as delta-spark writes it.

        It holds the builder's protocol and metadata and `adds` (the version's live files).
        As the table properties `delta.checkpoint.writeStatsAsJson` / `writeStatsAsStruct`
        say, a file's statistics are its `stats` text and/or a typed `stats_parsed` struct
        (top-level columns, by physical name); partition values are also a typed
        `partitionValues_parsed` struct. Returns the checkpoint file.
        """
        fields = {self._name(f): f for f in self.schema["fields"]}
        partitions = {self.physical(c) for c in self.partition_columns}
        data = [f for name, f in fields.items() if name not in partitions]
        bounded = [f for f in data if isinstance(f["type"], str) and f["type"] != "binary"]
        bounds = pa.struct([self._arrow_field(f) for f in bounded])
        nulls = pa.struct([(self._name(f), pa.int64()) for f in data])
        stats_type = pa.struct([("numRecords", pa.int64()), ("minValues", bounds),
                                ("maxValues", bounds), ("nullCount", nulls)])  # fmt: skip
        add_fields = [("path", pa.string()), ("partitionValues", _TEXT_MAP), ("size", pa.int64()),
                      ("modificationTime", pa.int64()), ("dataChange", pa.bool_()),
                      ("tags", _TEXT_MAP)]  # fmt: skip
        if stats_as_json:
            add_fields.append(("stats", pa.string()))
        if partitions:
            parsed = [pa.field(n, self._arrow(fields[n]["type"])) for n in sorted(partitions)]
            add_fields.append(("partitionValues_parsed", pa.struct(parsed)))
        if stats_as_struct:
            add_fields.append(("stats_parsed", stats_type))
        rows = [
            {"protocol": self.protocol},
            self._metadata(),
        ]
        for action in adds:
            no_dv = "deletionVector" not in action["add"]
            assert no_dv, "no DVs in this shape: see _delta_logs.checkpoint_actions"
            add = {k: v for k, v in action["add"].items() if k in dict(add_fields)}
            stats = json.loads(action["add"].get("stats") or "{}", parse_float=Decimal)
            if not stats_as_json:
                add.pop("stats", None)
            if stats_as_struct and stats:
                add["stats_parsed"] = {
                    key: {c: _typed(bounds.field(c).type, v) for c, v in stats[key].items()}
                    if key in ("minValues", "maxValues")
                    else stats[key]
                    for key in stats
                    if key != "tightBounds"
                }
            if partitions:
                values = action["add"]["partitionValues"]
                add["partitionValues_parsed"] = {
                    n: _typed(self._arrow(fields[n]["type"]), values.get(n)) for n in partitions
                }
            rows.append({"add": add})
        schema = pa.schema(
            [("add", pa.struct(add_fields)), ("metaData", _METADATA), ("protocol", _PROTOCOL)]
        )
        log = self.root / "_delta_log"
        target = log / f"{self.version:020d}.checkpoint.parquet"
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), target)
        (log / "_last_checkpoint").write_text(json.dumps({"version": self.version,
                                                          "size": len(rows)}))  # fmt: skip
        return target

    def delete(self, add: dict[str, Any], rows: list[int], *, inline: bool) -> list[dict[str, Any]]:
        """The actions of a commit that deletes `rows` (indexes) of the file of `add` by a DV."""
        data = roaring_array(rows)
        if inline:
            dv = {"storageType": "i", "pathOrInlineDv": z85(data), "sizeInBytes": len(data)}
        else:
            dv_id = uuid.uuid4()
            blob = struct.pack(">i", len(data)) + data + struct.pack(">I", zlib.crc32(data))
            (self.root / f"deletion_vector_{dv_id}.bin").write_bytes(b"\x01" + blob)
            dv = {
                "storageType": "u",
                "pathOrInlineDv": z85(dv_id.bytes),
                "offset": 1,
                "sizeInBytes": len(data),
            }
        dv["cardinality"] = len(rows)
        before = add["add"]
        remove = {
            "path": before["path"],
            "deletionTimestamp": 0,
            "dataChange": True,
            "partitionValues": before["partitionValues"],
            "size": before["size"],
        }
        if "deletionVector" in before:
            remove["deletionVector"] = before["deletionVector"]
        after = copy.deepcopy(add)
        after["add"]["deletionVector"] = dv
        return [{"remove": remove}, after]

    def rename(self, column: str, new: str) -> int:
        """Rename a top-level column (column mapping: the log changes, the files do not)."""
        for f in self.schema["fields"]:
            if f["name"] == column:
                f["name"] = new
        return self.commit(self._metadata())

    def widen(self, column: str, data_type: str) -> int:
        """Change a column's type (type widening: files written before keep the narrower one),
        recorded in its `delta.typeChanges` as the protocol asks."""
        for f in self.schema["fields"]:
            if f["name"] == column:
                change = {"fromType": f["type"], "toType": data_type}
                f["metadata"].setdefault("delta.typeChanges", []).append(change)
                f["type"] = data_type
        return self.commit(self._metadata())

    def drop(self, column: str) -> int:
        self.schema["fields"] = [f for f in self.schema["fields"] if f["name"] != column]
        return self.commit(self._metadata())

    def _name(self, field: dict[str, Any]) -> str:
        return str(field["metadata"].get(PHYSICAL, field["name"]))

    def _arrow_field(self, field: dict[str, Any]) -> pa.Field:
        metadata = None
        if FIELD_ID in field["metadata"]:
            metadata = {b"PARQUET:field_id": str(field["metadata"][FIELD_ID]).encode()}
        return pa.field(self._name(field), self._arrow(field["type"]), metadata=metadata)

    def _arrow(self, data_type: Any) -> pa.DataType:
        if isinstance(data_type, str):
            if data_type.startswith("decimal"):
                precision, scale = data_type[8:-1].split(",")
                return pa.decimal128(int(precision), int(scale))
            return _PRIMITIVES[data_type]
        if data_type["type"] == "struct":
            return pa.struct([self._arrow_field(f) for f in data_type["fields"]])
        if data_type["type"] == "array":
            return pa.list_(self._arrow(data_type["elementType"]))
        return pa.map_(self._arrow(data_type["keyType"]), self._arrow(data_type["valueType"]))

    def _value(self, data_type: Any, value: Any) -> Any:
        """A logical Python value with its struct keys renamed to physical names."""
        if value is None or isinstance(data_type, str):
            return value
        if data_type["type"] == "struct":
            return {
                self._name(f): self._value(f["type"], value.get(f["name"]))
                for f in data_type["fields"]
            }
        if data_type["type"] == "array":
            return [self._value(data_type["elementType"], v) for v in value]
        key, item = data_type["keyType"], data_type["valueType"]
        return [(self._value(key, k), self._value(item, v)) for k, v in value]
