"""Data files of a delta-rs write: Parquet written with Arrow, described as Delta add actions.

Every file a write commits is described by one `WrittenFile`, wherever it was written (Spark's
writer on a local disk, Arrow in a Python worker on an object store), and becomes an add action
through `add_action` alone; its statistics come from its footer (`_stats.file_stats`).

`FileWriter` is the Arrow writer that Python workers run (the `delta` data source's writer and
`mapInArrow` in `rs.write`): it splits each task's batches by partition value into Hive-style
`col=value/` files, names every file after the write, and writes it with one upload, so an
uncommitted file is never half-visible and is invisible to readers anyway (not in the log).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import struct
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake.transaction import AddAction, RemoveAction
from pyspark.sql.types import StructType, TimestampType

from spark_flow._paths import partition_directory
from spark_flow.delta._mapping import ColumnMapping, physical_table, stored_columns
from spark_flow.delta._schema import table_spelling
from spark_flow.delta._shape import shaped_table
from spark_flow.delta._stats import (
    DEFAULT_INDEXED_COLUMNS,
    file_stats,
    forbidden_nulls,
    row_checked,
    row_nulls,
)

# What a mapInArrow task returns per file: the driver turns the rows back into WrittenFiles.
WRITTEN_SCHEMA = (
    "path string, size long, modification_time long, partition_values string, stats string, "
    "null_columns string"
)
# Rows gathered before a row group is written: Arrow hands a task batches of 10,000 rows
# (spark.sql.execution.arrow.maxRecordsPerBatch), and a row group per batch makes files slower
# to write and to scan. Spark's own writer cuts row groups at 128 MB; this is about as many
# rows of a narrow table while keeping a worker's buffer small.
_ROW_GROUP_ROWS = 1 << 20
_ROW_GROUP_BYTES = 64 << 20
_MICROS = re.compile(r"-?\d+")


@dataclass(frozen=True)
class WrittenFile:
    """One data file of a write, not yet committed.

    Attributes:
        path: relative to the table root, raw (deltalake URI-encodes it into the log).
        size: bytes.
        modification_time: milliseconds since the epoch.
        partition_values: the file's partition column values as Delta stores them.
        stats: the add action's statistics, as JSON.
        null_columns: the table's NOT NULL columns this file holds a null in (never committed).
    """

    path: str
    size: int
    modification_time: int
    partition_values: Mapping[str, str | None]
    stats: str
    null_columns: tuple[str, ...] = ()

    def as_row(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "modification_time": self.modification_time,
            "partition_values": json.dumps(dict(self.partition_values)),
            "stats": self.stats,
            "null_columns": json.dumps(list(self.null_columns)),
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> WrittenFile:
        return cls(
            path=row["path"],
            size=row["size"],
            modification_time=row["modification_time"],
            partition_values=json.loads(row["partition_values"]),
            stats=row["stats"],
            null_columns=tuple(json.loads(row["null_columns"])),
        )


def rows_of(stats: str) -> int:
    """The row count in an add action's statistics."""
    return int(json.loads(stats)["numRecords"])


def add_action(file: WrittenFile, *, data_change: bool = True) -> AddAction:
    """The Delta add action that commits `file`; `data_change=False` for a rewrite (compaction)."""
    return AddAction(
        path=file.path,
        size=file.size,
        partition_values=dict(file.partition_values),
        modification_time=file.modification_time,
        data_change=data_change,
        stats=file.stats,
    )


