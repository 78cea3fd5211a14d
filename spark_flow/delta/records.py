"""Small Delta tables kept by the driver alone (run history): append rows, read them back.

No Spark here: a runner records a run before its session starts and after it stops, and
`spark-flow runs` reads the history without starting a JVM. Commits go through delta-rs, so the
table must live on a local or mounted filesystem, like everything the delta-rs backend commits.
Appends from many processes at once all land: delta-rs retries a losing blind append.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake

from spark_flow.delta.rs import local_path

__all__ = ["append_records", "read_records"]

log = logging.getLogger(__name__)

# A checkpoint every so many commits keeps reading the log cheap as the history grows.
_CHECKPOINT_EVERY = 100


def append_records(path: str, rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> int:
    """Append `rows` as one commit, creating the table with `schema` first if needed.

    Returns:
        The table version of the commit.
    """
    root = local_path(path)
    _create(root, schema)
    write_deltalake(root, pa.Table.from_pylist(list(rows), schema=schema), mode="append")
    table = DeltaTable(root)
    version = table.version()
    if version % _CHECKPOINT_EVERY == 0:
        table.create_checkpoint()
    return version


def read_records(path: str) -> list[dict[str, Any]]:
    """Every row of the table, or no rows when there is no table yet."""
    root = local_path(path)
    if not DeltaTable.is_deltatable(root):
        return []
    # Reading the Parquet files ourselves: DeltaTable.to_pyarrow_table() aborts the interpreter
    # at exit with deltalake 1.5-1.6 and pyarrow 25-26.
    files = DeltaTable(root).file_uris()
    return pq.read_table(files).to_pylist() if files else []


def _create(root: str, schema: pa.Schema) -> None:
    """Create the table as a commit of its own, so racing first appends never create it twice.

    Two first writers that both create a table collide on version 0, and delta-rs retries the
    loser's append as a commit carrying a second metadata action; creating it up front avoids that.
    """
    if DeltaTable.is_deltatable(root):
        return
    try:
        DeltaTable.create(root, schema=schema, mode="ignore")
    except Exception:
        if not DeltaTable.is_deltatable(root):
            raise
        log.debug("another process created %s first", root)
