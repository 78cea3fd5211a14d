"""The delta-rs bridge: Spark writes the Parquet files, `deltalake` commits them.

Used where the delta-spark JARs are not on the classpath. A write goes in four moves:

1. check the store is reachable and open the table's log (driver, no Spark job); stop if
   `(app_id, txn_version)` is committed;
2. executors write the Parquet files, so no row of data passes through the driver:
   - on a local or mounted disk Spark's writer stages them in a folder inside the table, and
     the driver moves them next to the table's data (a rename) and reads their footers;
   - on an object store Python workers write them with Arrow straight into the table
     (`_files.FileWriter` in `mapInArrow`: plain pip-installed Spark has no S3 filesystem) and
     return each file's description; no rename is needed, as uncommitted files are invisible;
3. one Delta commit adds exactly those files, carrying the app transaction; on a store it is
   the store's conditional put that makes the commit exclusive. delta-rs rejects the commit
   when a concurrent writer committed the same app id since step 1; the loser removes its
   files and reports a skip.

Readers see either the old version or the new one: uncommitted files are never in the log.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections.abc import Collection, Mapping
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError, DeltaError
from deltalake.transaction import (
    AddAction,
    CommitProperties,
    Transaction,
    create_table_with_add_actions,
)
from pyspark.sql import functions as F

from spark_flow import storage
from spark_flow._paths import partition_directory
from spark_flow.delta import _evolve, _log, _mapping, _partitions, _stats
from spark_flow.delta._create import create_on_store
from spark_flow.delta._files import (
    WRITTEN_SCHEMA,
    FileWriter,
    WrittenFile,
    add_action,
    instants_as_micros,
    remove_action,
    rows_of,
)
from spark_flow.delta._schema import (
    commit_schema,
    planned_partitioning,
    planned_schema,
    refuse_nulls,
    table_spark_schema,
    table_spelling,
)
from spark_flow.delta._shape import shaped_columns
from spark_flow.delta._types import WriteRequest, WriteResult
from spark_flow.errors import InvalidArgumentError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

log = logging.getLogger(__name__)

_WRITE_ID_KEY = "spark_flow.writeId"
# Commits retried on a newer snapshot after a concurrent commit won (each retry re-checks).
_COMMIT_RETRIES = 10


def write(df: DataFrame, request: WriteRequest) -> WriteResult:
    """Write `df` as one Delta commit; see the module docstring for the steps."""
    plan = plan_write(request, df.schema)
    if isinstance(plan, WriteResult):
        return plan
    if request.optimize_write:
        # Spark's adaptive execution sizes the partitions of a rebalance: a small write lands in
        # one file per partition value instead of one per core, a large one is not squeezed.
        df = df.hint("rebalance", *plan.partition_by)
    if not plan.local:
        started = time.perf_counter()
        rows = df.mapInArrow(file_writer(plan, plan.root), WRITTEN_SCHEMA).collect()
        log.debug("wrote %s in %.2fs", request.path, time.perf_counter() - started)
        return commit_written(plan, [WrittenFile.from_row(row.asDict()) for row in rows])
    try:
        writer = spark_writable(df, plan).write.mode("overwrite").option("compression", "snappy")
        if plan.partition_by:
            writer = writer.partitionBy(*plan.partition_by)
        started = time.perf_counter()
        writer.parquet(str(plan.staging))
        log.debug("staged %s in %.2fs", request.path, time.perf_counter() - started)
        return commit_staged(plan)
    finally:
        discard_staging(plan)


@dataclass(frozen=True)
class WritePlan:
    """A write that passed its checks: the table version it read, and where files go.

    Picklable: the `delta` data source plans on the driver and commits in another process,
    and Python workers write with the store settings resolved here (`deltalake`, `pyarrow`:
    `storage.options` of the root, credentials included, hence kept out of the repr).
    """

    request: WriteRequest
    root: str
    read_version: int | None
    schema: StructType
    partition_by: list[str]
    write_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    deltalake: Mapping[str, str] = field(default_factory=dict, repr=False)
    pyarrow: Mapping[str, Any] = field(default_factory=dict, repr=False)
    # The table's choice of columns with statistics (delta.dataSkipping* properties).
    indexed_columns: int | tuple[str, ...] = _stats.DEFAULT_INDEXED_COLUMNS
    mapping: _mapping.ColumnMapping | None = None  # physical names (None: files use logical)

    @property
    def local(self) -> bool:
        """True on a local or mounted disk: files are staged and renamed into place."""
        return storage.is_local(self.root)

    @property
    def staging(self) -> Path:
        return Path(self.root) / storage.STAGING_DIR / self.write_id


def plan_write(request: WriteRequest, data_schema: StructType) -> WritePlan | WriteResult:
    """Check a write against the table before any Spark job: skip, features, schema, partitions."""
    root = storage.folder(request.path)
    table = _log.open_table(root)  # checks the store is reachable first
    skipped = _log.skipped_write(table, request)
    if skipped:
        return skipped
    if table is not None:
        _log.check_writable(request.path, table, request)
    plan = WritePlan(
        request,
        root,
        None,
        data_schema,
        [],
        deltalake=storage.options(root),
        pyarrow=storage.options(root, client="pyarrow"),
    )
    return _checked_plan(plan, table)


def _checked_plan(plan: WritePlan, table: DeltaTable | None) -> WritePlan:
    """The plan with the schema and partitioning the write gets on `table` (None: a new table).

    `plan.schema` is the data's schema: a new table takes it as it is, so a plan made for a
    new table can be re-checked against one that a concurrent writer created meanwhile.
    """
    request = plan.request
    current = None if table is None else list(table.metadata().partition_columns)
    lost = [c for c in current or () if c not in plan.schema.fieldNames()]
    if request.overwrite_schema and lost:
        # deltalake's commit would keep them in the table's metadata: a log no reader can read
        raise InvalidArgumentError(
            "overwrite_schema",
            f"the table at {request.path!r} is partitioned by {current}, and the data lacks "
            f"{lost}; the delta-rs backend's overwrite keeps a table's partitioning",
            "Keep the partition columns in the data, write to a new table, or use the jvm backend.",
        )
    schema = planned_schema(
        request.path,
        None if table is None or request.overwrite_schema else table_spark_schema(table),
        plan.schema,
        merge_schema=request.merge_schema,
    )
    partition_by = planned_partitioning(
        request.path,
        current,
        None if request.partition_by is None else list(request.partition_by),
        plan.schema,
    )
    outside = [c for c, _ in request.replace_where or () if c not in partition_by]
    if outside:
        raise InvalidArgumentError(
            "replace_where",
            f"{outside} are not partition columns of {request.path!r} (it has {partition_by})",
            "Replace partitions by partition columns, or overwrite the whole table.",
        )
    request = _partitions.resolved_replace_where(request, schema)
    mapping = _mapping.mapping_of(request, table, schema)
    read_version = None if table is None else table.version()
    indexed = (
        _stats.DEFAULT_INDEXED_COLUMNS
        if table is None
        else _stats.indexed_columns(table.metadata().configuration)
    )
    return replace(
        plan,
        request=request,
        read_version=read_version,
        schema=schema,
        partition_by=partition_by,
        indexed_columns=indexed,
        mapping=mapping,
    )


def file_writer(plan: WritePlan, root: str) -> FileWriter:
    """The Arrow writer of the plan's files below `root` (the table, or a staging folder)."""
    return FileWriter(
        root,
        plan.write_id,
        tuple(plan.partition_by),
        plan.pyarrow,
        schema=plan.schema,
        indexed_columns=plan.indexed_columns,
        mapping=plan.mapping,
    )


