"""DuckDB's `delta_scan` (delta-kernel-rs): the second independent reader of Delta tables.

The extension comes from PyPI (`duckdb-extension-delta`, built for the pinned duckdb), loaded
from its file: DuckDB's own extension download is not reachable from every machine.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb
import duckdb_extension_delta

_EXTENSION = next(
    Path(duckdb_extension_delta.__file__).parent.glob("extensions/*/delta.duckdb_extension")
)
_SCANNING = re.compile(r"Scanning Files: (\d+)/(\d+)")


def _connection() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute(f"LOAD '{_EXTENSION}'")
    return connection


def duckdb_rows(table: str | Path, where: str = "TRUE") -> list[dict[str, Any]]:
    """The rows of the Delta table at `table` matching `where`, as DuckDB reads them."""
    with _connection() as connection:
        result = connection.execute(f"SELECT * FROM delta_scan('{table}') WHERE {where}")
        return result.to_arrow_table().to_pylist()


def duckdb_files_scanned(table: str | Path, where: str) -> tuple[int, int]:
    """(files scanned, files in the table) for a query filtered by `where`, from DuckDB's plan."""
    query = f"EXPLAIN ANALYZE SELECT count(*) FROM delta_scan('{table}') WHERE {where}"
    with _connection() as connection:
        plan = "\n".join(str(row[1]) for row in connection.execute(query).fetchall())
    found = _SCANNING.search(plan)
    assert found, f"no 'Scanning Files' in DuckDB's plan:\n{plan}"
    return int(found[1]), int(found[2])
