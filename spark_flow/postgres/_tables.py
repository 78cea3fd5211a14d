"""The tables of the postgres output: the target, the batch table, per-write staging tables.

Every statement the driver runs lives here; the executors' COPY is in `_copy`.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from spark_flow.errors import InvalidArgumentError
from spark_flow.postgres._types import TASK_COLUMN, PgColumn, check_table_columns

log = logging.getLogger("spark_flow.postgres")

BATCHES_TABLE = "spark_flow_batches"
STAGING_PREFIX = "spark_flow_stage_"
# First key of the advisory locks this module takes (the second is a table's oid or name hash).
LOCK_CLASS = 0x5F5F
_TABLE_NAME = re.compile(r"^(?:([a-z_][a-z0-9_]*)\.)?([a-z_][a-z0-9_]*)$")

Connection = psycopg.Connection[tuple[Any, ...]]


@dataclass(frozen=True)
class Table:
    """A schema-qualified table name."""

    schema: str
    name: str

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    def sibling(self, name: str) -> Table:
        return Table(self.schema, name)

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


def parse_table(path: str) -> tuple[str | None, str]:
    """`"devices"` or `"public.devices"` as `(schema or None, table)`.

    Raises:
        InvalidArgumentError: anything but one or two lower-case SQL names.
    """
    match = _TABLE_NAME.match(path) if isinstance(path, str) else None
    if match is None or len(match.group(2)) > 63 or len(match.group(1) or "") > 63:
        raise InvalidArgumentError(
            "path",
            f"the postgres output writes to a table named 'table' or 'schema.table', got {path!r}",
            "Use lower-case letters, digits and '_' (PostgreSQL folds unquoted names to lower "
            "case), at most 63 characters per name, e.g. 'public.devices'.",
        )
    return match.group(1), match.group(2)


def resolve(connection: Connection, schema: str | None, name: str) -> Table:
    """The table with its schema: the given one, or the connection's current schema."""
    if schema is None:
        row = connection.execute("SELECT current_schema()").fetchone()
        schema = None if row is None else row[0]
        if schema is None:
            raise InvalidArgumentError(
                "path",
                f"{name!r} has no schema and the connection's search_path names none that exists",
                "Qualify the table, e.g. 'public.devices'.",
            )
    return Table(schema, name)


def _relkind(connection: Connection, table: Table) -> str | None:
    row = connection.execute(
        "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s",
        (table.schema, table.name),
    ).fetchone()
    return None if row is None else str(row[0])


def committed(connection: Connection, table: Table, app_id: str, txn_version: int) -> str | None:
    """Why the batch is already in `table` (its row in the batch table), or None."""
    batches = table.sibling(BATCHES_TABLE)
    if _relkind(connection, batches) is None:
        return None
    row = connection.execute(
        sql.SQL(
            "SELECT committed_at, rows_written FROM {} "
            "WHERE target = %s AND app_id = %s AND txn_version = %s"
        ).format(batches.ident),
        (table.name, app_id, txn_version),
    ).fetchone()
    if row is None:
        return None
    committed_at: datetime = row[0]
    return (
        f"batch {txn_version} of {app_id!r} was already committed to {table} "
        f"at {committed_at.isoformat()} ({row[1]} rows; {batches})"
    )


def copy_statement(staging: Table, columns: Sequence[PgColumn]) -> sql.Composed:
    """The executors' COPY into `staging`: the columns in order, then the task attempt."""
    names = [sql.Identifier(c.name) for c in columns] + [sql.Identifier(TASK_COLUMN)]
    return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        staging.ident, sql.SQL(", ").join(names)
    )


def publish(
    connection: Connection,
    table: Table,
    staging: Table,
    columns: Sequence[PgColumn],
    *,
    tasks: Sequence[int],
    batch: tuple[str, int, int] | None,
    replace: Sequence[str] | None,
) -> str | None:
    """Move the staged rows of `tasks` into `table` in one transaction; None when committed.

    Args:
        batch: `(app_id, txn_version, rows)` to claim in the batch table first, or None.
        replace: None appends; `()` replaces every row of the table, column names replace
            the rows having the batch's values in them.

    Returns:
        None, or why nothing was committed: another writer holds the batch's key.
    """
    accepted = {"tasks": list(tasks)}
    lost: str | None = None
    with connection.transaction() as transaction:
        if batch is not None:
            lost = _claim(connection, table, *batch)
            if lost is not None:
                raise psycopg.Rollback(transaction)
        _create_if_absent(connection, table, _column_definitions(columns))
        check_existing(connection, table, columns)  # a racing creator may have won
        if replace is not None:
            # Self-exclusive, so concurrent overwrites take turns; readers are not blocked and
            # see the old rows until the commit.
            connection.execute(
                sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(table.ident)
            )
            connection.execute(_delete_replaced(table, staging, replace), accepted)
        names = sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)
        connection.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} WHERE {} = ANY(%(tasks)s)").format(
                table.ident, names, names, staging.ident, sql.Identifier(TASK_COLUMN)
            ),
            accepted,
        )
    return lost


