"""A Python data source named `delta`, for sessions without the delta-spark connector.

It keeps existing code working unchanged on the delta-rs backend:

    df.write.format("delta").mode("append").option("txnAppId", "a").option("txnVersion", 1).save(p)
    spark.read.format("delta").option("versionAsOf", 3).load(p)

Options honoured: `txnAppId`, `txnVersion`, `mergeSchema`, `versionAsOf`. Reads follow the
log's plan (`_read`): column mapping, deletion vectors, partition values from the log; the
`spark_flow.filter` option (a SQL predicate, set by `delta.read(..., filter=)`) skips files.
Spark gives Python data sources only `append` and `overwrite`, and never passes them
`partitionBy`; partitioned writes go through `spark_flow.delta.write(df, path,
partition_by=[...])`, which is also the faster path: there Spark's own Parquet writer does the
work, here Python workers do.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql.datasource import (
    DataSource,
    DataSourceArrowWriter,
    DataSourceReader,
    InputPartition,
    WriterCommitMessage,
)
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import StructType

from spark_flow.delta import _read, _read_arrow, _read_spark, rs
from spark_flow.delta._read import PlannedFile
from spark_flow.delta._types import WriteRequest, WriteResult
from spark_flow.errors import InvalidArgumentError, UnsupportedDeltaFeatureError

PARTITION_BY_HINT = (
    "Spark does not pass DataFrameWriter.partitionBy to Python data sources; write partitioned "
    "tables with spark_flow.delta.write(df, path, partition_by=[...])."
)


def _path(options: Any) -> str:
    path = options.get("path")
    if not path:
        raise InvalidArgumentError(
            "path", "format('delta') needs a table location", "Call .load(path) / .save(path)."
        )
    return str(path)


def _int_option(options: Any, name: str) -> int | None:
    raw = options.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidArgumentError(
            name, f"expected an integer, got {raw!r}", f"Pass .option('{name}', <number>)."
        ) from None


class DeltaDataSource(DataSource):
    """`format("delta")` backed by delta-rs; see the module docstring."""

    @classmethod
    def name(cls) -> str:
        return "delta"

    def schema(self) -> StructType:
        return _read.logical_schema(_path(self.options), _int_option(self.options, "versionAsOf"))

    def reader(self, schema: StructType) -> DataSourceReader:
        return _Reader(
            _path(self.options),
            _int_option(self.options, "versionAsOf"),
            self.options.get(_read_spark.FILTER_OPTION),
            schema,
        )

    def writer(self, schema: StructType, overwrite: bool) -> _Writer:
        if self.options.get("partitionBy"):  # a user trying the option form of partitionBy
            raise UnsupportedDeltaFeatureError(
                "partitionBy with format('delta')", PARTITION_BY_HINT
            )
        request = WriteRequest(
            path=_path(self.options),
            mode="overwrite" if overwrite else "append",
            app_id=self.options.get("txnAppId"),
            txn_version=_int_option(self.options, "txnVersion"),
            merge_schema=str(self.options.get("mergeSchema", "false")).lower() == "true",
        )
        return _Writer(rs.plan_write(request, schema), schema)


@dataclass(frozen=True)
class _File(InputPartition):
    file: PlannedFile


class _Reader(DataSourceReader):
    """Reads the files the log plans with Arrow; `predicate` (SQL) skips files, not rows."""

    def __init__(self, path: str, version: int | None, predicate: str | None, schema: StructType):
        self.plan = _read.plan(path, version, predicate=predicate)
        self.arrow_schema = to_arrow_schema(schema, timezone="UTC")

    def partitions(self) -> Sequence[InputPartition]:
        return [_File(file) for file in self.plan.files]

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        planned = cast(_File, partition).file  # partitions() hands out only _File
        yield from _read_arrow.read_file(self.plan, planned, self.arrow_schema).to_batches()


class _Writer(DataSourceArrowWriter):
    def __init__(self, plan: rs.WritePlan | WriteResult, schema: StructType) -> None:
        self.plan = plan
        self.arrow_schema = to_arrow_schema(schema, timezone="UTC")

    def write(self, iterator: Iterator[pa.RecordBatch]) -> WriterCommitMessage:
        if isinstance(self.plan, rs.WritePlan):  # else: already committed, compute nothing
            self.plan.staging.mkdir(parents=True, exist_ok=True)
            target = self.plan.staging / f"part-{uuid.uuid4().hex}.snappy.parquet"
            with pq.ParquetWriter(target, self.arrow_schema, coerce_timestamps="us") as out:
                for batch in iterator:
                    out.write_batch(batch)
        return WriterCommitMessage()

    def commit(self, messages: list[WriterCommitMessage | None]) -> None:
        if isinstance(self.plan, rs.WritePlan):
            try:
                rs.commit_staged(self.plan)
            finally:
                rs.discard_staging(self.plan)

    def abort(self, messages: list[WriterCommitMessage | None]) -> None:
        if isinstance(self.plan, rs.WritePlan):
            rs.discard_staging(self.plan)