def commit_staged(plan: WritePlan, staged: Collection[str] | None = None) -> WriteResult:
    """Move the staged files `staged` (relative to the staging folder; default all: Spark's own
    writer leaves only its committed tasks' files) into the table and commit them; remove them
    if the commit fails."""
    return commit_written(plan, _publish(plan, staged))


def commit_written(
    plan: WritePlan, files: list[WrittenFile], written_by: WritePlan | None = None
) -> WriteResult:
    """Commit files written in place (by `written_by`'s plan, default `plan`'s); remove them if
    the commit fails."""
    actions = [add_action(file) for file in files]
    nulls = [column for file in files for column in file.null_columns]  # as the files name them
    try:
        _evolve.same_mapping(written_by or plan, plan)
        refuse_nulls(
            plan.request.path,
            plan.schema,
            _mapping.logical_paths(plan.mapping, plan.schema, nulls)
            + [c for file in files for c, v in file.partition_values.items()
               if v is None and not plan.schema[c].nullable],
        )  # fmt: skip
        _partitions.check_replaced(plan.request, plan.schema, actions)
        return _commit(plan, actions)
    except BaseException:
        storage.delete_files(plan.root, [action.path for action in actions])
        raise


def commit_rewrite(plan: WritePlan, rewritten: list[Mapping[str, Any]]) -> tuple[int, int] | None:
    """Swap the files `rewritten` (as `get_add_actions(flatten=True)` lists them) for the staged
    ones that hold their rows.

    One commit removes the old files and adds the new ones, all with `dataChange=false`: no
    row changes, so streaming readers skip it and no app transaction is needed. Committed on
    the plan's snapshot, so delta-rs refuses it when a concurrent commit removed one of the
    files (then the new files are removed again) and lets concurrent appends through.

    Returns:
        (version committed, files added), or None when a concurrent commit won.
    """
    actions = [add_action(file, data_change=False) for file in _publish(plan)]
    removes = [remove_action(file, plan.partition_by, data_change=False) for file in rewritten]
    table = DeltaTable(plan.root, version=plan.read_version)
    properties = CommitProperties(
        custom_metadata={_WRITE_ID_KEY: plan.write_id, "spark_flow.operation": "OPTIMIZE"}
    )
    try:
        table.create_write_transaction(
            [*actions, *removes],
            "append",
            commit_schema(table, plan.schema, overwrite_schema=False),
            partition_by=plan.partition_by,
            commit_properties=properties,
        )
    except CommitFailedError as exc:
        log.info("rewrite of %s lost to a concurrent commit (%s)", plan.root, exc)
        storage.delete_files(plan.root, [action.path for action in actions])
        return None
    except BaseException:
        storage.delete_files(plan.root, [action.path for action in actions])
        raise
    return _log.version_carrying(plan.root, plan.write_id, after=plan.read_version), len(actions)


