"""The executors' half of the postgres output: each task COPYs its partition into staging.

A task copies in one transaction of its own and commits only after its last row, so a task
killed mid-COPY leaves nothing behind. Every row it copies carries the task's attempt id: a
retried or speculative attempt of the same partition copies again under another id, and the
driver moves only the attempts Spark accepted, so a partition counts once however often it ran.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from functools import partial

import pyarrow as pa
from pyarrow import csv

from spark_flow.errors import InvalidArgumentError
from spark_flow.postgres._settings import ServerParams

RESULT_SCHEMA = "task long, rows long"
# Null is an unquoted empty field; every other value is quoted, so an empty string stays one.
_CSV = csv.WriteOptions(include_header=False, quoting_style="all_valid")


CopyFunction = Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]


def copy_partitions(server: ServerParams, copy_sql: str) -> CopyFunction:
    """A `mapInArrow` function: copy the partition, yield one row `(task, rows)`."""
    return partial(_copy_partition, server, copy_sql)


def _copy_partition(
    server: ServerParams, copy_sql: str, batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    from pyspark import TaskContext

    context = TaskContext.get()
    if context is None:
        raise InvalidArgumentError(
            "copy_partitions", "it was called outside a Spark task", "Pass it to mapInArrow."
        )
    task = context.taskAttemptId()
    rows = copy_batches(server, copy_sql, task, batches)
    yield pa.RecordBatch.from_pydict(
        {"task": [task], "rows": [rows]},
        schema=pa.schema([("task", pa.int64()), ("rows", pa.int64())]),
    )


def copy_batches(
    server: ServerParams, copy_sql: str, task: int, batches: Iterator[pa.RecordBatch]
) -> int:
    """COPY `batches`, each row tagged with `task`, in one transaction; the rows copied.

    An empty partition opens no connection.
    """
    first = next(batches, None)
    if first is None:
        return 0
    rows = 0
    # Leaving the connection's block commits; an exception (the input failing, the worker
    # being interrupted) aborts the COPY and rolls the transaction back.
    with (
        server.connect() as connection,
        connection.cursor() as cursor,
        cursor.copy(copy_sql) as copy,
    ):
        for batch in itertools.chain([first], batches):
            if batch.num_rows == 0:
                continue
            tagged = batch.append_column(
                "task", pa.repeat(pa.scalar(task, pa.int64()), batch.num_rows)
            )
            sink = pa.BufferOutputStream()
            csv.write_csv(tagged, sink, write_options=_CSV)
            copy.write(memoryview(sink.getvalue()))
            rows += batch.num_rows
    return rows