def remove_action(
    listed: Mapping[str, Any],
    partition_by: Sequence[str],
    *,
    data_change: bool = True,
    mapping: ColumnMapping | None = None,
) -> RemoveAction:
    """The remove action of a file as `get_add_actions(flatten=True)` lists it, with its size
    and partition values (Delta's extendedFileMetadata), as delta-spark writes it: a reader of
    the change data feed takes a removed file's partition values from it, and deltalake's
    refuses the whole feed where one lacks them. The listing names partition columns by their
    logical names; a column-mapped table's log keys them by their physical ones (`mapping`).
    A FLOAT value is spelled in a double's digits (the listing's), read by Java as one float."""
    values = {c: partition_text(listed.get(f"partition.{c}")) for c in partition_by}
    return RemoveAction(
        unquote(listed["path"]),  # the listing holds the log's URI-encoded path
        data_change=data_change,
        deletion_timestamp=int(time.time() * 1000),
        size=listed["size_bytes"],
        partition_values=values if mapping is None else mapping.logged_values(values),
    )


def partition_text(value: object) -> str | None:
    """A partition value as Delta stores it in the log (and Spark names its directory).

    An instant (an aware datetime, a TIMESTAMP column) takes the protocol's UTC form,
    `2024-01-31T10:00:00.000000Z`, which every reader takes as that instant; the plain form
    (`2024-01-31 10:00:00`) is read as UTC by delta-rs and in the session's zone by delta-spark.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return _date_text(value)
    if isinstance(value, float):
        return java_number(value)
    # A decimal as Spark's writer spells it: `0.00000000`, never `0E-8`.
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def _partition_value(column: pa.ChunkedArray) -> str | None:
    """The partition value of a file's rows, all of one value of `column`, as Delta logs it."""
    value = column[0].as_py()
    if pa.types.is_float32(column.type) and value is not None:
        return java_number(value, single=True)
    return partition_text(value)


def _date_text(value: dt.date) -> str:
    if not isinstance(value, dt.datetime):
        return value.isoformat()
    if value.tzinfo is None:
        return value.isoformat(sep=" ")
    at = value.astimezone(dt.timezone.utc)
    return (
        f"{at.year:04d}-{at.month:02d}-{at.day:02d}T{at.hour:02d}:{at.minute:02d}:"
        f"{at.second:02d}.{at.microsecond:06d}Z"
    )


def java_number(value: float, *, single: bool = False) -> str:
    """A DOUBLE (FLOAT: `single`) as Java's `Double.toString` (`Float.toString`) spells it.

    The protocol's "string representation of the number" is Java's: Spark names its partition
    folders so, and Delta's Java readers parse values with `Double.parseDouble`, which knows
    `NaN`, `Infinity` and `1.0E20` but not Python's `nan`, `inf` and `1e+20`.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value) or value == 0:
        sign = "-" if math.copysign(1.0, value) < 0 else ""
        return sign + ("Infinity" if math.isinf(value) else "0.0")
    _, numerals, exponent = Decimal(_shortest(value, single)).as_tuple()
    digits = "".join(map(str, numerals)).rstrip("0")
    power = len(numerals) - 1 + int(exponent)  # value = d.ddd x 10^power
    sign = "-" if value < 0 else ""
    if -3 <= power < 7:  # Java's plain range, 10^-3 <= |value| < 10^7
        if power < 0:
            return f"{sign}0.{'0' * (-power - 1)}{digits}"
        whole = digits[: power + 1].ljust(power + 1, "0")
        return f"{sign}{whole}.{digits[power + 1 :] or '0'}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{power}"


def _shortest(value: float, single: bool) -> str:
    """The fewest digits that read back as `value` (as a 32-bit float where `single`)."""
    if not single:
        return repr(value)
    for precision in range(1, 10):
        text = f"{value:.{precision}g}"
        with suppress(OverflowError):  # rounded past the largest FLOAT
            if struct.unpack("f", struct.pack("f", float(text)))[0] == value:
                return text
    return repr(value)


def instants_as_micros(schema: StructType, partition_by: Iterable[str]) -> list[str]:
    """The TIMESTAMP partition columns: Spark's writer gets them as epoch microseconds.

    Spark names a partition folder after the value in the session's time zone, with no zone
    in the name: `2024-01-31 11:00:00` in Paris is 10:00 UTC, which a Delta reader would take
    as 11:00 UTC. As microseconds the folder name is exact; `spark_partition_text` turns it into
    Delta's UTC form, and the file moves to that folder when it is published.
    """
    return [c for c in partition_by if isinstance(schema[c].dataType, TimestampType)]


def spark_partition_text(raw: str | None, column: str, micros: Iterable[str]) -> str | None:
    """A partition value as Spark's writer named its folder, as Delta stores it."""
    if raw is None or column not in micros or not _MICROS.fullmatch(raw):
        return raw
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return partition_text(epoch + dt.timedelta(microseconds=int(raw)))