def spark_writable(df: DataFrame, plan: WritePlan) -> DataFrame:
    """`df` as Spark's writer gets it: columns spelled as the table spells them
    (`_schema.table_spelling`), TIMESTAMP partition columns as epoch microseconds
    (`_files.instants_as_micros`), turned into Delta's UTC form when the files are published."""
    df = shaped_columns(df, plan.schema)  # nested fields in the table's order and spelling
    renamed = table_spelling(df.columns, plan.schema)
    df = df.withColumnsRenamed(renamed) if renamed else df
    micros = instants_as_micros(plan.schema, plan.partition_by)
    df = df.withColumns({c: F.unix_micros(c) for c in micros}) if micros else df
    return _mapping.physical_columns(df, plan.mapping, plan.partition_by)


def discard_staging(plan: WritePlan) -> None:
    """Remove the plan's staging folder, and its parent when no other writer stages there."""
    shutil.rmtree(plan.staging, ignore_errors=True)
    with suppress(OSError):
        plan.staging.parent.rmdir()


def _publish(plan: WritePlan, staged: Collection[str] | None = None) -> list[WrittenFile]:
    """Move the staged Parquet files into the table and describe them for their add actions.

    Each carries the file's statistics, read from the footer the writer just wrote. If a move
    fails, the files already moved are removed again: nothing is left outside staging.
    """
    staging, root, partition_by = plan.staging, Path(plan.root), plan.partition_by
    wanted = None if staged is None else set(staged)
    micros = instants_as_micros(plan.schema, partition_by)
    stored, stored_partitions, indexed = _mapping.stored_columns(
        plan.mapping, plan.schema, partition_by, plan.indexed_columns
    )
    checked = _stats.row_checked(stored, partition_by=stored_partitions)
    files: list[WrittenFile] = []
    try:
        for file in sorted(staging.rglob("*.parquet")):
            relative = file.relative_to(staging)
            if wanted is not None and relative.as_posix() not in wanted:
                continue
            values = _partitions.folder_values(relative, partition_by, micros)
            if micros:  # the folder named by microseconds becomes the one named by the value
                relative = Path(partition_directory(values), relative.name)
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            metadata = pq.read_metadata(file)
            # NOT NULL fields no footer can vouch for: their columns' rows, read back locally
            broken: tuple[str, ...] = ()
            if checked:
                names = metadata.schema.to_arrow_schema().names
                rows = pq.read_table(file, columns=[c for c in checked if c in names])
                broken = _stats.row_nulls(rows, stored, checked)
            os.replace(file, target)
            stat = target.stat()
            files.append(
                WrittenFile(
                    path=relative.as_posix(),
                    size=stat.st_size,
                    modification_time=int(stat.st_mtime * 1000),
                    partition_values=values,
                    stats=_stats.file_stats(
                        metadata,
                        stored,
                        partition_by=stored_partitions,
                        indexed_columns=indexed,
                    ),
                    null_columns=(
                        *_stats.forbidden_nulls(metadata, stored, partition_by=stored_partitions),
                        *broken,
                    ),
                )
            )
    except BaseException:
        storage.delete_files(str(root), [file.path for file in files])
        raise
    return files


