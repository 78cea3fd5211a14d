"""`PostgresOutput`: executors COPY into a staging table, one driver transaction publishes."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, get_args

from spark_flow.delta import Mode, WriteResult, check_txn_version
from spark_flow.errors import InvalidArgumentError, UnknownValueError
from spark_flow.postgres import _tables as tables
from spark_flow.postgres._copy import RESULT_SCHEMA, CopyFunction, copy_partitions
from spark_flow.postgres._settings import PostgresSettings, ServerParams
from spark_flow.postgres._types import PgColumn, columns_of

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger("spark_flow.postgres")


@dataclass(frozen=True, kw_only=True)
class PostgresOutput:
    """Writes each batch to a PostgreSQL table exactly once, visible all at once or not at all.

    Executors COPY their partitions into an unlogged staging table, each task in a transaction
    of its own (no row passes through the driver); then one transaction on the driver records
    `(table, app_id, txn_version)` under a unique key in `<schema>.spark_flow_batches` and moves
    the rows of the task attempts Spark accepted into the table. A replay, or a second writer
    racing with the same batch, finds the key and commits nothing.

    Unlike Delta's txn version, the batch key is not a watermark: batches commit in any order,
    each once. A replay with the same key is skipped *even when its data differs*.

    The checks before Spark, the copy and the publish share one write's staging table and
    accepted attempts, so they stay together in this class, a little over the usual length.

    Attributes:
        settings: where to connect; default `PostgresSettings.configured()` at write time
            (`$SPARK_FLOW_POSTGRES_DSN`, else the profile's `[postgres]` table).
        mode: `append`, or `overwrite`: the table's rows are replaced by the batch's in the
            same transaction (readers see the old rows until it commits, never none).
        partition_by: with `overwrite`, replace only the rows whose values in these columns
            occur in the batch (the batch's dates, say) and keep the others.
        max_connections: at most this many tasks copy at once; the DataFrame is coalesced to
            as many partitions. Default: one connection per partition.

    Example:
        >>> output = PostgresOutput(mode="overwrite", partition_by=("date",))
        >>> output.write(df, "public.visits", app_id="visits_cube", txn_version=20240101)
    """

    settings: PostgresSettings | None = None
    mode: Mode = "append"
    partition_by: Sequence[str] = ()
    max_connections: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in get_args(Mode):
            raise UnknownValueError("mode", self.mode, get_args(Mode))
        object.__setattr__(self, "partition_by", tuple(self.partition_by))
        if self.partition_by and self.mode != "overwrite":
            raise InvalidArgumentError(
                "partition_by",
                f"it replaces the batch's partition values, which mode={self.mode!r} does not",
                "Pass mode='overwrite' with it, or leave it out to append.",
            )
        limit = self.max_connections
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise InvalidArgumentError(
                "max_connections", f"expected an integer >= 1, got {limit!r}", "Pass a count."
            )

    def written(self, path: str, *, app_id: str, txn_version: int | None) -> str | None:
        """Why batch `txn_version` of `app_id` is already in table `path`, or None."""
        _check_batch(app_id, txn_version)
        schema, name = tables.parse_table(path)
        if txn_version is None:
            return None
        with self._connect() as connection:
            table = tables.resolve(connection, schema, name)
            return tables.committed(connection, table, app_id, txn_version)

    def write(
        self, df: DataFrame, path: str, *, app_id: str, txn_version: int | None
    ) -> WriteResult:
        """Write `df` to table `path` as one transaction, once per `(app_id, txn_version)`.

        A table that does not exist is created from the DataFrame's schema (in the publishing
        transaction). What can fail before rows move fails before any Spark job: the settings,
        the connection, the column types, the table's columns.

        Args:
            df: the batch.
            path: the table, lower-case `table` or `schema.table`; without a schema, the
                connection's `current_schema()` (usually `public`).
            app_id: the writing job's stable name.
            txn_version: the batch number; None writes without a batch record, so a rerun
                writes again.

        Returns:
            What was committed, or why it was skipped (`table_version` is always None).

        Raises:
            PostgresConnectionError: the server does not answer or refuses the login.
            SchemaMismatchError: the table exists with other columns or types.
            InvalidArgumentError: a table name, column or column type it cannot write.
        """
        _check_batch(app_id, txn_version)
        schema, name = tables.parse_table(path)
        columns = columns_of(df.schema)
        missing = [c for c in self.partition_by if c not in df.columns]
        if missing:
            raise InvalidArgumentError(
                "partition_by",
                f"columns {missing} are not in the DataFrame",
                f"Name columns of the batch: {df.columns}.",
            )
        with self._connect() as connection:
            table = tables.resolve(connection, schema, name)
            if txn_version is not None:
                reason = tables.committed(connection, table, app_id, txn_version)
                if reason is not None:
                    log.info("skipping %s: %s", table, reason)
                    return WriteResult(committed=False, table_version=None, skipped_reason=reason)
            else:
                log.info("writing to %s without a txn version: a rerun writes again", table)
            tables.check_existing(connection, table, columns)
            with tables.staging_table(connection, table, columns) as staging:
                started = time.perf_counter()
                copy = copy_partitions(
                    ServerParams.of(connection),
                    tables.copy_statement(staging, columns).as_string(connection),
                )
                tasks = self._copy(df, columns, copy, f"postgres: copy into {staging}")
                copied = time.perf_counter() - started
                rows = sum(tasks.values())
                lost = tables.publish(
                    connection,
                    table,
                    staging,
                    columns,
                    tasks=list(tasks),
                    batch=None if txn_version is None else (app_id, txn_version, rows),
                    replace=self.partition_by if self.mode == "overwrite" else None,
                )
                published = time.perf_counter() - started - copied
        timing = {"copy_seconds": copied, "publish_seconds": published, "tasks": len(tasks)}
        if lost is not None:
            log.info("%s: nothing committed, %s", table, lost, extra=timing)
            return WriteResult(committed=False, table_version=None, skipped_reason=lost)
        log.info(
            "%s: committed %d rows in %.2fs (copy %.2fs in %d tasks, publish %.3fs)",
            table,
            rows,
            copied + published,
            copied,
            len(tasks),
            published,
            extra=timing,
        )
        return WriteResult(committed=True, table_version=None, rows_written=rows)

    def _connect(self) -> tables.Connection:
        return (self.settings or PostgresSettings.configured()).connect()

    def _copy(
        self, df: DataFrame, columns: Sequence[PgColumn], copy: CopyFunction, description: str
    ) -> dict[int, int]:
        """Run the Spark job that copies every partition; `{accepted task attempt: rows}`."""
        from spark_flow.session import job_description

        prepared = df.select(*(c.expression() for c in columns))
        if self.max_connections is not None:
            prepared = prepared.coalesce(self.max_connections)
        with job_description(df.sparkSession, description):
            # collect() keeps one result per partition: the attempt Spark accepted.
            results = prepared.mapInArrow(copy, RESULT_SCHEMA).collect()
        return {int(row["task"]): int(row["rows"]) for row in results}


def _check_batch(app_id: str, txn_version: int | None) -> None:
    if not isinstance(app_id, str) or not app_id.strip():
        raise InvalidArgumentError("app_id", f"expected a name, got {app_id!r}", "Name the job.")
    # The batch table's column is a bigint, as Delta's txn version is a long: one bound for
    # every output, refused here rather than by the server after Spark copied the rows.
    if txn_version is not None:
        check_txn_version(txn_version)