def as_instant_text(value: str) -> str:
    """A TIMESTAMP partition value as written (`partition_text`); a zoneless one is UTC, as in
    the log. Text that is no timestamp is left as it is."""
    try:
        at = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return value
    return str(partition_text(at if at.tzinfo else at.replace(tzinfo=dt.timezone.utc)))


@dataclass
class _OpenFile:
    writer: pq.ParquetWriter
    stream: Any
    path: str
    partition_values: dict[str, str | None]
    pending: list[pa.Table] = field(default_factory=list)
    row_nulls: set[str] = field(default_factory=set)  # NOT NULL fields its rows break

    def add(self, rows: pa.Table) -> None:
        self.pending.append(rows)
        if (
            sum(t.num_rows for t in self.pending) >= _ROW_GROUP_ROWS
            or sum(t.nbytes for t in self.pending) >= _ROW_GROUP_BYTES
        ):
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.writer.write_table(pa.concat_tables(self.pending), row_group_size=_ROW_GROUP_ROWS)
            self.pending = []


@dataclass(frozen=True)
class FileWriter:
    """Writes a task's Arrow batches as Parquet files below `root`, one per partition value.

    Picklable: the driver builds it, Python workers call it.

    Attributes:
        root: the table root (object stores: files land in place) or a local staging folder.
        write_id: names every file, so a write's files can be told apart.
        partition_by: the partition columns, outermost first; they are not stored in files.
        store_options: `storage.options(root, client="pyarrow")` as resolved on the driver.
        schema: the table's schema after the write, for the files' statistics.
        indexed_columns: the columns with statistics (see `_stats.indexed_columns`).
        mapping: where the table maps its columns, their physical names and field ids.
    """

    root: str
    write_id: str
    partition_by: tuple[str, ...] = ()
    store_options: Mapping[str, Any] = field(default_factory=dict, repr=False)
    schema: StructType = field(default_factory=StructType)
    indexed_columns: int | tuple[str, ...] = DEFAULT_INDEXED_COLUMNS
    mapping: ColumnMapping | None = None

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """`mapInArrow`'s function: write the batches, yield one row per written file."""
        files = self.write(batches)
        if files:
            yield pa.RecordBatch.from_pylist([file.as_row() for file in files])

    def write(self, batches: Iterable[pa.RecordBatch]) -> list[WrittenFile]:
        """Write the batches; on a failure, remove the files this call wrote and re-raise."""
        files = self.open()
        try:
            for batch in batches:
                files.add(pa.Table.from_batches([batch]))
            return files.close()
        except BaseException:
            files.abort()
            raise

    def open(self) -> TaskFiles:
        """The files of one task, written as rows are added: a routed write feeds several."""
        from spark_flow import storage

        local = storage.is_local(self.root)
        if local:
            from pyarrow.fs import LocalFileSystem

            store: Any = LocalFileSystem()
            location = storage.folder(self.root)
        else:
            store, location = storage.filesystem(self.root, self.store_options)
        return TaskFiles(self, store, location, local)

    def _split(self, table: pa.Table) -> Iterator[tuple[dict[str, str | None], pa.Table]]:
        if not self.partition_by:
            if table.num_rows:
                yield {}, table
            return
        columns = list(self.partition_by)
        # Floats are grouped and matched by their text: by `==`, NaN would match no row and
        # -0.0 the rows of 0.0 (their files would lose the one and duplicate the other).
        keys = table.select(columns)
        for index, column in enumerate(columns):
            if pa.types.is_floating(keys[column].type):
                keys = keys.set_column(index, column, pc.cast(keys[column], pa.string()))
        combinations = keys.group_by(columns, use_threads=False).aggregate([])
        for combination in combinations.to_pylist():
            mask = None
            for column in columns:
                value, data = combination[column], keys[column]
                match = (
                    pc.is_null(data)
                    if value is None
                    else pc.fill_null(pc.equal(data, pa.scalar(value, data.type)), False)
                )
                mask = match if mask is None else pc.and_(mask, match)
            rows = table.filter(mask)
            values = {column: _partition_value(rows[column]) for column in columns}
            yield values, rows.drop_columns(columns)

    def _open(
        self,
        store: Any,
        location: str,
        values: dict[str, str | None],
        schema: pa.Schema,
        local: bool,
    ) -> _OpenFile:
        folder = partition_directory(values)
        name = f"part-{self.write_id}-{uuid.uuid4().hex}.c000.snappy.parquet"
        path = f"{folder}/{name}" if folder else name
        if local:  # object stores have no folders to create
            store.create_dir(f"{location}/{folder}".rstrip("/"), recursive=True)
        stream = store.open_output_stream(f"{location}/{path}")
        writer = pq.ParquetWriter(stream, schema, compression="snappy", coerce_timestamps="us")
        return _OpenFile(writer, stream, path, values)

    def _close(self, store: Any, location: str, file: _OpenFile) -> WrittenFile:
        file.flush()
        file.writer.close()
        size = file.stream.tell()
        # The upload completes on close: only then does the object exist on a store.
        file.stream.close()
        metadata = file.writer.writer.metadata
        stored, partition_by, indexed = self.stored()
        return WrittenFile(
            path=file.path,
            size=size,
            modification_time=int(time.time() * 1000),
            partition_values=file.partition_values,
            stats=file_stats(metadata, stored, partition_by=partition_by, indexed_columns=indexed),
            null_columns=(
                *forbidden_nulls(metadata, stored, partition_by=partition_by),
                *sorted(file.row_nulls),
            ),
        )

    def stored(self) -> tuple[StructType, tuple[str, ...], int | tuple[str, ...]]:
        """The schema, partition and statistics columns under the names the files store."""
        return stored_columns(self.mapping, self.schema, self.partition_by, self.indexed_columns)