def _claim(
    connection: Connection, table: Table, app_id: str, txn_version: int, rows: int
) -> str | None:
    """Insert the batch's key; None when ours, else why another writer holds it.

    A racing writer's uncommitted key makes this wait: if it commits we lose, if it rolls
    back we win.
    """
    batches = table.sibling(BATCHES_TABLE)
    _create_if_absent(
        connection,
        batches,
        sql.SQL(
            "target text NOT NULL, app_id text NOT NULL, txn_version bigint NOT NULL, "
            "rows_written bigint NOT NULL, committed_at timestamptz NOT NULL DEFAULT now(), "
            "PRIMARY KEY (target, app_id, txn_version)"
        ),
    )
    claimed = connection.execute(
        sql.SQL(
            "INSERT INTO {} (target, app_id, txn_version, rows_written) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING RETURNING 1"
        ).format(batches.ident),
        (table.name, app_id, txn_version, rows),
    ).fetchone()
    if claimed is not None:
        return None
    return committed(connection, table, app_id, txn_version) or (
        f"batch {txn_version} of {app_id!r} was committed to {table} by a concurrent writer"
    )


def _create_if_absent(connection: Connection, table: Table, definitions: sql.Composable) -> None:
    """Create `table` inside the caller's transaction unless it exists.

    CREATE TABLE IF NOT EXISTS alone is not safe against a concurrent creator (both pass the
    check, one fails on a catalog index), so creators take a lock on the name first.
    """
    if _relkind(connection, table) is not None:
        return
    connection.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_CLASS, str(table)))
    connection.execute(
        sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(table.ident, definitions)
    )
    log.info("created table %s", table)


def _column_definitions(columns: Sequence[PgColumn]) -> sql.Composable:
    return sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.pg_type)) for c in columns
    )


def check_existing(connection: Connection, table: Table, columns: Sequence[PgColumn]) -> None:
    """Refuse a table whose columns do not take the DataFrame's (nothing to check if absent)."""
    kind = _relkind(connection, table)
    if kind is None:
        return
    if kind not in ("r", "p"):  # ordinary or partitioned table
        raise InvalidArgumentError(
            "path",
            f"{table} exists but is not a table (pg_class.relkind {kind!r}: a view, a sequence?)",
            "Write to a table, or pick a name that is free.",
        )
    existing = connection.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
        "a.atthasdef OR a.attidentity <> '' "
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum",
        (table.schema, table.name),
    ).fetchall()
    check_table_columns(str(table), columns, [(str(n), str(t), bool(d)) for n, t, d in existing])


def _delete_replaced(table: Table, staging: Table, partition_by: Sequence[str]) -> sql.Composed:
    """DELETE the rows the batch replaces: all of them, or those of its partition values."""
    if not partition_by:
        return sql.SQL("DELETE FROM {}").format(table.ident)
    keys = sql.SQL(", ").join(sql.Identifier(c) for c in partition_by)
    # IS NOT DISTINCT FROM: a null partition value replaces the null partition too.
    match = sql.SQL(" AND ").join(
        sql.SQL("t.{0} IS NOT DISTINCT FROM p.{0}").format(sql.Identifier(c)) for c in partition_by
    )
    return sql.SQL(
        "DELETE FROM {} t USING (SELECT DISTINCT {} FROM {} WHERE {} = ANY(%(tasks)s)) p WHERE {}"
    ).format(table.ident, keys, staging.ident, sql.Identifier(TASK_COLUMN), match)


@contextmanager
def staging_table(
    connection: Connection, table: Table, columns: Sequence[PgColumn]
) -> Iterator[Table]:
    """An unlogged staging table of this write, dropped at the end.

    The driver's session holds an advisory lock on it while the write runs. Staging tables
    whose lock is free belong to writers that died; each write drops those first.
    """
    _drop_abandoned(connection, table.schema)
    staging = table.sibling(f"{STAGING_PREFIX}{uuid.uuid4().hex[:16]}")
    with connection.transaction():
        connection.execute(
            sql.SQL("CREATE UNLOGGED TABLE {} ({}, {} bigint NOT NULL)").format(
                staging.ident, _column_definitions(columns), sql.Identifier(TASK_COLUMN)
            )
        )
        # Taken before the table is visible to anyone, so no cleaner can see it unlocked.
        row = connection.execute(
            "SELECT %s::regclass::oid::int4", (staging.ident.as_string(connection),)
        ).fetchone()
        oid = 0 if row is None else int(row[0])
        connection.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_CLASS, oid))
    try:
        yield staging
    finally:
        try:
            connection.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(staging.ident))
            connection.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, oid))
        except psycopg.Error as exc:  # the error that got us here matters more
            log.warning("could not drop %s (the next write drops it): %s", staging, exc)


def _drop_abandoned(connection: Connection, schema: str) -> None:
    abandoned = connection.execute(
        "SELECT c.oid::int4, c.relname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind = 'r' AND starts_with(c.relname, %s)",
        (schema, STAGING_PREFIX),
    ).fetchall()
    for oid, name in abandoned:
        locked = connection.execute(
            "SELECT pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, oid)
        ).fetchone()
        if locked is None or not locked[0]:
            continue  # its writer is still at work
        try:
            connection.execute(
                sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(schema, name))
            )
            log.info("dropped %s.%s, left by a writer that died", schema, name)
        except psycopg.errors.InsufficientPrivilege:
            log.warning("%s.%s was left by a writer that died; its owner can drop it", schema, name)
        finally:
            connection.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, oid))
