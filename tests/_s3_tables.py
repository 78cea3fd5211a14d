"""Reading back what the object-store tests wrote: tables by deltalake alone, objects by pyarrow."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pyarrow as pa
from deltalake import DeltaTable, QueryBuilder
from pyarrow.fs import FileSelector

from spark_flow import storage


def open_table(path: str) -> DeltaTable:
    """The table at `path` as deltalake opens it with the store settings in force."""
    return DeltaTable(path, storage_options=storage.options(path))


def table_rows(path: str, order_by: str = "id") -> list[dict[str, Any]]:
    """The table's rows, read by deltalake itself (not spark_flow's reader), in `order_by` order."""
    result = (
        QueryBuilder()
        .register("t", open_table(path))
        .execute(f"SELECT * FROM t ORDER BY {order_by}")
    )
    return pa.table(result.read_all()).to_pylist()


def data_objects(path: str) -> set[str]:
    """Every object below the table root outside its log, relative to the root."""
    store, location = storage.filesystem(path)
    found = store.get_file_info(FileSelector(location, recursive=True, allow_not_found=True))
    return {
        info.path[len(location) + 1 :]
        for info in found
        if info.is_file and not info.path[len(location) + 1 :].startswith("_delta_log/")
    }


def committed_files(path: str) -> set[str]:
    """The data files the table's latest version holds, relative to the root (as objects are
    named: the log URI-encodes them)."""
    paths = pa.table(open_table(path).get_add_actions(flatten=True))["path"].to_pylist()
    return {unquote(p) for p in paths}
