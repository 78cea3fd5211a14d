"""A routed write: one Spark job writes the files of several Delta tables, one commit each.

Splitting a DataFrame into two tables with two writes computes it twice, or caches it: a
validated load parses its input once and writes the valid rows to the output and the rejected
ones to a quarantine. Here Python workers (`mapInArrow`) take each task's rows once, send each
row to its table's `FileWriter` by the value of a route column, each table's files holding
exactly that table's columns, and count the rows per route value as they go. The driver then
commits every table's files at once, each with the same app transaction in its own table, so
a replay after a crash that let some commits land skips those tables and writes the rest (a
skipped table's rows are counted, not written).

Files are written in place, on a local disk as on an object store: uncommitted files are
invisible to readers, and a failed commit removes its files.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from spark_flow import storage
from spark_flow.delta import rs
from spark_flow.delta._files import FileWriter, WrittenFile
from spark_flow.delta._types import WriteRequest, WriteResult
from spark_flow.errors import InvalidArgumentError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

# One row per written file (`file` set) or per route value seen by a task (`rows` set).
_RESULT_SCHEMA = "table int, route string, rows long, file string"


@dataclass(frozen=True)
class RoutedTable:
    """One table of a routed write.

    Attributes:
        path: the Delta table.
        columns: the columns its files hold, exactly (the route column only if listed).
        routes: the route values whose rows it takes; None for rows whose route is null. A
            table taking none is still committed (empty), like a write of no rows.
    """

    path: str
    columns: tuple[str, ...]
    routes: tuple[str | None, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "routes", tuple(self.routes))
        if not self.columns:
            raise InvalidArgumentError(
                "columns",
                f"table {self.path!r} got none",
                "Give each table the columns it holds.",
            )


@dataclass(frozen=True)
class RoutedWrite:
    """What a routed write did.

    Attributes:
        results: per table, in the order given: what was committed, or why it was skipped.
        rows: rows per route value, every row of the input counted, also those of a skipped
            table; empty when every table was skipped (nothing was computed).
    """

    results: tuple[WriteResult, ...]
    rows: Mapping[str | None, int]


@dataclass(frozen=True)
class RoutedWriter:
    """`mapInArrow`'s function: each row to its table's files, counted by route value."""

    route: str
    writers: tuple[FileWriter | None, ...]  # None: the table's write is skipped
    columns: tuple[tuple[str, ...], ...]
    routes: tuple[tuple[str | None, ...], ...]

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        opened = [None if writer is None else writer.open() for writer in self.writers]
        counts: Counter[str | None] = Counter()
        try:
            for batch in batches:
                table = pa.Table.from_batches([batch])
                route = table[self.route]
                counted = pc.value_counts(route)
                for value, n in zip(
                    counted.field("values").to_pylist(),
                    counted.field("counts").to_pylist(),
                    strict=True,
                ):
                    counts[value] += n
                for files, columns, values in zip(opened, self.columns, self.routes, strict=True):
                    if files is not None:
                        files.add(table.filter(_takes(route, values)).select(list(columns)))
            written = [[] if files is None else files.close() for files in opened]
        except BaseException:
            for files in opened:
                if files is not None:
                    files.abort()
            raise
        rows = [
            {"table": i, "route": None, "rows": None, "file": json.dumps(file.as_row())}
            for i, files in enumerate(written)
            for file in files
        ]
        rows += [
            {"table": None, "route": value, "rows": n, "file": None} for value, n in counts.items()
        ]
        yield pa.RecordBatch.from_pylist(rows, schema=_arrow_result_schema())


def _takes(route: pa.ChunkedArray, values: tuple[str | None, ...]) -> pa.ChunkedArray:
    named = [v for v in values if v is not None]
    taken = pc.fill_null(pc.is_in(route, value_set=pa.array(named, pa.string())), False)
    return pc.or_(taken, pc.is_null(route)) if None in values else taken


def _arrow_result_schema() -> pa.Schema:
    return pa.schema(
        [("table", pa.int32()), ("route", pa.string()), ("rows", pa.int64()), ("file", pa.string())]
    )


def write(
    df: DataFrame,
    route: str,
    tables: Sequence[RoutedTable],
    *,
    app_id: str | None,
    txn_version: int | None,
) -> RoutedWrite:
    """Write `df`'s rows to `tables` by `route` in one Spark job; see the module docstring."""
    _check_routes(df, route, tables)
    plans = [
        rs.plan_write(
            WriteRequest(table.path, app_id=app_id, txn_version=txn_version),
            df.select(*table.columns).schema,
        )
        for table in tables
    ]
    if all(isinstance(plan, WriteResult) for plan in plans):
        return RoutedWrite(tuple(p for p in plans if isinstance(p, WriteResult)), {})
    writer = RoutedWriter(
        route,
        tuple(None if isinstance(p, WriteResult) else rs.file_writer(p, p.root) for p in plans),
        tuple(table.columns for table in tables),
        tuple(table.routes for table in tables),
    )
    needed = list(dict.fromkeys([*(c for t in tables for c in t.columns), route]))
    started = time.perf_counter()
    found = df.select(*needed).mapInArrow(writer, _RESULT_SCHEMA).collect()
    log.debug("wrote %s in %.2fs", [t.path for t in tables], time.perf_counter() - started)
    files: list[list[WrittenFile]] = [[] for _ in tables]
    rows: Counter[str | None] = Counter()
    for row in found:
        if row["file"] is None:
            rows[row["route"]] += row["rows"]
        else:
            files[row["table"]].append(WrittenFile.from_row(json.loads(row["file"])))
    return RoutedWrite(_commit_each(plans, files), dict(rows))


def _commit_each(
    plans: Sequence[rs.WritePlan | WriteResult], files: Sequence[list[WrittenFile]]
) -> tuple[WriteResult, ...]:
    """Commit every planned table at once; raise the first failure once all have finished.

    At once rather than in turn, where each waited for the one before (round trips on an
    object store): each commit is idempotent in its own table, so a replay after any of them
    landed writes only the others. A failed commit removes its own files; the others stand.
    """
    with ThreadPoolExecutor(max_workers=len(plans), thread_name_prefix="routed-commit") as pool:
        futures = [
            None if isinstance(plan, WriteResult) else pool.submit(rs.commit_written, plan, written)
            for plan, written in zip(plans, files, strict=True)
        ]
    results: list[WriteResult] = []
    for plan, future in zip(plans, futures, strict=True):  # every commit has finished here
        if future is not None:
            results.append(future.result())  # raises the first failure
        elif isinstance(plan, WriteResult):
            results.append(plan)
    return tuple(results)


def _check_routes(df: DataFrame, route: str, tables: Sequence[RoutedTable]) -> None:
    missing = sorted({route, *(c for t in tables for c in t.columns)} - set(df.columns))
    if missing:
        raise InvalidArgumentError(
            "tables",
            f"columns {missing} are not in the DataFrame {df.columns}",
            "Route by a column of the DataFrame, and give each table only columns it has.",
        )
    paths = [storage.folder(table.path) for table in tables]
    if len(set(paths)) != len(paths):
        # One commit of the transaction lands in a table: a second one there would be skipped
        # as a replay, and its rows lost.
        raise InvalidArgumentError(
            "tables",
            f"each table at its own path, got {[t.path for t in tables]}",
            "Give each table its own path.",
        )
    routes = [value for table in tables for value in table.routes]
    if len(set(routes)) != len(routes):
        raise InvalidArgumentError(
            "tables",
            f"a route value goes to one table, got {routes}",
            "Give each route value to one table.",
        )
