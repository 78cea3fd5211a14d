"""Files on stores Spark has no filesystem for, read and written by Arrow in Python workers.

A plain pip-installed pyspark has no Hadoop connector for `s3://` (nor `gs://`, `az://`): its
`spark.read.json("s3://...")` fails. pyarrow.fs reaches those stores with the environment's
credentials, so the executors' Python workers do the I/O themselves:

- reading: the driver lists the files (`storage.filesystem`), one Spark task per file opens it
  with pyarrow and yields Arrow batches in the caller's schema (`mapInArrow`). JSON lines and
  CSV (`_csv_read`) follow Spark's PERMISSIVE mode: a line that does not fit the schema keeps
  its text in `_corrupt_record` (when the schema has that column). Reader options the Arrow
  path would not honour are refused, not ignored.
- writing: each task writes its partition as one file named after the attempt and the
  partition, and returns `(file, rows)`: what the driver then publishes (`outputs`' manifests).

Where Spark has a filesystem for the path (local paths, or a cluster with the connector), jobs
read with Spark itself: `read_files` decides.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from spark_flow import storage
from spark_flow._csv_read import CSV_TYPES, csv_batch
from spark_flow._json_read import JSON_TYPES, json_batch
from spark_flow._text_write import text_writer
from spark_flow.errors import InvalidArgumentError, StorageError, UnknownValueError

if TYPE_CHECKING:
    import pyarrow as pa
    from pyarrow.fs import FileSystem
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

__all__ = [
    "FORMATS",
    "hidden_from_spark",
    "list_files",
    "read_files",
    "read_listed",
    "spark_reads",
    "write_files",
]

log = logging.getLogger(__name__)

FORMATS = ("csv", "json", "parquet")
WRITTEN_SCHEMA = "file STRING, rows LONG"
BATCH_COLUMN = "batch_id"
_EXTENSIONS = {"csv": ".csv", "json": ".json", "parquet": ".parquet"}
_WRITE_OPTIONS = {"compression", "header", "sep"}
# What the Arrow path honours when reading; `mode` only as Spark's default, PERMISSIVE.
_READ_OPTIONS = {"csv": {"header", "sep", "mode"}, "json": {"mode"}, "parquet": set()}


def spark_reads(spark: SparkSession, path: str) -> bool:
    """True when Spark's own readers and writers reach `path`: local, or a store whose Hadoop
    filesystem is on the classpath. A Spark Connect session cannot be asked, so it says False."""
    if storage.is_local(path):
        return True
    jvm = getattr(spark, "_jvm", None)
    if jvm is None:
        return False
    from py4j.protocol import Py4JJavaError

    try:
        hadoop = spark._jsc.hadoopConfiguration()
        jvm.org.apache.hadoop.fs.FileSystem.getFileSystemClass(storage.scheme(path), hadoop)
    except Py4JJavaError:
        return False
    return True


def list_files(path: str) -> list[str]:
    """The data files under `path` (a file or folder), sorted, named as `path` is (local paths,
    or URIs on a store); like Spark, names starting with `_` or `.` (and all below) are skipped.

    Raises:
        StorageError: `path` does not exist, or the store cannot be listed.
    """
    return [storage.join(path, name) if name else path for name in _relative_files(path)]


def _relative_files(path: str) -> list[str]:
    """The data files under `path` relative to it; `[""]` when `path` is a file itself."""
    from pyarrow.fs import FileSelector, FileType

    filesystem, location = storage.filesystem(path)
    root = location.rstrip("/")
    try:
        if filesystem.get_file_info(root).type == FileType.File:
            return [""]
        entries = filesystem.get_file_info(FileSelector(root, recursive=True))
    except OSError as exc:
        raise StorageError(path, "list", str(exc).strip()) from exc
    relative = [e.path[len(root) + 1 :] for e in entries if e.type == FileType.File]
    return sorted(r for r in relative if not hidden_from_spark(r))


def hidden_from_spark(relative: str) -> bool:
    """Whether Spark's reader skips the file at `relative` (a `/` path below the folder read):
    a name starting with `_` or `.` hides it and all below it (`_SUCCESS`, `.crc`, a
    committer's `_temporary/`), except `_x=1` partition folders."""
    return any(
        (p[:1] == "_" and "=" not in p) or p[:1] == "." or p.endswith("._COPYING_")
        for p in relative.split("/")
    )


def read_files(
    spark: SparkSession,
    path: str,
    *,
    format: str,
    schema: StructType | str,
    options: Mapping[str, str] | None = None,
) -> DataFrame:
    """The `format` files under `path` in `schema`: Spark's reader where Spark reaches `path`,
    else Arrow in Python workers, one task per file.

    Args:
        spark: the session.
        path: a file or folder, local or on a store (`s3://bucket/devices`).
        format: `json` (lines), `csv` or `parquet`.
        schema: the columns to read, a StructType or a DDL string; with `_corrupt_record` (a
            string), lines that do not fit keep their text there (`validation.permissive`).
        options: reader options; on the Arrow path `header` and `sep` (CSV).

    Raises:
        UnknownValueError: another format.
        InvalidArgumentError: a column type the Arrow path cannot read from JSON.

    Example:
        >>> devices = read_files(spark, "s3://landing/devices", format="json",
        ...                      schema=permissive(DEVICE_SCHEMA))
    """
    if format not in FORMATS:
        raise UnknownValueError("format", format, FORMATS)
    options = dict(options or {})
    if spark_reads(spark, path):
        # A local path means this process's, not a Spark Connect server's working folder.
        location = storage.absolute(path)
        return spark.read.format(format).schema(schema).options(**options).load(location)
    if isinstance(schema, str):  # a DDL string, parsed by Spark: no job runs
        schema = spark.createDataFrame([], schema).schema
    _check_arrow_read(schema, format, options)
    files = _relative_files(path)
    log.info("reading %d %s files under %s with Arrow in Python workers", len(files), format, path)
    return _scan(spark, path, [(f, None) for f in files], schema, format=format, options=options)


def read_listed(
    spark: SparkSession,
    root: str,
    files: Sequence[tuple[str, int]],
    *,
    format: str,
    schema: StructType,
    options: Mapping[str, str],
) -> DataFrame:
    """The rows of `files` (paths below `root`, each with its batch number) in `schema`, with
    the batch number as a last column `batch_id`, read by Arrow in Python workers."""
    from pyspark.sql.types import LongType, StructField, StructType

    _check_arrow_read(schema, format, options)
    with_batch = StructType([*schema.fields, StructField(BATCH_COLUMN, LongType())])
    return _scan(spark, root, files, with_batch, format=format, options=options)


def _scan(
    spark: SparkSession,
    root: str,
    listing: Sequence[tuple[str, int | None]],
    schema: StructType,
    *,
    format: str,
    options: Mapping[str, str],
) -> DataFrame:
    """One task per listed file (relative to `root`, or "" for `root` itself), yielding
    `schema`'s rows."""
    if not listing:
        return spark.createDataFrame([], schema)
    filesystem, location = storage.filesystem(root)
    base = location.rstrip("/")
    listing = [(f"{base}/{name}" if name else base, batch) for name, batch in listing]
    # A zoneless timestamp is read in the session's time zone, as Spark's JSON reader reads it.
    zone = str(spark.conf.get("spark.sql.session.timeZone"))
    read = partial(
        _read_partition, filesystem, format, schema.jsonValue(), dict(options), zone=zone
    )
    files = spark.createDataFrame(list(listing), "path STRING, batch LONG")
    return files.repartition(len(listing)).mapInArrow(read, schema)


def write_files(
    df: DataFrame, folder: str, *, format: str, prefix: str, options: Mapping[str, str]
) -> list[tuple[str, int]]:
    """Write each partition of `df` as one file `<prefix>-<partition>.<ext>` into `folder`, from
    the Python workers; `(file name, rows)` of every non-empty partition Spark accepted.

    A retried task rewrites its file under the same name, so each partition counts once.
    """
    if format not in FORMATS:
        raise UnknownValueError("format", format, FORMATS)
    unknown = sorted(set(options) - _WRITE_OPTIONS)
    if unknown:
        raise InvalidArgumentError(
            "options",
            f"writing {format} with Arrow (a store Spark has no filesystem for) takes "
            f"{sorted(_WRITE_OPTIONS)}, got {unknown}",
            "Drop those options, or give Spark a filesystem connector for the store.",
        )
    filesystem, location = storage.filesystem(folder)
    stem = f"{location.rstrip('/')}/{prefix}"
    write = partial(_write_partition, filesystem, format, dict(options), stem)
    rows = df.mapInArrow(write, WRITTEN_SCHEMA).collect()
    return sorted((str(r["file"]), int(r["rows"])) for r in rows)


def _check_arrow_read(schema: StructType, format: str, options: Mapping[str, str]) -> None:
    """Refuse, before any job, what the Arrow path would read other than Spark's reader."""
    unknown = sorted(
        k for k, v in options.items()
        if k not in _READ_OPTIONS[format] or (k == "mode" and v.upper() != "PERMISSIVE")
    )  # fmt: skip
    if unknown:
        raise InvalidArgumentError(
            "options",
            f"reading {format} with Arrow (a store Spark has no filesystem for) honours "
            f"{sorted(_READ_OPTIONS[format]) or 'no options'} (mode PERMISSIVE only), got "
            + ", ".join(f"{k}={options[k]!r}" for k in unknown),
            "Drop those options, or give Spark a filesystem connector for the store.",
        )
    kinds = {"json": JSON_TYPES, "csv": CSV_TYPES}.get(format)
    refused = [
        f"{f.name} {f.dataType.simpleString()}"
        for f in schema.fields
        if kinds is not None and f.dataType.typeName() not in kinds
    ]
    if refused:
        raise InvalidArgumentError(
            "schema",
            f"{format.upper()} read by Arrow workers takes {sorted(kinds or ())} columns, "
            f"got {refused}",
            "Read those columns as strings and cast them in a step.",
        )


# --- in the Python workers ---------------------------------------------------------------------


def _read_partition(
    filesystem: FileSystem,
    format: str,
    schema_json: dict[str, Any],
    options: dict[str, str],
    listings: Iterator[pa.RecordBatch],
    *,
    zone: str,
) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import StructType

    schema = StructType.fromJson(schema_json)
    batch_id = schema.fieldNames()[-1] == BATCH_COLUMN
    if batch_id:
        schema = StructType(schema.fields[:-1])
    arrow_schema = to_arrow_schema(schema, timezone="UTC")  # instants, whatever the zone
    for listing in listings:
        paths, batches = listing.column("path").to_pylist(), listing.column("batch").to_pylist()
        for path, batch in zip(paths, batches, strict=True):
            if format == "parquet":
                read = _parquet_batches(filesystem, path, arrow_schema)
            else:
                with filesystem.open_input_stream(path, compression="detect") as source:
                    data = bytes(source.read())
                parsed = (
                    csv_batch(data, schema, arrow_schema, options, zone)
                    if format == "csv"
                    else json_batch(data, schema, arrow_schema, zone)
                )
                read = [] if parsed is None else [parsed]
            for rows in read:
                yield (
                    rows.append_column(
                        BATCH_COLUMN, pa.repeat(pa.scalar(batch, pa.int64()), rows.num_rows)
                    )
                    if batch_id
                    else rows
                )


def _parquet_batches(
    filesystem: FileSystem, path: str, arrow_schema: pa.Schema
) -> list[pa.RecordBatch]:
    """The columns of `arrow_schema` from one Parquet file, matched by name as Spark matches
    them (case-insensitively, unless the file spells the name exactly), missing ones null."""
    import pyarrow as pa
    from pyarrow import parquet

    # INT96 (Spark's default timestamps) in microseconds: nanoseconds overflow past 2262.
    file = parquet.ParquetFile(path, filesystem=filesystem, coerce_int96_timestamp_unit="us")
    present = file.schema_arrow.names
    by_lower: dict[str, list[str]] = {}
    for name in present:
        by_lower.setdefault(name.lower(), []).append(name)
    chosen = {
        f.name: f.name if f.name in present else next(iter(by_lower.get(f.name.lower(), [])), None)
        for f in arrow_schema
    }
    table = file.read(columns=sorted({c for c in chosen.values() if c is not None}))
    columns = [
        table.column(chosen[f.name]).cast(f.type)
        if chosen[f.name] is not None
        else pa.nulls(table.num_rows, f.type)
        for f in arrow_schema
    ]
    batches: list[pa.RecordBatch] = pa.Table.from_arrays(columns, schema=arrow_schema).to_batches()
    return batches


def _write_partition(
    filesystem: FileSystem,
    format: str,
    options: dict[str, str],
    stem: str,
    batches: Iterator[pa.RecordBatch],
) -> Iterator[pa.RecordBatch]:
    import itertools

    import pyarrow as pa
    from pyspark import TaskContext

    first = next(batches, None)
    context = TaskContext.get()
    if first is None or context is None:
        return
    compression = options.get("compression")
    suffix = ".gz" if format != "parquet" and compression == "gzip" else ""
    path = f"{stem}-{context.partitionId():05d}{_EXTENSIONS[format]}{suffix}"
    rows = 0
    stream = filesystem.open_output_stream(path, compression="gzip" if suffix else None)
    with stream:
        write = _batch_writer(stream, format, first.schema, options)
        for batch in itertools.chain([first], batches):
            write(batch)
            rows += batch.num_rows
        write(None)
    yield pa.RecordBatch.from_pydict({"file": [path.rsplit("/", 1)[-1]], "rows": [rows]})


def _batch_writer(
    stream: Any, format: str, schema: pa.Schema, options: Mapping[str, str]
) -> Callable[[pa.RecordBatch | None], None]:
    """A function writing each batch to `stream` in `format`; None closes the format's writer."""
    from pyarrow import parquet

    if format != "parquet":
        write = text_writer(stream, format, schema, options)
        return lambda batch: None if batch is None else write(batch)
    writer = parquet.ParquetWriter(stream, schema, compression=options.get("compression", "snappy"))

    def tables(batch: pa.RecordBatch | None) -> None:
        if batch is None:
            writer.close()
        else:
            writer.write_batch(batch)

    return tables
