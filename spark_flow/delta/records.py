"""Small Delta tables kept by the driver alone (run history): append rows, read them back.

No Spark here: a runner records a run before its session starts and after it stops, and
`spark-flow runs` reads the history without starting a JVM. Commits go through delta-rs, on a
local or mounted filesystem or on an object store (its conditional put), and the table is
created exactly once however many writers race to create it (see `_create`). Appends from many
processes and hosts at once all land: delta-rs retries a losing blind append.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import DeltaError

from spark_flow import storage
from spark_flow.delta._create import create_on_store

__all__ = ["append_records", "read_records"]

log = logging.getLogger(__name__)

_LOG = "_delta_log"
# A checkpoint every so many commits keeps reading the log cheap as the history grows.
_CHECKPOINT_EVERY = 100


def append_records(path: str, rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> int:
    """Append `rows` as one commit, creating the table with `schema` first if needed.

    Returns:
        The table version of the commit.

    Raises:
        StorageError: the store refused or failed the commit (credentials, network).
    """
    try:
        return _append(path, rows, schema)
    except (DeltaError, OSError) as exc:
        raise storage.store_error(path, "append to", exc) from exc


def _append(path: str, rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> int:
    root = storage.folder(path)
    storage.check_reachable(root)
    # The store settings of a profile's [storage] table too, not only the environment's.
    options = storage.options(root)
    if storage.is_local(root):
        _create(root, schema)
    else:
        _create_in_store(root, schema, options)
    records = pa.Table.from_pylist(list(rows), schema=schema)
    write_deltalake(root, records, mode="append", storage_options=options)
    table = DeltaTable(root, storage_options=options)
    version = table.version()
    if version % _CHECKPOINT_EVERY == 0:
        table.create_checkpoint()
    return version


def read_records(path: str) -> list[dict[str, Any]]:
    """Every row of the table, or no rows when there is no table yet.

    Raises:
        StorageError: the store refused or failed the read (credentials, network).
    """
    try:
        return _read(path)
    except (DeltaError, OSError) as exc:
        raise storage.store_error(path, "read", exc) from exc


def _read(path: str) -> list[dict[str, Any]]:
    root = storage.folder(path)
    storage.check_reachable(root)
    options = storage.options(root)
    if not DeltaTable.is_deltatable(root, storage_options=options):
        return []
    # Reading the Parquet files ourselves: DeltaTable.to_pyarrow_table() aborts the interpreter
    # at exit with deltalake 1.5-1.6 and pyarrow 25-26. One filesystem for all of them: the
    # history has a file per record, and a client per file would cost a connection each. Our
    # record tables add files by name, right under the root: a file's name is the end of its
    # URI, which deltalake encodes (`%23` for a `#` in the root, `%20` on a store).
    uris = DeltaTable(root, storage_options=options).file_uris()
    if not uris:
        return []
    filesystem, base = storage.filesystem(root)
    paths = [f"{base.rstrip('/')}/{unquote(uri.rsplit('/', 1)[1])}" for uri in uris]
    rows: list[dict[str, Any]] = pq.read_table(paths, filesystem=filesystem).to_pylist()
    return rows


def _create(root: str, schema: pa.Schema) -> None:
    """Create the table at most once, however many threads and processes try at the same time.

    Two writers creating one table through delta-rs may both commit: the loser's create is
    retried as version 1, a second metadata action, and concurrent appends that read version 0
    then fail ("Metadata changed since last commit"). So the table is created in a folder of
    its own and its log moved into place with one rename, which only the first mover wins.
    """
    if DeltaTable.is_deltatable(root):
        return
    Path(root).mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".create-", dir=root))
    try:
        DeltaTable.create(str(scratch), schema=schema)
        try:
            os.rename(scratch / _LOG, Path(root) / _LOG)
        except OSError:  # ENOTEMPTY / EEXIST: another creator's log is in place
            log.debug("another writer created %s first", root)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _create_in_store(root: str, schema: pa.Schema, options: dict[str, str]) -> None:
    """`_create` on an object store, where no folder moves (see `_create.create_on_store`)."""
    if DeltaTable.is_deltatable(root, storage_options=options):
        return
    create_on_store(
        root, lambda scratch: DeltaTable.create(scratch, schema=schema, storage_options=options)
    )
