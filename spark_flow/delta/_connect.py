"""The delta-rs backend on a Spark Connect session: the server plans, writes and commits.

A Connect client may not see the table's files at all (a remote cluster, Databricks), so the
commit runs where the table is visible, in the server's Python processes:

- `write` is a `format("delta")` write: the `delta` data source's `writer()` reads the log and
  plans in the server's planner process, Python workers write the files, and its `commit()`
  commits on the server's driver. Spark hands Python data sources neither `partitionBy` nor
  `replaceWhere`, so they travel as the internal options `spark_flow.partitionBy` (a JSON list)
  and `spark_flow.replaceWhere` (a JSON object); `spark_flow.writeId` names the commit.
- What happened comes back through a second, read-only data source, `spark_flow_delta_log`:
  one row with the table's version, the app's txn version, and the commit carrying a write id
  (its version, rows and files). It reads the log where the table is visible, too.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from pyspark.sql.datasource import DataSource, DataSourceReader

from spark_flow import storage
from spark_flow.delta import _log
from spark_flow.delta._read_spark import FILTER_OPTION, SESSION_TIME_ZONE
from spark_flow.delta._remote_errors import as_ours, noting
from spark_flow.delta._source_options import (
    PARTITION_BY_OPTION,
    PARTITION_OVERWRITE_OPTION,
    REPLACE_WHERE_OPTION,
    TIME_ZONE_OPTION,
)
from spark_flow.delta._types import WriteRequest, WriteResult
from spark_flow.errors import ConnectServerError, StorageError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)

LOG_SOURCE = "spark_flow_delta_log"
WRITE_ID_OPTION = "spark_flow.writeId"
_SERVER = (
    "the Spark Connect server (its Python processes, with the environment it was started with, "
    "not this client's)"
)
_LOG_SCHEMA = (
    "table_version BIGINT, txn_version BIGINT, commit_version BIGINT, rows BIGINT, "
    "files ARRAY<STRING>"
)


@dataclass(frozen=True)
class LogAnswer:
    """What the server read in a table's log (None: no table, no txn, no such commit)."""

    table_version: int | None
    txn_version: int | None = None
    commit_version: int | None = None
    rows: int = 0
    files: tuple[str, ...] = ()


class DeltaLogSource(DataSource):
    """`spark_flow_delta_log`: one row about a table's log, read on the server's driver.

    Options: `path`; `appId` (its txn version); `writeId` and `after` (the first commit after
    table version `after` whose commit info carries that write id).
    """

    @classmethod
    def name(cls) -> str:
        return LOG_SOURCE

    def schema(self) -> str:
        return _LOG_SCHEMA

    @noting
    def reader(self, schema: Any) -> DataSourceReader:
        # Read here, in the planner process on the server's driver, not in an executor.
        return _AnswerReader(_answer(self.options))


class _AnswerReader(DataSourceReader):
    def __init__(self, answer: LogAnswer) -> None:
        self.answer = answer

    def read(self, partition: Any) -> Iterator[tuple[Any, ...]]:
        a = self.answer
        yield (a.table_version, a.txn_version, a.commit_version, a.rows, list(a.files))


def _answer(options: Any) -> LogAnswer:
    path = options.get("path")
    table = _log.open_table(path) if path else None
    if table is None:
        return LogAnswer(None)
    app_id, write_id = options.get("appId"), options.get("writeId")
    txn_version = table.transaction_version(app_id) if app_id else None
    found = LogAnswer(table.version(), txn_version)
    if write_id:
        after = options.get("after")
        found = _commit_of(path, write_id, -1 if after is None else int(after), found)
    return found


def _commit_of(path: str, write_id: str, after: int, found: LogAnswer) -> LogAnswer:
    """`found` with the first commit after version `after` whose commit info names `write_id`.

    Commit files are read one by one: a concurrent commit may land before or after ours.
    """
    logs = storage.join(storage.folder(path), "_delta_log")
    version = after + 1
    while (text := storage.read_text(storage.join(logs, f"{version:020d}.json"))) is not None:
        actions = [json.loads(line) for line in text.splitlines() if line.strip()]
        info: dict[str, Any] = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
        if info.get(WRITE_ID_OPTION) == write_id:
            adds = [a["add"] for a in actions if "add" in a]
            return LogAnswer(
                table_version=found.table_version,
                txn_version=found.txn_version,
                commit_version=version,
                rows=sum(json.loads(add.get("stats") or "{}").get("numRecords", 0) for add in adds),
                files=tuple(unquote(add["path"]) for add in adds),
            )
        version += 1
    return found


def register(spark: SparkSession) -> None:
    """Register `spark_flow_delta_log` and check the server's Python workers can run it.

    Raises:
        ConnectServerError: the server's Python workers cannot import spark_flow.
    """
    spark.dataSource.register(DeltaLogSource)
    read_log(spark, "")