def _commit(
    plan: WritePlan, actions: list[AddAction], retries: int = _COMMIT_RETRIES
) -> WriteResult:
    root, request, partition_by = plan.root, plan.request, plan.partition_by
    # Commit against the snapshot the checks read: delta-rs then rejects a concurrent commit
    # of the same app id that landed in between.
    table = (
        None
        if plan.read_version is None
        else DeltaTable(root, version=plan.read_version, storage_options=dict(plan.deltalake))
    )
    properties = CommitProperties(
        custom_metadata={_WRITE_ID_KEY: plan.write_id},
        app_transactions=(
            None
            if request.app_id is None or request.txn_version is None
            # lastUpdated as delta-spark writes it: under delta.setTransactionRetentionDuration
            # it keeps only transactions updated within the retention, none without the field.
            else [Transaction(request.app_id, request.txn_version, int(time.time() * 1000))]
        ),
    )
    delta_schema = _evolve.committed_schema(table, plan)
    try:
        if table is None:

            def create(location: str) -> None:
                create_table_with_add_actions(
                    location,
                    delta_schema,
                    actions,
                    mode="error",
                    partition_by=partition_by,
                    storage_options=dict(plan.deltalake),
                    commit_properties=properties,
                )

            if plan.local:
                create(root)
            elif not create_on_store(root, create):  # lost the race to create the table
                raise CommitFailedError(f"another writer created {root} first")
        else:
            removes = _partitions.replaced(table, request, actions, partition_by, plan.mapping)
            table = _evolve.add_columns(table, delta_schema, plan, partial=removes is not None)
            table.create_write_transaction(
                [*_mapping.logged(actions, plan.mapping), *(removes or ())],
                request.mode if removes is None else "append",
                delta_schema,
                partition_by=partition_by,
                commit_properties=properties,
            )
    except (CommitFailedError, DeltaError) as exc:
        # A concurrent writer may have committed the same (app_id, version), created the table,
        # or committed anything else meanwhile (Delta refuses two commits of one app id at once).
        current = _log.open_table(root)
        skipped = _log.skipped_write(current, request)
        if skipped is not None:
            log.info("lost a commit race on %s (%s); removed this write's files", root, exc)
            storage.delete_files(root, [action.path for action in actions])
            return skipped
        if current is not None and current.version() != plan.read_version and retries > 0:
            log.info("%s changed while committing (%s); committing again on top of it", root, exc)
            _log.check_writable(request.path, current, request)  # a feature it may have added
            replanned = _evolve.same_mapping(plan, _checked_plan(plan, current))
            return _commit(replanned, actions, retries - 1)
        raise
    version = _log.version_carrying(root, plan.write_id, after=plan.read_version)
    rows = sum(rows_of(action.stats) for action in actions)
    log.info("committed %s version %s: %d rows in %d files", root, version, rows, len(actions))
    return WriteResult(
        committed=True,
        table_version=version,
        rows_written=rows,
        files=tuple(action.path for action in actions),
    )
