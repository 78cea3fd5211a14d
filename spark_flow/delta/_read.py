"""Planning a read from the Delta log alone: which files, with which values, minus which rows.

Both readers of the delta-rs backend execute the same plan: `delta.read` lets Spark's Parquet
scan do the work (`_read_spark`), `format("delta")` reads each planned file with Arrow in a Python
worker (`_read_arrow`). The plan holds what the log says and the files do not:

- the file list, pruned by a predicate on partition values and min/max/nullCount statistics;
- each file's partition values, typed, from its add action (never from folder names);
- column mapping: the physical name under which each logical column is stored;
- the rows a deletion vector removes from each file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import pyarrow as pa
from deltalake.exceptions import DeltaError
from pyspark.sql.types import (
    ArrayType,
    DataType,
    MapType,
    StructField,
    StructType,
)

from spark_flow.delta import _log, _skipping, _validate
from spark_flow.delta._log import file_key
from spark_flow.delta._mapping import PHYSICAL_NAME, is_mapped

if TYPE_CHECKING:
    import numpy as np
    from deltalake import DeltaTable

log = logging.getLogger(__name__)

_TYPE_CHANGES = "delta.typeChanges"
_INT32_DIGITS = 10


@dataclass(frozen=True)
class PlannedFile:
    """One data file of a read.

    Attributes:
        uri: the file's absolute path (local) or URI (stores), as deltalake names it.
        partition_values: logical partition column -> typed value (None: a null partition).
        deleted_rows: ascending row indexes a deletion vector removes; None: no deletion vector.
    """

    uri: str
    partition_values: dict[str, Any]
    deleted_rows: np.ndarray[Any, Any] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ScanPlan:
    """What to scan for one version of a table, and how its files map to the table's columns.

    Attributes:
        path: the table as the caller named it.
        version: the table version read.
        schema: the table's logical schema (the read's result), in the table's column order.
        physical: the schema of the data files: the non-partition columns under their physical
            names (column mapping) with the table's types, so older files widen on read.
        partition_columns: logical names of the partition columns.
        files: the files to scan, after pruning.
        files_in_table: how many files the version has before pruning.
        narrow_decimals: fields widened from a byte or short to a decimal of fewer than 10
            integer digits, which Spark's Parquet reader does not read from such files.
    """

    path: str
    version: int
    schema: StructType
    physical: StructType
    partition_columns: tuple[str, ...]
    files: tuple[PlannedFile, ...]
    files_in_table: int
    narrow_decimals: tuple[str, ...] = ()

    @property
    def data_fields(self) -> list[StructField]:
        """The logical fields stored in the data files, in the order of `physical`."""
        return [f for f in self.schema.fields if f.name not in self.partition_columns]


def logical_schema(path: str, version: int | None = None) -> StructType:
    """The schema a read of the table at `path` (at `version`) returns."""
    schema: StructType = _strip_metadata(
        StructType.fromJson(_schema_json(_log.readable_table(path, version)))
    )
    return schema


def plan(
    path: str,
    version: int | None = None,
    *,
    predicate: str | None = None,
    time_zone: str | None = None,
) -> ScanPlan:
    """Plan a read of the table at `path` (at `version`) from its log; no Spark job.

    Args:
        path: the table location.
        version: a table version; the latest when None.
        predicate: a SQL predicate; files whose partition values or statistics prove that no
            row matches are left out. The caller still filters the rows.
        time_zone: the session time zone Spark reads the predicate's timestamps in (None:
            this process's).
    """
    table, actions = _log.readable_files(path, version)
    schema_json = _schema_json(table)
    logical = _strip_metadata(StructType.fromJson(schema_json))
    partition_columns = tuple(table.metadata().partition_columns)
    stored = StructType.fromJson(_physical_json(schema_json) if is_mapped(table) else schema_json)
    physical = StructType(
        [
            _strip_metadata(p)
            for p, f in zip(stored.fields, logical.fields, strict=True)
            if f.name not in partition_columns
        ]
    )
    kept = _kept_files(table, schema_json, predicate, time_zone)
    deleted = _deleted_rows(path, table)
    uris = [_log.data_file_uri(table.table_uri, action["path"]) for action in actions]
    keys = [file_key(uri) for uri in uris]
    loose: list[str] = []  # the keys skipping compares, needed only when it skips
    if kept is not None:
        loose = [_loose(key) for key in keys]
        kept |= _logged_empty(table, actions, loose, partition_columns, kept)
    files = []
    for n, (action, uri, key) in enumerate(zip(actions, uris, keys, strict=True)):
        if kept is not None and loose[n] not in kept:
            continue
        values = {c: action.get(f"partition.{c}") for c in partition_columns}
        files.append(PlannedFile(uri, values, deleted.get(key)))
    log.debug("planned %s: %d of %d files", path, len(files), len(actions))
    return ScanPlan(
        path=path,
        version=table.version(),
        schema=logical,
        physical=physical,
        partition_columns=partition_columns,
        files=tuple(files),
        files_in_table=len(actions),
        narrow_decimals=tuple(_narrow_decimals(schema_json)),
    )


def _schema_json(table: DeltaTable) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(table.schema().to_json())
    return schema


def _loose(key: str) -> str:
    """`key` decoded until it stops changing: deltalake's `file_uris` encode a table's root
    but only some characters of a file's key (`sales%202024/country=a%252Fb c/...`), so one
    decoding cannot match both. Two files equal only when loosened would both be kept: a
    superset of the files is safe, the rows are filtered anyway."""
    while (decoded := unquote(key)) != key:
        key = decoded
    return key


def _kept_files(
    table: DeltaTable, schema_json: dict[str, Any], predicate: str | None, time_zone: str | None
) -> set[str] | None:
    """The files that may hold rows matching `predicate`, or None (keep all)."""
    if predicate is None:
        return None
    if not _skipping.read_alike(predicate, schema_json, time_zone):
        log.info("no file skipping for %r on %s: delta-rs would read the predicate otherwise",
                 predicate, table.table_uri)  # fmt: skip
        return None
    try:
        listed = table.file_uris(file_pruning_predicate=predicate)
        return {_loose(file_key(uri, encoded=False)) for uri in listed}
    except Exception as exc:  # noqa: BLE001
        # Skipping is an optimisation: a predicate delta-rs cannot use still filters the rows.
        # Besides DeltaError, delta-rs raises bare Exceptions (a timestamp before 1677 cast
        # to nanoseconds), and whatever it raises must not fail a read that needs no skipping.
        log.info("no file skipping for %r on %s: %s", predicate, table.table_uri, exc)
        return None


def _logged_empty(
    table: DeltaTable,
    actions: list[dict[str, Any]],
    loose: list[str],
    partition_columns: tuple[str, ...],
    kept: set[str],
) -> set[str]:
    """The files whose partition value is logged as "" in some column: null per the protocol
    (and as deltalake lists it), but compared as the empty string by delta-rs skipping, which
    would drop them for a filter true on null (`k IS NULL`). deltalake's writer logs so.

    Found as the files listed with a null value in a column that skipping by `<column> IS NULL`
    does not keep; all the files listed with a null where that skipping fails. `loose` holds
    each action's file key; files already `kept` need no listing.
    """
    found: set[str] = set()
    for column in partition_columns:
        nulls = {
            key
            for action, key in zip(actions, loose, strict=True)
            if action.get(f"partition.{column}") is None
        } - kept
        if not nulls:
            continue
        quoted = column.replace('"', '""')
        try:
            listed = table.file_uris(file_pruning_predicate=f'"{quoted}" IS NULL')
        except Exception as exc:  # noqa: BLE001  (as in _kept_files: skipping is optional)
            log.info("keeping every file of a null %s partition: %s", column, exc)
            found |= nulls
            continue
        found |= nulls - {_loose(file_key(uri, encoded=False)) for uri in listed}
    return found


def _narrow_decimals(schema_json: dict[str, Any]) -> Iterator[str]:
    """Fields whose `delta.typeChanges` widened a byte or short to a decimal(p, s) with
    p - s < 10: Delta allows it (3 and 5 integer digits suffice), Spark reads an INT32 column
    as a decimal only with 10."""
    for node in _skipping.fields(schema_json):
        changes = (node.get("metadata") or {}).get(_TYPE_CHANGES) or []
        for change in changes if isinstance(changes, list) else []:
            to = _skipping.DECIMAL_TYPE.fullmatch(str(change.get("toType", "")))
            digits = _INT32_DIGITS if to is None else int(to.group(1)) - int(to.group(2))
            if change.get("fromType") in {"byte", "short"} and digits < _INT32_DIGITS:
                yield str(node["name"])


def _deleted_rows(path: str, table: DeltaTable) -> dict[str, np.ndarray[Any, Any]]:
    """File -> the row indexes its deletion vector removes (files with one only).

    Raises:
        InvalidDeltaLogError: a deletion vector file is missing or does not read.
    """
    if "deletionVectors" not in (table.protocol().reader_features or []):
        return {}
    import numpy as np

    try:
        vectors = pa.table(table.deletion_vectors())
    except (DeltaError, OSError) as exc:
        raise _validate.unreadable_deletion_vector(path, table.version(), exc) from exc
    paths = vectors.column("filepath").to_pylist()
    masks = vectors.column("selection_vector").combine_chunks()
    deleted = {}
    for index, file in enumerate(paths):
        keep = masks[index].values.to_numpy(zero_copy_only=False)
        deleted[file_key(file)] = np.flatnonzero(~keep).astype(np.int64)
    return deleted


def _physical_json(node: Any) -> Any:
    """A Delta schema (JSON) with every field renamed to its physical name, nested ones too."""
    if isinstance(node, dict):
        renamed = {key: _physical_json(value) for key, value in node.items()}
        if "name" in node and "metadata" in node and PHYSICAL_NAME in node["metadata"]:
            renamed["name"] = node["metadata"][PHYSICAL_NAME]
        return renamed
    if isinstance(node, list):
        return [_physical_json(item) for item in node]
    return node


def _strip_metadata(data: Any) -> Any:
    """`data` (a type or field) without field metadata: column mapping keys are the log's."""
    if isinstance(data, StructField):
        return StructField(data.name, _strip_metadata(data.dataType), data.nullable)
    if isinstance(data, StructType):
        return StructType([_strip_metadata(f) for f in data.fields])
    if isinstance(data, ArrayType):
        return ArrayType(_strip_metadata(data.elementType), data.containsNull)
    if isinstance(data, MapType):
        return MapType(
            _strip_metadata(data.keyType), _strip_metadata(data.valueType), data.valueContainsNull
        )
    result: DataType = data
    return result
