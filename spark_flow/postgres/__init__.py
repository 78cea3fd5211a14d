"""PostgreSQL as an output: each batch written exactly once, visible all at once or not at all.

The chapter's pipelines end in a database as often as in files: the Local Sequencer loads the
devices into a table and exposes it, Parallel Split and Exclusive Choice pick output stores.
`output_writer("postgres")` is that output for Spark, without a JDBC driver JAR:

- executors stream their partitions into an unlogged staging table with `COPY` (psycopg), each
  task in its own transaction, every row tagged with the task attempt that copied it;
- one transaction on the driver records `(table, app_id, txn_version)` under a unique key in
  `<schema>.spark_flow_batches` and moves the rows of the attempts Spark accepted into the
  table (creating it from the DataFrame's schema when absent), so a task retry, a speculative
  copy, a replay or a racing writer of the same batch never duplicates a row;
- `mode="overwrite"` replaces the table's rows (or, with `partition_by`, those of the batch's
  partition values) in that same transaction: build, then swap.

Connection settings come from `PostgresSettings`: `$SPARK_FLOW_POSTGRES_DSN`, else the
profile's `[postgres]` table, else libpq's defaults; passwords from `$PGPASSWORD` or `~/.pgpass`.

    from spark_flow.outputs import output_writer

    output_writer("postgres").write(devices, "public.devices", app_id="loader", txn_version=7)
"""

from __future__ import annotations

from importlib.util import find_spec

from spark_flow.errors import MissingDependencyError

if find_spec("psycopg") is None:  # before the imports below fail with a bare ImportError
    raise MissingDependencyError("the postgres output", "psycopg", "postgres")

from spark_flow.postgres._settings import DSN_ENV, PostgresSettings
from spark_flow.postgres._tables import BATCHES_TABLE
from spark_flow.postgres._writer import PostgresOutput

__all__ = ["BATCHES_TABLE", "DSN_ENV", "PostgresOutput", "PostgresSettings"]
