"""Reading a Delta table's log with deltalake: the facts both backends decide on.

No Spark session is needed: the log gives a table's version, schema, partitioning and reader
features, the txn version each app committed, and so whether a write is already committed.
Locations go through `spark_flow.storage`, so a log on `s3://`, `gs://` or `abfss://` is read
like a local one. Only the delta-rs *commit* needs a local filesystem, and it says so itself.
"""

from __future__ import annotations

import logging

from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, TableNotFoundError

from spark_flow import storage
from spark_flow.delta._schema import table_spark_schema
from spark_flow.delta._types import TableInfo, WriteRequest, WriteResult
from spark_flow.errors import (
    InvalidArgumentError,
    NotADeltaTableError,
    StorageError,
    UnsupportedDeltaFeatureError,
)

log = logging.getLogger(__name__)

# Reader features the delta-rs readers (spark_flow.delta._read) handle; any other one is refused
# by name, so a feature added to Delta later can never read as wrong data.
READABLE_FEATURES = frozenset(
    {
        "columnMapping",
        "deletionVectors",
        "timestampNtz",
        "typeWidening",
        "typeWidening-preview",
        "v2Checkpoint",
        "vacuumProtocolCheck",
        "variantType",
        "variantType-preview",
    }
)
_READER_VERSION = 3


def open_table(path: str, version: int | None = None) -> DeltaTable | None:
    """The table at `path` (at `version`), or None where no table exists yet.

    Raises:
        InvalidArgumentError: `path` is a local file, or `version` is not one of the table's.
        StorageError: the log cannot be read from this process (credentials, network, scheme).
    """
    location = storage.folder(path)
    try:
        # One open, not is_deltatable() first: that call also holds the GIL while it waits on
        # the store, which stalls every other Python thread of the driver.
        table = DeltaTable(location)
    except (DeltaError, OSError) as exc:
        # deltalake reports a scheme it has no store for as "table not found" too: no table can
        # ever be at such a path, so it is no table still to be created.
        if isinstance(exc, TableNotFoundError) and "Unknown scheme" not in str(exc):
            return None
        raise StorageError(path, "read the Delta log of", str(exc).strip()) from exc
    if version is None:
        return table
    latest = table.version()
    if not 0 <= version <= latest:
        raise InvalidArgumentError(
            "version",
            f"the table at {path!r} has versions 0 to {latest}, not {version}",
            "Pick a version in that range (see the table's history).",
        )
    table.load_as_version(version)
    return table


def require_table(path: str, version: int | None = None) -> DeltaTable:
    """The table at `path` (at `version`); NotADeltaTableError where there is none."""
    table = open_table(path, version)
    if table is None:
        raise NotADeltaTableError(path)
    return table


def readable_table(path: str, version: int | None = None) -> DeltaTable:
    """The table at `path` (at `version`) if every reader feature it uses is one we handle.

    Raises:
        NotADeltaTableError: nothing at `path` is a Delta table.
        UnsupportedDeltaFeatureError: a reader feature or protocol version we do not read.
    """
    table = require_table(path, version)
    protocol = table.protocol()
    unknown = sorted(set(protocol.reader_features or ()) - READABLE_FEATURES)
    if protocol.min_reader_version > _READER_VERSION:
        unknown.append(f"minReaderVersion {protocol.min_reader_version}")
    if unknown:
        raise UnsupportedDeltaFeatureError(
            f"reading tables with reader features {unknown}",
            "Read this table with the delta-spark JARs on the classpath (backend 'jvm').",
        )
    return table


def info(path: str, table: DeltaTable) -> TableInfo:
    """What the log of `table` (opened from `path`) says about it."""
    return TableInfo(
        path=path,
        version=table.version(),
        schema=table_spark_schema(table),
        partition_columns=tuple(table.metadata().partition_columns),
        reader_features=tuple(sorted(table.protocol().reader_features or ())),
    )


def committed(table: DeltaTable | None, request: WriteRequest) -> str | None:
    """Why the write's `(app_id, txn_version)` is already in `table`'s log, or None."""
    if table is None or request.app_id is None:
        return None
    return request.skip_reason(table.transaction_version(request.app_id))


def skipped_write(table: DeltaTable | None, request: WriteRequest) -> WriteResult | None:
    """The result of a write that must not run because its txn is committed, else None."""
    reason = committed(table, request)
    if table is None or reason is None:
        return None
    log.info("skipping write to %s: %s", request.path, reason)
    return WriteResult(committed=False, table_version=table.version(), skipped_reason=reason)
