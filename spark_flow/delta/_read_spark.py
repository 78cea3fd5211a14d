"""Reading a table on the delta-rs backend: a `ScanPlan` executed by Spark's own Parquet scan.

`read` picks the reader: Spark's Parquet scan where Spark has a filesystem for the table's
scheme, else the `delta` data source, which reads the same plan with Arrow in Python workers.
Either way the rows stay in the executors; the driver reads only the log.

The log's facts reach the rows through the file each row came from (`_metadata.file_path`):
a broadcast join adds the partition values of its add action, and a join of bitmaps on
(file, row index) drops the rows its deletion vector removes (`_deletions`; files without one
are scanned apart, without that join). Tables without partitions or deletion
vectors are scanned as they are. Column mapping is a projection: each stored (physical) column
is cast to its logical type, which renames nested fields by position.
"""

from __future__ import annotations

import json
import logging
import os
import re
from typing import TYPE_CHECKING, Literal, cast, get_args

from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

from spark_flow import storage
from spark_flow.delta import _deletions, _read
from spark_flow.delta._log import file_key
from spark_flow.delta._read import PlannedFile, ScanPlan
from spark_flow.delta._remote_errors import as_ours
from spark_flow.delta._source_options import TIME_ZONE_OPTION
from spark_flow.errors import UnknownValueError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)

SESSION_TIME_ZONE = "spark.sql.session.timeZone"
READ_PATH_CONF = "spark.spark_flow.delta.readPath"
"""Session conf: `spark` (Spark's Parquet scan), `arrow` (the data source) or `auto`."""
FILTER_OPTION = "spark_flow.filter"
# The driver's store variables, for the data source's Python processes (storage.store_environment).
ENVIRONMENT_OPTION = "spark_flow.environment"
"""The `delta` data source option carrying `read`'s SQL filter, for file skipping."""
ReadPath = Literal["auto", "spark", "arrow"]
_READ_PATHS: tuple[str, ...] = get_args(ReadPath)
# Schemes a plain pip pyspark has a Hadoop filesystem for; others need `fs.<scheme>.impl` set.
_HADOOP_SCHEMES = {"file", "hdfs"}
_FILE = "_spark_flow_file"
_SIZE = "_spark_flow_size"
# Spark globs the paths it is given; a file name may contain glob characters.
_GLOB = re.compile(r"([\\\[\]{}*?])")


def read(
    spark: SparkSession,
    path: str,
    version: int | None = None,
    row_filter: str | Column | None = None,
) -> DataFrame:
    """The table at `path` (at `version`), its rows filtered by `row_filter`.

    A SQL `row_filter` also prunes the planned files by partition values and statistics; a
    Column filters the rows only (Spark still pushes it into the Parquet scan).
    """
    predicate = row_filter if isinstance(row_filter, str) else None
    time_zone = spark.conf.get(SESSION_TIME_ZONE, None)
    plan = None
    if _read_path(spark, path) == "spark":
        plan = _read.plan(path, version, predicate=predicate, time_zone=time_zone)
        misread = _spark_misreads(plan)
        if misread is not None:
            log.info("reading %s with Arrow in Python workers: %s", path, misread)
            plan = None
    if plan is not None:
        frame = scan(spark, plan)
    else:
        environment = json.dumps(storage.store_environment())
        reader = spark.read.format("delta").option(ENVIRONMENT_OPTION, environment)
        if version is not None:
            reader = reader.option("versionAsOf", version)
        if predicate is not None:
            reader = reader.option(FILTER_OPTION, predicate)
            if time_zone is not None:
                reader = reader.option(TIME_ZONE_OPTION, time_zone)
        with as_ours():  # the source's errors (no table, no store ...) as themselves
            frame = reader.load(path)
    if row_filter is None:
        return frame
    return frame.where(F.expr(row_filter) if isinstance(row_filter, str) else row_filter)


def _spark_misreads(plan: ScanPlan) -> str | None:
    """Why Spark's Parquet scan would read `plan` wrong, or None when it reads it right."""
    if _deletions.ROW_INDEX_COLUMN in plan.physical.fieldNames():
        # Spark's Parquet scan fills a column of that name with row indexes, not its values.
        return f"it stores a column named {_deletions.ROW_INDEX_COLUMN}"
    if plan.narrow_decimals:
        return f"Spark reads no byte or short as the decimal of {list(plan.narrow_decimals)}"
    unnamable = next((f.uri for f in plan.files if _unnamable(f.uri)), None)
    if unnamable is not None:
        return f"Spark cannot read data files named like {unnamable!r}"
    return None


def _unnamable(uri: str) -> bool:
    """Whether Spark cannot read the file at `uri` by its name, even when named explicitly.

    Spark's file index takes names starting with `_` (but not `_x=y`) or `.` for hidden files,
    `._COPYING_` for files being copied, and `_metadata` / `_common_metadata` for Parquet
    summaries (`HadoopFSUtils.shouldFilterOutPathName`): it would return none of their rows,
    silently. And Hadoop's checksummed filesystems fail on a name with a `:`, which makes
    their `.<name>.crc` look like a URI with a scheme.
    """
    name = uri.rsplit("/", 1)[-1]
    return (
        (name.startswith("_") and "=" not in name)
        or name.startswith((".", "_metadata", "_common_metadata"))
        or name.endswith("._COPYING_")
        or ":" in name
    )