def read_log(
    spark: SparkSession,
    path: str,
    *,
    app_id: str | None = None,
    write_id: str | None = None,
    after: int | None = None,
) -> LogAnswer:
    """Ask the server what the log of the table at `path` says (one small Spark job)."""
    location = storage.absolute(path) if path else path  # see read(); "" asks about no table
    reader = spark.read.format(LOG_SOURCE).option("path", location)
    for key, value in (("appId", app_id), ("writeId", write_id), ("after", after)):
        if value is not None:
            reader = reader.option(key, str(value))
    with on_server():
        (row,) = reader.load().collect()
    return LogAnswer(
        row.table_version, row.txn_version, row.commit_version, row.rows, tuple(row.files)
    )


def write(df: DataFrame, request: WriteRequest) -> WriteResult:
    """Write `df` through the server's `delta` data source; see the module docstring."""
    spark = df.sparkSession
    request = replace(request, path=storage.absolute(request.path))  # see read()
    before = read_log(spark, request.path, app_id=request.app_id)
    reason = request.skip_reason(before.txn_version)
    if reason is not None:
        log.info("skipping write to %s: %s", request.path, reason)
        return WriteResult(False, before.table_version, skipped_reason=reason)
    write_id = uuid.uuid4().hex
    if request.optimize_write:  # as rs.write does: the hint is plain DataFrame API
        df = df.hint("rebalance", *(request.partition_by or ()))
    writer = df.write.format("delta").mode(request.mode).option(WRITE_ID_OPTION, write_id)
    if request.app_id is not None:
        writer = writer.option("txnAppId", request.app_id)
        writer = writer.option("txnVersion", str(request.txn_version))
    if request.merge_schema:
        writer = writer.option("mergeSchema", "true")
    if request.overwrite_schema:
        writer = writer.option("overwriteSchema", "true")
    if request.dynamic_partitions:
        writer = writer.option(PARTITION_OVERWRITE_OPTION, "dynamic")
    if request.partition_by is not None:
        writer = writer.option(PARTITION_BY_OPTION, json.dumps(list(request.partition_by)))
    if request.replace_where is not None:
        writer = writer.option(REPLACE_WHERE_OPTION, json.dumps(dict(request.replace_where)))
        if request.time_zone is not None:
            writer = writer.option(TIME_ZONE_OPTION, request.time_zone)
    with on_server():
        writer.save(request.path)
    after = read_log(
        spark, request.path, app_id=request.app_id, write_id=write_id, after=before.table_version
    )
    if after.commit_version is None:  # the server's data source found the txn committed
        reason = request.skip_reason(after.txn_version) or "the server committed nothing"
        log.info("skipped write to %s on the server: %s", request.path, reason)
        return WriteResult(False, after.table_version, skipped_reason=reason)
    log.info("the server committed %s version %s", request.path, after.commit_version)
    return WriteResult(True, after.commit_version, rows_written=after.rows, files=after.files)


def read(
    spark: SparkSession,
    path: str,
    *,
    version: int | None,
    timestamp: str | None,
    filter: str | Column | None,
) -> DataFrame:
    """`format("delta")` on the server, filtered, and analysed at once: a table our data source
    refuses is refused here, with our typed error, and a filter Spark cannot resolve with
    Spark's, as a classic session analyses a read as it is built. The server skips the files
    whose partition values or statistics prove that no row matches a SQL `filter`.

    A local `path` is made absolute here: it is the client's, and the server's Python workers
    run in a session folder of Spark's (deleted with the session), where a relative path would
    find no table, or write one nobody finds again.
    """
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    if timestamp is not None:
        reader = reader.option("timestampAsOf", timestamp)
    if isinstance(filter, str):  # its zoneless timestamps are in the session's zone, as Spark's
        reader = reader.option(FILTER_OPTION, filter)
        reader = reader.option(TIME_ZONE_OPTION, spark.conf.get(SESSION_TIME_ZONE))
    frame = reader.load(storage.absolute(path))
    if filter is not None:
        frame = frame.where(filter)
    with on_server():
        frame.schema  # noqa: B018  (the analysis is the point)
    return frame


@contextmanager
def on_server() -> Iterator[None]:
    """Raise the errors of ours the server raised as themselves (a store it cannot reach is the
    server's to fix, not this client's), and rephrase a server whose Python workers cannot
    import spark_flow: say what to install."""
    from pyspark.errors import PySparkException

    try:
        with as_ours():
            yield
    except StorageError as exc:  # the server's Python processes could not reach the store
        raise StorageError(exc.path, exc.action, exc.cause, _SERVER) from exc
    except PySparkException as exc:
        if "No module named 'spark_flow" not in str(exc):  # the package or one of its modules
            raise
        raise ConnectServerError(
            "this session's server",
            "its Python workers cannot import spark_flow (ModuleNotFoundError), and "
            "spark_flow's Delta data sources run there",
            "Install spark-flow, the version this client runs, into the Python the server "
            "starts its workers with (its PYSPARK_PYTHON)",
        ) from exc
