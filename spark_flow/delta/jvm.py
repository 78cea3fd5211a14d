"""The delta-spark connector backend, used when its JARs are on the session's classpath.

Writes are plain `format("delta")` writes with `txnAppId`/`txnVersion`; the connector itself
enforces the transaction. The log is still read first (`_log`, through deltalake, no Spark job),
so a replay costs no computation on either backend, on every store deltalake reads.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from spark_flow.delta import _log
from spark_flow.delta._types import WriteRequest, WriteResult
from spark_flow.errors import StorageError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
# What a Connect server answers to format("delta") without the connector (see below).
_NOT_THE_CONNECTOR = ("DATA_SOURCE_NOT_FOUND", "PYTHON_DATA_SOURCE_ERROR")


def is_available(spark: SparkSession) -> bool:
    """True when the delta-spark connector classes can be loaded by this session."""
    jvm = getattr(spark, "_jvm", None)
    if jvm is None:
        return _server_has_connector(spark)
    try:
        loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
        jvm.java.lang.Class.forName(_EXTENSION, False, loader)
    except Exception:  # noqa: BLE001 - any Py4J failure means "not loadable"
        return False
    return True


def _server_has_connector(spark: SparkSession) -> bool:
    """Ask a Spark Connect server whether `format("delta")` resolves there.

    The classpath is the server's. Analysing a read of a path that cannot exist resolves the
    format and fails: with DATA_SOURCE_NOT_FOUND where no Delta source is, with a Python data
    source's error where only our `delta` source is registered (the connector's JVM source
    would win the name), with the connector's own error (no table there) where it is. No
    Spark job runs.
    """
    from pyspark.errors import PySparkException

    try:
        _ = spark.read.format("delta").load(f"/spark_flow_probe/{uuid.uuid4().hex}").schema
    except PySparkException as exc:
        found = exc.getCondition() not in _NOT_THE_CONNECTOR
    else:  # pragma: no cover - a table at a random path
        found = True
    log.info("the Spark Connect server %s the Delta connector", "has" if found else "lacks")
    return found


def write(df: DataFrame, request: WriteRequest) -> WriteResult:
    """Write through the connector; the txn options make a replay a no-op there too."""
    writer = df.write.format("delta").mode(request.mode)
    if request.app_id is not None:
        writer = writer.option("txnAppId", request.app_id).option("txnVersion", request.txn_version)
    if request.merge_schema:
        writer = writer.option("mergeSchema", "true")
    if request.overwrite_schema:
        writer = writer.option("overwriteSchema", "true")
    if request.dynamic_partitions:
        writer = writer.option("partitionOverwriteMode", "dynamic")
    if request.replace_where:
        predicate = " AND ".join(f"`{c}` = '{v}'" for c, v in request.replace_where)
        writer = writer.option("replaceWhere", predicate)
    if request.partition_by:
        writer = writer.partitionBy(*request.partition_by)
    try:
        before = _log.open_table(request.path)
    except StorageError as exc:
        # The session may reach the store with credentials this process lacks (a Hadoop conf,
        # a catalog's vended credentials): the connector still enforces the txn, unchecked here.
        log.warning("writing %s without checking its log first: %s", request.path, exc)
        writer.save(request.path)
        return WriteResult(committed=True, table_version=None)
    skipped = _log.skipped_write(before, request)
    if skipped:
        return skipped
    writer.save(request.path)
    table = _log.open_table(request.path)
    if table is None or (before is not None and table.version() == before.version()):
        return WriteResult(
            committed=False,
            table_version=None if table is None else table.version(),
            skipped_reason="the delta-spark connector skipped the write (txn already committed)",
        )
    metrics = table.history(limit=1)[0].get("operationMetrics", {})
    return WriteResult(
        committed=True,
        table_version=table.version(),
        rows_written=int(metrics.get("numOutputRows", 0)),
    )


def read(
    spark: SparkSession, path: str, version: int | None = None, timestamp: str | None = None
) -> DataFrame:
    """Read through the connector, time-travelling with `versionAsOf` or `timestampAsOf`."""
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    if timestamp is not None:
        reader = reader.option("timestampAsOf", timestamp)
    return reader.load(path)
