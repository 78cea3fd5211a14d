"""Reading a Delta table's log with deltalake: the facts both backends decide on.

No Spark session is needed: the log gives a table's version, schema, partitioning and reader
features, the txn version each app committed, and so whether a write is already committed.
Locations go through `spark_flow.storage`, so a log on `s3://`, `gs://` or `abfss://` is read
like a local one, with the store settings of `storage.options`, once the store was found
reachable (`storage.check_reachable`).

A log deltalake cannot open is diagnosed (`_validate`) into an `InvalidDeltaLogError` or an
`UnsupportedDeltaFeatureError`; whether the reader may read a table, and our writer write to
it, is decided by the allow-lists of `_protocol`.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, TableNotFoundError

from spark_flow import storage
from spark_flow.delta import _replay, _validate
from spark_flow.delta._protocol import (
    WRITER_FEATURES_WHEN_UNUSED,
    Protocol,
    refusal,
    unreadable,
    unwritable,
)
from spark_flow.delta._schema import table_spark_schema
from spark_flow.delta._types import TableInfo, WriteRequest, WriteResult
from spark_flow.errors import (
    InvalidArgumentError,
    InvalidDeltaLogError,
    NotADeltaTableError,
    SparkFlowError,
    StorageError,
    UnsupportedDeltaFeatureError,
)

log = logging.getLogger(__name__)

# An absolute URI inside a path deltalake lists (`/table/file:/elsewhere/f.parquet`).
_EMBEDDED_URI = re.compile(r"(?<=/)[a-zA-Z][a-zA-Z0-9+.-]*:/")


def open_table(path: str, version: int | None = None) -> DeltaTable | None:
    """The table at `path` (at `version`), or None where no table exists yet.

    Raises:
        InvalidArgumentError: `path` is a local file, or `version` is not one of the table's.
        InvalidDeltaLogError: the log breaks the Delta protocol (at `version`).
        UnsupportedDeltaFeatureError: the log needs a feature deltalake cannot even open.
        StorageError: the log cannot be read from this process (credentials, network, scheme).
    """
    location = storage.folder(path)
    storage.check_reachable(location)
    try:
        # One open, not is_deltatable() first: that call also holds the GIL while it waits on
        # the store, which stalls every other Python thread of the driver.
        table = DeltaTable(location, storage_options=storage.options(location))
    except (DeltaError, OSError) as exc:
        # deltalake reports a scheme it has no store for as "table not found" too: no table can
        # ever be at such a path, so it is no table still to be created.
        if isinstance(exc, TableNotFoundError) and "Unknown scheme" not in str(exc):
            return None
        if version is None:
            raise _unreadable_log(path, None, exc) from exc
        # A log broken after `version` still serves time travel to it.
        return _open_at(path, location, version)
    if version is None:
        return table
    latest = table.version()
    if not 0 <= version <= latest:
        # The listing knows the first version too, where log cleanup removed the ones before.
        raise _validate.diagnose(path, version) or InvalidArgumentError(
            "version",
            f"the table at {path!r} has versions 0 to {latest}, not {version}",
            "Pick a version in that range (see the table's history).",
        )
    try:
        table.load_as_version(version)
    except (DeltaError, OSError) as exc:
        raise _unreadable_log(path, version, exc) from exc
    return table


def _open_at(path: str, location: str, version: int) -> DeltaTable:
    try:
        return DeltaTable(location, version=version, storage_options=storage.options(location))
    except (DeltaError, OSError) as exc:
        raise _unreadable_log(path, version, exc) from exc


def _unreadable_log(path: str, version: int | None, cause: Exception) -> SparkFlowError:
    """Our error for a log deltalake failed to open: the defect, or the store's failure."""
    try:
        found = _validate.diagnose(path, version)
    except StorageError as failed:
        # The store that failed deltalake fails the listing too: pyarrow says why in one line,
        # where deltalake's message is a chain of lines with terminal colour codes in them.
        log.debug("deltalake could not open %s: %s", path, cause)
        return failed
    if found is not None:
        log.debug("deltalake could not open %s: %s", path, cause)
        return found
    return storage.store_error(path, "read the Delta log of", cause)


