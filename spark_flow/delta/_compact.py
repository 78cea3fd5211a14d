"""Bin-packing compaction of a Delta table's small files, rewritten by Spark (`optimize`).

The driver reads the log and packs each partition's small files into bins of about the target
size; one Spark job reads every bin and writes it back as one file (a shuffle on the bin number
keeps a bin in one task), staged like any write; one commit swaps them (see `rs.commit_rewrite`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import pyarrow as pa
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from spark_flow.delta import _log, _partitions, _stats, rs
from spark_flow.delta._files import partition_text
from spark_flow.delta._read_spark import SESSION_TIME_ZONE
from spark_flow.delta._schema import table_spark_schema
from spark_flow.delta._types import OptimizeReport, WriteRequest
from spark_flow.errors import InvalidArgumentError, UnsupportedDeltaFeatureError

if TYPE_CHECKING:
    from deltalake import DeltaTable
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

_BIN = "_spark_flow_bin"
# Features whose files cannot be rewritten as plain Parquet of the logical columns: deleted rows
# would come back (deletion vectors), physical names or row ids would be lost.
_UNREWRITABLE = {"deletionVectors", "columnMapping", "rowTracking", "icebergCompatV1",
                 "icebergCompatV2"}  # fmt: skip


@dataclass(frozen=True)
class _Bin:
    """Small files of one partition that become one file."""

    partition: tuple[tuple[str, Any], ...]
    files: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class Compaction:
    """A compaction planned on one snapshot of the table: its bins and where they are staged."""

    path: str
    plan: rs.WritePlan
    bins: tuple[_Bin, ...]


def compact(
    spark: SparkSession,
    path: str,
    root: Path,
    *,
    wanted: Mapping[str, str | None] | None,
    target_file_size: int,
    min_files: int,
) -> OptimizeReport:
    """`maintenance.optimize` once its arguments are checked."""
    time_zone = spark.conf.get(SESSION_TIME_ZONE, None)
    planned = plan(path, root, wanted=wanted, target_file_size=target_file_size,
                   min_files=min_files, time_zone=time_zone)  # fmt: skip
    return planned if isinstance(planned, OptimizeReport) else run(spark, planned)


def plan(
    path: str,
    root: Path,
    *,
    wanted: Mapping[str, str | None] | None,
    target_file_size: int,
    min_files: int,
    time_zone: str | None = None,
) -> Compaction | OptimizeReport:
    """The bins to rewrite, read from the log (no Spark job); a report when there are none.

    `wanted` values are read as values of their columns' types (a zoneless TIMESTAMP in
    `time_zone`), so `1.5` finds the partition logged as `1.50`."""
    table = _log.require_table(str(root))
    _refuse_unrewritable(table)
    _log.check_rewritable(path, table)
    partition_by = list(table.metadata().partition_columns)
    outside = sorted(set(wanted or {}) - set(partition_by))
    if outside:
        raise InvalidArgumentError(
            "partition",
            f"{outside} are not partition columns of {path!r} (it has {partition_by})",
            "Name partition columns only, or leave partition out to compact the whole table.",
        )
    typed = None
    if wanted:
        typed = dict(
            _partitions.typed_values(
                wanted.items(), table_spark_schema(table), path=path, time_zone=time_zone,
                argument="partition",
            )
        )  # fmt: skip
    actions = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    bins = _bins(actions, partition_by, typed, target_file_size, min_files)
    if not bins:
        reason = f"no partition has {min_files} or more files smaller than {target_file_size} bytes"
        log.info("optimize %s: nothing to do (%s)", path, reason)
        return OptimizeReport(
            path, committed=False, table_version=table.version(), skipped_reason=reason
        )
    write_plan = rs.WritePlan(
        WriteRequest(str(root)),
        str(root),
        table.version(),
        table_spark_schema(table),
        partition_by,
        indexed_columns=_stats.indexed_columns(table.metadata().configuration),
    )
    return Compaction(path, write_plan, tuple(bins))


def run(spark: SparkSession, compaction: Compaction) -> OptimizeReport:
    """Rewrite the bins with Spark and commit them in place of their files."""
    path, write_plan, bins = compaction.path, compaction.plan, list(compaction.bins)
    removed = [action for found in bins for action in found.files]
    try:
        rows = _rewritten(spark, Path(write_plan.root), write_plan.schema, write_plan.partition_by,
                          bins)  # fmt: skip
        writer = rs.spark_writable(rows, write_plan).write.mode("overwrite")
        writer = writer.option("compression", "snappy")
        if write_plan.partition_by:
            writer = writer.partitionBy(*write_plan.partition_by)
        writer.parquet(str(write_plan.staging))
        committed = rs.commit_rewrite(write_plan, removed)
    finally:
        rs.discard_staging(write_plan)
    if committed is None:
        reason = "a concurrent commit removed files this compaction rewrote; run it again"
        return OptimizeReport(
            path, committed=False, table_version=_log.require_table(path).version(),
            skipped_reason=reason,
        )  # fmt: skip
    version, added = committed
    log.info("optimize %s version %s: %d files -> %d", path, version, len(removed), added)
    return OptimizeReport(
        path,
        committed=True,
        table_version=version,
        files_removed=len(removed),
        files_added=added,
        partitions=len({_logged(found.partition) for found in bins}),
    )


def _refuse_unrewritable(table: DeltaTable) -> None:
    protocol = table.protocol()
    features = set(protocol.reader_features or ()) | set(protocol.writer_features or ())
    mode = table.metadata().configuration.get("delta.columnMapping.mode") or "none"
    if mode != "none":  # the legacy protocol (reader 2) lists no features, only this property
        features.add("columnMapping")
    if "deletionVectors" in features and not pa.table(table.deletion_vectors()).num_rows:
        # Enabled (Databricks' default for new tables) but no file has one: plain files.
        features.discard("deletionVectors")
    found = sorted(features & _UNREWRITABLE)
    if found:
        raise UnsupportedDeltaFeatureError(
            f"optimize of tables with {found}",
            "Compact this table with the delta-spark connector (OPTIMIZE), which rewrites "
            "such files correctly.",
        )


def _logged(partition: tuple[tuple[str, Any], ...]) -> tuple[str | None, ...]:
    """A partition as the log spells it: -0.0 and 0.0 are two partitions, NaN is one."""
    return tuple(partition_text(value) for _, value in partition)


def _bins(
    actions: list[dict[str, Any]],
    partition_by: list[str],
    wanted: Mapping[str, Any] | None,
    target_file_size: int,
    min_files: int,
) -> list[_Bin]:
    """Each partition's files below the target, packed smallest first into bins of <= target;
    a bin of one file is left as it is."""
    partitions: dict[tuple[Any, ...], tuple[Any, list[dict[str, Any]]]] = {}
    for action in actions:
        values = tuple((c, action.get(f"partition.{c}")) for c in partition_by)
        found = dict(values)
        if wanted and any(not _partitions.same(found[c], v) for c, v in wanted.items()):
            continue
        if action["size_bytes"] < target_file_size:
            partitions.setdefault(_logged(values), (values, []))[1].append(action)
    bins: list[_Bin] = []
    for values, small in partitions.values():
        if len(small) < min_files:
            continue
        current: list[dict[str, Any]] = []
        size = 0
        for action in sorted(small, key=lambda a: (a["size_bytes"], a["path"])):
            if current and size + action["size_bytes"] > target_file_size:
                bins.append(_Bin(values, tuple(current)))
                current, size = [], 0
            current.append(action)
            size += action["size_bytes"]
        bins.append(_Bin(values, tuple(current)))
    return [found for found in bins if len(found.files) > 1]


def _rewritten(
    spark: SparkSession, root: Path, schema: StructType, partition_by: list[str], bins: list[_Bin]
) -> DataFrame:
    """The rows of every bin, one Spark partition per bin, in the table's column order.

    Partition values come from the log (not from folder names), typed by the schema.
    """
    data_schema = StructType([f for f in schema.fields if f.name not in partition_by])
    parts = []
    for number, found in enumerate(bins):
        files = [str(root / unquote(action["path"])) for action in found.files]
        frame = spark.read.schema(data_schema).parquet(*files).withColumn(_BIN, F.lit(number))
        for column, value in found.partition:
            frame = frame.withColumn(column, F.lit(value).cast(schema[column].dataType))
        parts.append(frame)
    rows = reduce(lambda left, right: left.unionByName(right), parts)
    # A hash of the bin number keeps each bin in one task; two bins may share one (a bigger
    # file), none is split.
    return rows.repartition(len(bins), _BIN).select(*schema.fieldNames())
