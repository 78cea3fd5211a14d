"""`writeStream.format("delta")` on the delta-rs backend: one idempotent commit per micro-batch.

Each micro-batch is a Delta transaction whose app id is the query's id (the one Spark keeps
in `<checkpointLocation>/metadata` for the query's whole life) and whose txn version is the
batch id, exactly as the delta-spark sink commits it. Spark replays a batch whose commit landed
but whose checkpoint entry did not (a crash between the two): the replay finds its transaction
in the log, removes the files it wrote and commits nothing, so no row is written twice. A new
checkpoint is a new query with a new id, so a stream started over writes its batches again;
an app id taken from the checkpoint's location skipped them all in silence.

Tasks write their files straight into the table (uncommitted files are invisible to readers);
the batch's commit adds exactly the files the tasks name, or removes them when it skips or fails.

Spark passes a Python data source neither `writeStream.partitionBy(...)` nor the session conf
`spark.sql.streaming.checkpointLocation`: a stream creating a partitioned table says so as an
option (`.option("partitionBy", "day,region")`; without it the table is created unpartitioned,
as a stream without `partitionBy` creates it), and a query whose checkpoint comes from the
session conf is known by its name (its metadata file cannot be found without that conf).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa
from pyspark.sql.datasource import DataSourceStreamArrowWriter, WriterCommitMessage
from pyspark.sql.types import StructType

from spark_flow import storage
from spark_flow.delta import _log, rs
from spark_flow.delta._files import WrittenFile
from spark_flow.delta._remote_errors import noting
from spark_flow.delta._types import WriteRequest
from spark_flow.errors import InvalidArgumentError, UnsupportedDeltaFeatureError

log = logging.getLogger(__name__)

APP_ID_PREFIX = "spark_flow.stream:"
"""Before the name of a query known by its name alone: the txnAppId of its micro-batches."""
PARTITION_BY_OPTION = "partitionBy"
"""A stream's partition columns, comma-separated (`day,region`; empty for none)."""


@dataclass(frozen=True)
class Batch(WriterCommitMessage):
    """The files one task of a micro-batch wrote into the table."""

    files: list[WrittenFile] = field(default_factory=list)


def stream_app_id(options: Any) -> str:
    """The app id of the query writing with `options`: its id, else its name.

    Raises:
        InvalidArgumentError: a checkpoint location without the query's metadata file (a
            location this process does not see).
        UnsupportedDeltaFeatureError: neither is known, so a restart could not be told from
            another query and a replayed batch could be written twice.
    """
    checkpoint = options.get("checkpointLocation")
    if checkpoint:
        return _query_id(str(checkpoint))
    location = options.get("queryName")
    if not location:
        raise UnsupportedDeltaFeatureError(
            "a stream with neither a checkpointLocation option nor a query name (a location "
            "set only in the session conf spark.sql.streaming.checkpointLocation does not reach "
            "a Python data source, and below it Spark gives an unnamed query a new folder at "
            "each start, so its restarts could not be told apart from other queries)",
            "Name the query with .queryName(<name>) (its checkpoint is then <that location>/"
            "<name>) or pass .option('checkpointLocation', <folder>) to writeStream: it names "
            "the query's Delta transactions, which make a replayed micro-batch a no-op.",
        )
    return APP_ID_PREFIX + str(location)


def _query_id(checkpoint: str) -> str:
    """The query id Spark wrote into the checkpoint as the query started (before planning its
    sink), kept across restarts: delta-spark's sink commits its batches under this id."""
    metadata = storage.join(checkpoint, "metadata")
    text = storage.read_text(metadata)
    try:
        query_id = json.loads(text)["id"] if text is not None else None
    except (ValueError, TypeError, KeyError):
        query_id = None
    if not isinstance(query_id, str) or not query_id:
        found = "no such file" if text is None else f"{text[:80]!r}"
        raise InvalidArgumentError(
            "checkpointLocation",
            f"the query's id in {metadata!r}, which Spark writes as the query starts, "
            f"found {found}",
            "Give the query an absolute checkpoint location (or a URI) that the driver's Python "
            "processes see as Spark does (a local or mounted folder, or a store), or use the "
            "jvm backend.",
        )
    return query_id


def stream_partitioning(options: Any) -> tuple[str, ...] | None:
    """The partition columns the stream's `partitionBy` option declares; None if it has none."""
    declared = options.get(PARTITION_BY_OPTION)
    if declared is None:
        return None
    return tuple(name.strip() for name in str(declared).split(",") if name.strip())


class StreamSink(DataSourceStreamArrowWriter):
    """Writes each micro-batch's files in place; commits them as one Delta transaction."""

    def __init__(self, request: WriteRequest, schema: StructType) -> None:
        if request.app_id is None:
            raise InvalidArgumentError("app_id", "a stream's batches need one", "Name the query.")
        self.request = request
        self.schema = schema
        # The table as the query starts: where the tasks write, and how they partition.
        planned = rs.plan_write(replace(request, app_id=None, txn_version=None), schema)
        if not isinstance(planned, rs.WritePlan):  # pragma: no cover - nothing skips without txn
            raise AssertionError(planned)
        self.layout = planned

    @noting
    def write(self, iterator: Iterator[pa.RecordBatch]) -> WriterCommitMessage:
        return Batch(rs.file_writer(self.layout, self.layout.root).write(iterator))

    @noting
    def commit(self, messages: list[WriterCommitMessage | None], batchId: int) -> None:
        files = _files(messages)
        request = replace(self.request, txn_version=batchId)
        plan = rs.plan_write(request, self.schema)
        if not isinstance(plan, rs.WritePlan):
            log.info("micro-batch %s of %s: %s; its files removed", batchId, request.app_id,
                     plan.skipped_reason)  # fmt: skip
            storage.delete_files(self.layout.root, [file.path for file in files])
            _check_replay(request, batchId)
            return
        if plan.partition_by != self.layout.partition_by:
            storage.delete_files(self.layout.root, [file.path for file in files])
            raise InvalidArgumentError(
                "partitionBy",
                f"the table at {request.path!r} is now partitioned by {plan.partition_by}, "
                f"its files were written for {self.layout.partition_by}",
                "Restart the query: it lays its files out as the table is then.",
            )
        rs.commit_written(plan, files, written_by=self.layout)  # a mapping changed: refused

    def abort(self, messages: list[WriterCommitMessage | None], batchId: int) -> None:
        storage.delete_files(self.layout.root, [file.path for file in _files(messages)])


def _check_replay(request: WriteRequest, batch_id: int) -> None:
    """Spark replays only a query's last micro-batch: a table holding a later one of this app
    id means a query started over under a name already used (its checkpoint deleted), whose
    batches would all be skipped without a row written.

    Raises:
        InvalidArgumentError: the table holds a later micro-batch of the app id.
    """
    table = _log.open_table(request.path)
    last = (
        None
        if table is None or request.app_id is None
        else table.transaction_version(request.app_id)
    )
    if last is not None and last > batch_id:
        raise InvalidArgumentError(
            "queryName",
            f"micro-batch {batch_id} of {request.app_id!r}, whose table {request.path!r} holds "
            f"its micro-batch {last}: the query was started over from a new checkpoint, and "
            "every micro-batch up to that one would be skipped without a row written",
            "Give a query started over a new name (or its own checkpointLocation option, whose "
            "new query id is a new app id), or restart it from the checkpoint it wrote with.",
        )


def _files(messages: list[WriterCommitMessage | None]) -> list[WrittenFile]:
    return [file for m in messages if isinstance(m, Batch) for file in m.files]