def _read_path(spark: SparkSession, path: str) -> ReadPath:
    """The session's choice of reader, else the one the scheme of `path` allows."""
    chosen = spark.conf.get(READ_PATH_CONF, "auto") or "auto"
    if chosen not in _READ_PATHS:
        raise UnknownValueError(READ_PATH_CONF, chosen, _READ_PATHS)
    if chosen != "auto":
        return cast(ReadPath, chosen)
    location = storage.scheme(path)
    if location in _HADOOP_SCHEMES or spark.conf.get(f"spark.hadoop.fs.{location}.impl", None):
        return "spark"
    log.info("reading %s with Arrow in Python workers: Spark has no filesystem for %s://",
             path, location)  # fmt: skip
    return "arrow"


def scan(spark: SparkSession, plan: ScanPlan) -> DataFrame:
    """The rows of `plan` in the table's logical schema."""
    if not plan.files:
        return spark.createDataFrame([], plan.schema)
    # Only the files with a deletion vector pay for the anti join; the rest are scanned plainly.
    groups = [
        tuple(f for f in plan.files if f.deleted_rows is None),
        tuple(f for f in plan.files if f.deleted_rows is not None),
    ]
    frames = [_scan(spark, plan, files) for files in groups if files]
    return frames[0] if len(frames) == 1 else frames[0].union(frames[1])


def _scan(spark: SparkSession, plan: ScanPlan, files: tuple[PlannedFile, ...]) -> DataFrame:
    """The rows of `files`, which all have a deletion vector or none has."""
    deletions = files[0].deleted_rows is not None
    schema = plan.physical
    if deletions:
        schema = StructType([*schema.fields, StructField(_deletions.ROW_INDEX_COLUMN, LongType())])
    frame = spark.read.schema(schema).parquet(*[_spark_path(f.uri) for f in files])
    if plan.partition_columns or deletions:
        frame = _with_log_facts(spark, plan, files, frame, deletions=deletions)
    return frame.select(*_logical_columns(plan))


def _spark_path(uri: str) -> str:
    # A plain path would resolve against the cluster's default filesystem (HDFS on YARN).
    located = "file:" + storage.absolute(uri) if storage.is_local(uri) else uri
    return _GLOB.sub(r"\\\1", located)


def _with_log_facts(
    spark: SparkSession,
    plan: ScanPlan,
    files: tuple[PlannedFile, ...],
    frame: DataFrame,
    *,
    deletions: bool,
) -> DataFrame:
    names = {file_key(name): _metadata_path(name) for name in frame.inputFiles()}
    spark_names = [names[file_key(f.uri)] for f in files]
    deletion = None
    if deletions:
        deleted = {  # every file of the group has one: `scan` groups them
            name: f.deleted_rows
            for name, f in zip(spark_names, files, strict=True)
            if f.deleted_rows is not None
        }
        deletion = _deletions.deletion_join(
            spark, deleted, file_column=_FILE, sizes=_local_sizes(files)
        )
    extra = [] if deletion is None else list(deletion.columns)
    if plan.partition_columns or (deletion is not None and _FILE in deletion.on):
        extra.append(F.col("_metadata.file_path").alias(_FILE))
    frame = frame.select("*", *extra)
    if plan.partition_columns:
        partitions = _partition_frame(spark, plan, files, spark_names)
        frame = frame.join(F.broadcast(partitions), on=_FILE)
    return frame if deletion is None else deletion.apply(frame)


def _local_sizes(files: tuple[PlannedFile, ...]) -> list[int] | None:
    """Each file's size as Spark lists it, when all are on a disk the driver sees; else None."""
    if not all(storage.is_local(f.uri) for f in files):
        return None
    try:
        return [os.stat(storage.absolute(f.uri)).st_size for f in files]
    except OSError:  # Spark's scan will name the missing file
        return None


def _metadata_path(input_file: str) -> str:
    """`_metadata.file_path` of a file `DataFrame.inputFiles()` names.

    Both are Hadoop's URI-encoded spelling, except that a local file's URI keeps its empty
    authority in one (`file:///tmp/t`) and not in the other (`file:/tmp/t`).
    """
    if input_file.startswith("file:///"):
        return "file:/" + input_file[len("file:///") :]
    return input_file


def _partition_frame(
    spark: SparkSession, plan: ScanPlan, files: tuple[PlannedFile, ...], spark_names: list[str]
) -> DataFrame:
    fields = [plan.schema[c] for c in plan.partition_columns]
    schema = StructType([StructField(_FILE, StringType(), False), *fields])
    rows = [
        (name, *(f.partition_values[c] for c in plan.partition_columns))
        for name, f in zip(spark_names, files, strict=True)
    ]
    return spark.createDataFrame(rows, schema)


def _logical_columns(plan: ScanPlan) -> list[Column]:
    stored = dict(zip([f.name for f in plan.data_fields], plan.physical.fields, strict=True))
    columns = []
    for field in plan.schema.fields:
        physical = stored.get(field.name)
        if physical is None:  # a partition column, from the join
            columns.append(F.col(_quoted(field.name)))
            continue
        column = F.col(_quoted(physical.name))
        if physical.dataType != field.dataType:  # nested fields stored under physical names
            column = column.cast(field.dataType)  # a struct cast renames by position
        columns.append(column.alias(field.name))
    return columns


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