def require_table(path: str, version: int | None = None) -> DeltaTable:
    """The table at `path` (at `version`); NotADeltaTableError where there is none."""
    table = open_table(path, version)
    if table is None:
        raise NotADeltaTableError(path)
    return table


def readable_table(path: str, version: int | None = None) -> DeltaTable:
    """The table at `path` (at `version`), once the reader is known to read it right; see
    `readable_files`."""
    return readable_files(path, version)[0]


def readable_files(
    path: str, version: int | None = None
) -> tuple[DeltaTable, list[dict[str, Any]]]:
    """The table at `path` (at `version`), once the reader is known to read it right, and its
    add actions (`get_add_actions(flatten=True)` rows, matched to removes by the file a path
    names as delta-spark does: `_replay`), listed once for both the check and the caller's plan.

    The allow-list of `_protocol` decides on the reader version and features; the data files
    the log names are checked to exist (one listing), so a missing file is an error of ours
    here, not a FileNotFoundException in the middle of a Spark job.

    Raises:
        NotADeltaTableError: no table is at `path`.
        InvalidDeltaLogError: the log breaks the protocol, or names data files that are gone.
        UnsupportedDeltaFeatureError: the table needs a reader feature the reader lacks.
    """
    table = require_table(path, version)
    at = table.version()
    protocol = Protocol.of(table.protocol())
    defect = protocol.defect()
    if defect is not None:
        raise InvalidDeltaLogError(path, at, defect, "The table's writer broke the protocol.")
    refused = unreadable(protocol)
    if refused:
        raise _validate.unsupported(path, at, refused)
    listed: list[dict[str, Any]] = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    actions = _replay.reconciled(
        path, at, listed, lambda logged: file_key(data_file_uri(table.table_uri, logged))
    )
    uris = [data_file_uri(table.table_uri, action["path"]) for action in actions]
    missing = _validate.missing_files(path, uris)
    if missing:
        raise InvalidDeltaLogError(
            path,
            at,
            f"{len(missing)} data file(s) the log names are missing, first {missing[0]!r}",
            "Restore the files from a backup; if they were deleted on purpose (a VACUUM with a "
            "retention shorter than your readers, a manual delete), remove them from the log "
            "with deltalake's DeltaTable(path).repair() (delta-spark: FSCK REPAIR TABLE), or "
            "read a version from before they were added",
        )
    return table, actions


def data_file_uri(table_uri: str, path: str) -> str:
    """An add action's file (`path` as the log holds it, URI-encoded) as an absolute location.

    Locally that is a decoded path; on a store it stays an encoded URI, which is what
    `spark_flow.storage` (pyarrow) and Spark take there.
    """
    # Absolute URIs appear too (shallow clones, other writers' layouts).
    absolute = storage.scheme(path) != "file" or path.startswith("file:")
    if storage.is_local(table_uri) and (not absolute or storage.is_local(path)):
        location = storage.decode_uri(path)
        return location if absolute else storage.join(table_uri, location)
    return path if absolute else storage.join(table_uri, path)


def file_key(uri: str, *, encoded: bool = True) -> str:
    """One spelling per file, whoever names it; `s3://` and `s3a://` name the same object.

    Spark, deletion vectors and our plans name files by encoded URIs (or plain local paths);
    deltalake's `file_uris` names them literally (`encoded=False`), with or without a scheme.
    """
    if not encoded:
        literal = uri.split("://", 1)[1] if "://" in uri else uri
        embedded = _EMBEDDED_URI.search(literal)
        if embedded:
            # A file the log names by an absolute URI: deltalake appends that URI to the
            # table's location, still encoded; its own path is the decoded one.
            return file_key(literal[embedded.start() :])
        return os.path.normpath(literal) if storage.is_local(uri) else literal
    if storage.is_local(uri):
        return os.path.normpath(storage.absolute(uri))
    return storage.decode_uri(uri).split("://", 1)[1]