@dataclass
class TaskFiles:
    """The files one task of a `FileWriter` has open: one per partition value."""

    writer: FileWriter
    store: Any
    location: str
    local: bool
    opened: dict[tuple[str | None, ...], _OpenFile] = field(default_factory=dict)

    def add(self, table: pa.Table) -> None:
        writer = self.writer
        renamed = table_spelling(table.column_names, writer.schema)
        if renamed:
            table = table.rename_columns([renamed.get(n, n) for n in table.column_names])
        table = shaped_table(table, writer.schema)
        if writer.mapping is not None:
            table = physical_table(table, writer.mapping, writer.partition_by)
        stored, partition_by, _ = writer.stored()
        checked = row_checked(stored, partition_by=partition_by)
        for values, rows in writer._split(table):
            key = tuple(values.values())
            if key not in self.opened:
                self.opened[key] = writer._open(
                    self.store, self.location, values, rows.schema, self.local
                )
            self.opened[key].add(rows)
            if checked:
                self.opened[key].row_nulls.update(row_nulls(rows, stored, checked))

    def close(self) -> list[WrittenFile]:
        return [self.writer._close(self.store, self.location, f) for f in self.opened.values()]

    def abort(self) -> None:
        """Close and remove every file opened; the first error is the one to tell."""
        from spark_flow import storage

        for file in self.opened.values():
            with suppress(pa.ArrowException, OSError):
                file.writer.close()
                file.stream.close()
        storage.delete_files(self.writer.root, [file.path for file in self.opened.values()])
