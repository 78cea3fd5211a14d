"""Delta Lake reads and idempotent writes, the same on both backends: the toolkit's one door.

`jvm` is the delta-spark connector, used when its JARs are on the classpath; `delta-rs` lets
Spark write the Parquet files and commits them with the `deltalake` package. `enable_delta`
picks one per session and says which and why in the log; `backend(spark)` tells.

`table_info`, `transaction_version` and `already_committed` read only the table's log, with
deltalake and no Spark session, wherever deltalake reads it (local paths, `file:`, `s3://`,
`gs://`, `abfss://` ...), whichever backend the writers use.

Delta's own warning applies to both: a write whose `(app_id, txn_version)` is already committed
is skipped, *even when its data differs*. Give each distinct batch of data its own txn version.

`optimize` compacts small files and `vacuum` deletes unreferenced ones (`maintenance`).

`write_routed` writes several tables from one Spark job on the delta-rs backend (a classic
session), each row to the table its route column names: a validated load's output and
quarantine without computing the input twice.

On a Spark Connect session the delta-rs backend commits on the server (`_connect`): the table
is visible there, not necessarily in the client.

Everything else in this package (`jvm`, `rs`, `source`, `_connect`, `_log`, `_routed`,
`_schema`, `_stats`, `_compact`, `_files`, `_types`) is private to it; `records` is the public
exception, for the runners' run history.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal, cast, get_args

from spark_flow._connect import is_connect
from spark_flow.delta import (
    _connect,
    _log,
    _read_spark,
    _registration,
    _remote_errors,
    _routed,
    _time_travel,
    jvm,
    rs,
)
from spark_flow.delta._partitions import replace_where_texts
from spark_flow.delta._routed import RoutedTable, RoutedWrite
from spark_flow.delta._time_travel import AsOf
from spark_flow.delta._types import (
    Backend,
    Mode,
    OptimizeReport,
    TableInfo,
    VacuumReport,
    WriteRequest,
    WriteResult,
    check_txn_version,
)
from spark_flow.delta.maintenance import optimize, vacuum
from spark_flow.errors import InvalidArgumentError, UnknownValueError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = [
    "AsOf",
    "Backend",
    "Mode",
    "OptimizeReport",
    "RoutedTable",
    "RoutedWrite",
    "TableInfo",
    "VacuumReport",
    "WriteResult",
    "already_committed",
    "backend",
    "check_txn_version",
    "enable_delta",
    "optimize",
    "read",
    "routed_writes",
    "table_info",
    "transaction_version",
    "vacuum",
    "write",
    "write_routed",
]

log = logging.getLogger(__name__)

BACKEND_CONF = "spark.spark_flow.delta.backend"
OPTIMIZE_WRITE_CONF = "spark.spark_flow.delta.optimizeWrite"
BackendChoice = Literal["auto", "jvm", "delta-rs"]
_CHOICES: tuple[str, ...] = get_args(BackendChoice)


def enable_delta(spark: SparkSession, backend: str = "auto") -> Backend:
    """Make `format("delta")` and this module work on a session, whoever created it.

    With `auto`, the delta-spark connector is used when the session can load it; otherwise the
    delta-rs bridge is attached: its `delta` Python data source is registered and Parquet
    timestamps are written as microseconds, the unit Delta stores. Calling it again is cheap;
    where the store variables (`AWS_*` ...) changed since, it registers the source again with
    them, so `format("delta")` reaches the store as the driver does. The delta-rs bridge also
    hooks pyspark's conversion of query errors, for this process: an error of ours raised by
    the `delta` source (a user's own `format("delta")` too) is raised as itself, still an
    instance of the exception pyspark would have raised (`delta._remote_errors`).

    Args:
        spark: the session, e.g. a Databricks notebook's `spark`.
        backend: `auto`, `jvm` or `delta-rs`.

    Returns:
        The backend now in use.

    Raises:
        UnknownValueError: for another `backend` value.
        InvalidArgumentError: `jvm` was asked for and the connector is not on the classpath.

    Example:
        >>> enable_delta(spark)
        'delta-rs'
    """
    if backend not in _CHOICES:
        raise UnknownValueError("backend", backend, _CHOICES)
    current = spark.conf.get(BACKEND_CONF, None)
    if current is not None and backend in ("auto", current):
        if current == "delta-rs":
            _remote_errors.install()  # this process may not be the one that enabled it
            _registration.follow_environment(spark)
        return cast(Backend, current)
    has_connector = jvm.is_available(spark)
    if backend == "jvm" and not has_connector:
        raise InvalidArgumentError(
            "backend",
            "'jvm' needs io.delta.sql.DeltaSparkSessionExtension, which this session cannot load",
            "Add the delta-spark JARs (spark.jars.packages=io.delta:delta-spark_2.13:<version>) "
            "or use backend 'auto' / 'delta-rs'.",
        )
    chosen: Backend = (
        "jvm" if backend == "jvm" or (backend == "auto" and has_connector) else "delta-rs"
    )
    if chosen == "delta-rs":
        _remote_errors.install()
        _registration.register(spark)
        if is_connect(spark):  # the server commits; its answers come back through this source
            _connect.register(spark)
        spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    if backend == "auto":
        where = "the Connect server's classpath" if is_connect(spark) else "the classpath"
        reason = f"the delta-spark connector is {'' if has_connector else 'not '}on {where}"
    else:
        reason = f"backend {backend!r} was requested"
    log.info("Delta backend: %s (%s)", chosen, reason)
    spark.conf.set(BACKEND_CONF, chosen)
    return chosen


def backend(spark: SparkSession) -> Backend:
    """The Delta backend of the session, choosing one (`auto`) if none was chosen yet."""
    return enable_delta(spark)


def write(
    df: DataFrame,
    path: str,
    *,
    mode: Mode = "append",
    app_id: str | None = None,
    txn_version: int | None = None,
    partition_by: Sequence[str] | None = None,
    merge_schema: bool = False,
    replace_where: Mapping[str, object] | None = None,
    optimize_write: bool | None = None,
    overwrite_schema: bool = False,
    dynamic_partitions: bool = False,
) -> WriteResult:
    """Write `df` to the Delta table at `path` as one commit, idempotently when asked.

    With `app_id` and `txn_version`, the write is Delta's idempotent write
    (`txnAppId`/`txnVersion`): if the table already holds a commit from `app_id` with a txn
    version >= `txn_version`, nothing is computed or written and the result says why. Delta
    skips such a replay *even when the data differs*; a new batch of data needs a new txn
    version.

    Args:
        df: the data.
        path: table location: a local path, a `file:` URI (mounted volumes included) or an
            object store URI (`s3://` ..., reached with `spark_flow.storage`'s settings).
        mode: `append` or `overwrite` (replaces the table's data in a new version).
        app_id: stable name of the writer, e.g. the job name.
        txn_version: the batch number (Delta's txnVersion); only increasing numbers commit.
        partition_by: partition columns when the table is created (Hive-style directories).
        merge_schema: add columns the table does not have yet.
        replace_where: with `mode="overwrite"`, replace only these partitions, e.g.
            `{"date": "2024-01-01"}` (Delta's replaceWhere on partition columns). Every row of
            `df` must fall into them; the rest of the table stays as it is. Values are compared
            as values of the column's type (`Decimal("1.5")` is the partition `1.50`); a
            zoneless TIMESTAMP is read in the session's time zone, as Spark reads it.
        optimize_write: rebalance the data before writing (Delta's optimized writes), so a
            small write makes one file per partition value rather than one per core. None
            takes the session's `spark.spark_flow.delta.optimizeWrite` (false unless a profile
            sets it). It costs a shuffle; on the jvm backend, Delta's own
            `spark.databricks.delta.optimizeWrite.enabled` applies instead.
        overwrite_schema: with `mode="overwrite"`, the data's schema replaces the table's
            (Delta's overwriteSchema): columns may be dropped, retyped or renamed. The
            partitioning stays the table's on the delta-rs backend (the data must keep its
            columns); the jvm backend takes the write's. Earlier versions keep their schema for
            time travel.
        dynamic_partitions: with `mode="overwrite"` on a partitioned table, replace only the
            partitions the data has rows in (Delta's dynamic partition overwrite, Spark's
            `partitionOverwriteMode=dynamic`); the others stay. A daily rerun replaces its days.

    Returns:
        What was committed, or why it was skipped.

    Raises:
        SchemaMismatchError: the data's columns or types do not fit the table, or it holds
            nulls in a column the table declares NOT NULL (found before the commit).
        InvalidArgumentError: `txn_version` without `app_id`, a negative one, a partitioning
            that differs from the table's, `replace_where` on non-partition columns, with
            None or a value that is no value of the column's type, or with rows outside the
            replaced partitions, an overwrite of an append-only table.
        UnsupportedDeltaFeatureError: on the delta-rs backend, a table whose writer features
            its commit does not honour (CHECK constraints, generated columns ...), or binary,
            array, map or struct partition columns.
        UnknownValueError: an unknown `mode`.
        StorageError: the store of `path` cannot be reached (scheme, credentials, bucket),
            found before any Spark job.

    Example:
        >>> write(df, "data/devices", app_id="devices-loader", txn_version=1).committed
        True
        >>> write(df, "data/devices", app_id="devices-loader", txn_version=1).committed
        False
    """
    request = WriteRequest(
        path=path,
        mode=mode,
        app_id=app_id,
        txn_version=txn_version,
        partition_by=None if partition_by is None else tuple(partition_by),
        merge_schema=merge_schema,
        replace_where=replace_where_texts(replace_where),
        optimize_write=_optimize_write(df.sparkSession, optimize_write),
        overwrite_schema=overwrite_schema,
        dynamic_partitions=dynamic_partitions,
        time_zone=df.sparkSession.conf.get(_read_spark.SESSION_TIME_ZONE, None),
    )
    if backend(df.sparkSession) == "jvm":
        return jvm.write(df, request)
    if is_connect(df.sparkSession):
        return _connect.write(df, request)
    return rs.write(df, request)


def routed_writes(spark: SparkSession) -> bool:
    """True where `write_routed` writes: the delta-rs backend on a classic session."""
    return backend(spark) == "delta-rs" and not is_connect(spark)


def write_routed(
    df: DataFrame,
    route: str,
    tables: Sequence[RoutedTable],
    *,
    app_id: str | None = None,
    txn_version: int | None = None,
) -> RoutedWrite:
    """Write `df`'s rows to several Delta tables in one Spark job, each by its `route` value.

    Each table's files hold exactly its `columns`; the rows are counted per route value as
    they are written (no other job). One commit per table, all at once, each with the same
    Delta transaction: a table that already holds `(app_id, txn_version)` is skipped (its rows
    are counted, not written), so a replay after a crash that let some commits land writes
    only what is missing. Delta skips such a replay *even when the data differs*.

    Args:
        df: the rows.
        route: the column whose value says which table a row goes to.
        tables: where rows go; a row whose route no table takes is counted, not written.
        app_id: stable name of the writer, the same for every table.
        txn_version: the batch number.

    Returns:
        Each table's write, and rows per route value (empty when every table was skipped).

    Raises:
        InvalidArgumentError: columns missing from `df`, a route value given to two tables,
            or a session `routed_writes` says no to (the jvm backend, Spark Connect): write
            each table with `write` there.
        SchemaMismatchError: a table's columns do not fit the existing table.

    Example:
        >>> tables = [RoutedTable("out/_rejected", ("reason", "raw"), ("bad",)),
        ...           RoutedTable("out", ("id", "name"), (None,))]
        >>> write_routed(df, "reason", tables, app_id="loader", txn_version=7).rows
        {None: 95, 'bad': 5}
    """
    if not routed_writes(df.sparkSession):
        where = "Spark Connect" if is_connect(df.sparkSession) else "the jvm backend"
        raise InvalidArgumentError(
            "df",
            f"a routed write needs the delta-rs backend on a classic session, got {where}",
            "Write each table with spark_flow.delta.write here.",
        )
    return _routed.write(df, route, tables, app_id=app_id, txn_version=txn_version)


def _optimize_write(spark: SparkSession, asked: bool | None) -> bool:
    if asked is not None:
        return asked
    return str(spark.conf.get(OPTIMIZE_WRITE_CONF, "false")).strip().lower() == "true"


def read(
    spark: SparkSession,
    path: str,
    *,
    version: int | None = None,
    timestamp: AsOf | None = None,
    filter: str | Column | None = None,
) -> DataFrame:
    """Read the Delta table at `path`: its latest version, or one from the past (time travel).

    On the delta-rs backend the log decides what is read: the files of the version, their
    partition values, column mapping (`name` and `id`), deletion vectors, the table's types;
    Spark scans the files (or, for stores Spark has no filesystem for, the `delta` data source
    reads them with Arrow). A table using a reader feature this backend does not handle is
    refused by name, never read wrong.

    Args:
        spark: the session.
        path: the table location.
        version: a table version (time travel); the latest when None.
        timestamp: instead of `version`, a point in time (Delta's `timestampAsOf`): the
            latest version committed at or before it. A `datetime`, a `date` or an ISO string
            (`"2024-01-31 10:00:00"`); without a zone it is in the session's time zone
            (`spark.sql.session.timeZone`), as Spark casts a string to a timestamp. A commit's
            time is its in-commit timestamp where the table keeps them, else its log file's.
        filter: keep only the rows matching it. A SQL predicate string also skips, before
            Spark scans, the files whose partition values or min/max/null-count statistics prove
            that no row matches; a Column filters the rows only.

    Returns:
        The table's rows in its logical schema.

    Raises:
        NotADeltaTableError: nothing at `path` is a Delta table.
        InvalidArgumentError: `version` is not one of the table's versions; both `version`
            and `timestamp`; `timestamp` before the table's earliest version or after its
            latest commit.
        InvalidDeltaLogError: the log breaks the Delta protocol, or names missing data files.
        UnsupportedDeltaFeatureError: the delta-rs reader does not handle a feature the table
            needs (its allow-list; the README's Delta section lists it).

    Example:
        >>> read(spark, "data/devices", filter="date = '2024-01-01' AND id > 100").count()
        42
    """
    if version is not None and (not isinstance(version, int) or version < 0):
        raise InvalidArgumentError(
            "version", f"expected an integer >= 0, got {version!r}", "Pass a table version."
        )
    when = None
    if timestamp is not None:
        if version is not None:
            raise InvalidArgumentError(
                "timestamp",
                f"a read is at one point in time, got version={version} and {timestamp=}",
                "Pass either the version or the timestamp.",
            )
        when = _time_travel.parse(
            timestamp, time_zone=spark.conf.get(_read_spark.SESSION_TIME_ZONE, None)
        )
    as_of = None if when is None else when.isoformat()
    if backend(spark) == "jvm":
        frame = jvm.read(spark, path, version, as_of)
    elif is_connect(spark):  # the server reads the log, through the `delta` data source there
        return _connect.read(spark, path, version=version, timestamp=as_of, filter=filter)
    else:
        if when is not None:
            version = _time_travel.version_at(path, when)
        return _read_spark.read(spark, path, version, filter)
    return frame if filter is None else frame.where(filter)


def table_info(path: str) -> TableInfo | None:
    """What the log of the Delta table at `path` says (version, schema, partitioning), or None.

    Reads only the log, with deltalake: no Spark session, no Spark job.

    Raises:
        InvalidArgumentError: `path` is a local file.
        InvalidDeltaLogError: the log breaks the Delta protocol.
        StorageError: the log cannot be read from this process (credentials, network, scheme).

    Example:
        >>> info = table_info("data/devices")
        >>> None if info is None else (info.version, info.partition_columns)
        (3, ('date',))
    """
    table = _log.open_table(path)
    return None if table is None else _log.info(path, table)


def transaction_version(path: str, app_id: str) -> int | None:
    """The last txn version that `app_id` committed to the Delta table at `path`, or None.

    Reads only the log (no Spark session).

    Raises:
        NotADeltaTableError: nothing at `path` is a Delta table.
        StorageError: the log cannot be read from this process.

    Example:
        >>> transaction_version("data/devices", "devices-loader")
        20240101
    """
    return _log.require_table(path).transaction_version(app_id)


def already_committed(
    path: str, *, app_id: str, txn_version: int, spark: SparkSession | None = None
) -> str | None:
    """Why `(app_id, txn_version)` is already in the log of the table at `path`, or None.

    A write of it would be skipped: `app_id` committed this txn version or a higher one. None
    also where no table exists yet. Reads only the log: in this process without `spark`;
    with a Spark Connect session on the delta-rs backend, on the server (one small Spark job),
    which reaches the table where this client may not.

    Raises:
        InvalidArgumentError: an empty `app_id`, or `txn_version` is not an integer >= 0.
        StorageError: the log cannot be read from this process (or from the server).

    Example:
        >>> already_committed("data/devices", app_id="devices-loader", txn_version=1)
        "txnAppId='devices-loader' already committed txnVersion=3 >= 1"
    """
    request = WriteRequest(path, app_id=app_id, txn_version=txn_version)
    if spark is not None and is_connect(spark) and backend(spark) == "delta-rs":
        return request.skip_reason(_connect.read_log(spark, path, app_id=app_id).txn_version)
    return _log.committed(_log.open_table(path), request)