def check_writable(path: str, table: DeltaTable, request: WriteRequest) -> None:
    """Refuse, before any Spark job, a write to `table` that our commit cannot make right.

    Raises:
        UnsupportedDeltaFeatureError: the table needs writer features our commit does not honour
            (see `_protocol.WRITER_FEATURES`).
        InvalidArgumentError: an overwrite of an append-only table.
    """
    metadata = table.metadata()
    refused = unwritable(Protocol.of(table.protocol()), metadata.configuration, table.schema())
    if refused:
        raise refused_features(
            f"writing to the table at {path!r}",
            refused,
            "Write it with the delta-spark connector (backend 'jvm', see enable_delta)",
        )
    append_only = metadata.configuration.get("delta.appendOnly", "false").lower() == "true"
    if append_only and request.mode == "overwrite":
        raise InvalidArgumentError(
            "mode",
            f"the table at {path!r} is append-only (delta.appendOnly=true), so an overwrite "
            "cannot remove its rows",
            "Append to it, or set the table property delta.appendOnly to false first",
        )


def check_vacuumable(path: str, table: DeltaTable) -> None:
    """Refuse to vacuum `table` when it lists `vacuumProtocolCheck` and our writes do not honour
    its writer features.

    The feature asks a vacuum to pass the write protocol check first: a writer feature we do
    not know may keep files in the table's folder that no add action names.

    Raises:
        UnsupportedDeltaFeatureError: such a table needs writer features our writes refuse.
    """
    protocol = Protocol.of(table.protocol())
    if "vacuumProtocolCheck" not in protocol.writer_needs():
        return
    # A vacuum that makes the check honours the feature itself, whatever our commits do.
    refused = [
        feature
        for feature in unwritable(protocol, table.metadata().configuration, table.schema())
        if feature != "vacuumProtocolCheck"
    ]
    if refused:
        raise refused_features(
            f"vacuuming the table at {path!r} (its vacuumProtocolCheck asks a vacuum to honour "
            "its writer features)",
            refused,
            "Vacuum it with the delta-spark connector (backend 'jvm', see enable_delta)",
        )


def check_rewritable(path: str, table: DeltaTable) -> None:
    """Refuse, before any Spark job, a rewrite of `table`'s files (optimize) that our commit
    cannot make.

    Features honoured while unused do not count: rewritten rows keep their values.

    Raises:
        UnsupportedDeltaFeatureError: the table needs writer features our commit refuses.
    """
    refused = [
        feature
        for feature in unwritable(
            Protocol.of(table.protocol()), table.metadata().configuration, table.schema()
        )
        if feature not in WRITER_FEATURES_WHEN_UNUSED
    ]
    if refused:
        raise refused_features(
            f"optimizing the table at {path!r}",
            refused,
            "Compact it with the delta-spark connector (OPTIMIZE)",
        )


def refused_features(doing: str, refused: list[str], fix: str) -> UnsupportedDeltaFeatureError:
    """The error for `doing` (what, to which table) on a table needing writer features
    `refused` (from `unwritable`): each named with why."""
    return UnsupportedDeltaFeatureError(
        f"{doing}: it needs {', '.join(refused)}, which this backend's commit does not honour: "
        f"{'; '.join(map(refusal, refused))}",
        fix,
    )


def info(path: str, table: DeltaTable) -> TableInfo:
    """What the log of `table` (opened from `path`) says about it."""
    return TableInfo(
        path=path,
        version=table.version(),
        schema=table_spark_schema(table),
        partition_columns=tuple(table.metadata().partition_columns),
        # Reader version 2 needs column mapping without listing it: say so like version 3 does.
        reader_features=tuple(sorted(Protocol.of(table.protocol()).reader_needs())),
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


def version_carrying(root: str, write_id: str, *, after: int | None) -> int:
    """The version whose commit carries our write id; concurrent commits may precede or follow.

    The commit files are read directly: `DeltaTable.history()` numbers the commits it lists from
    its own snapshot's version, which is wrong when a concurrent commit landed after the load.
    """
    version = 0 if after is None else after + 1
    while commit := storage.read_text(storage.join(root, "_delta_log", f"{version:020d}.json")):
        if write_id in commit:
            return version
        version += 1
    raise RuntimeError(  # a committed write always leaves its commit file; say so if it did not
        f"committed to {root!r} but found no commit carrying write id {write_id} after {after}"
    )
