"""A Python data source named `delta`, for sessions without the delta-spark connector.

It keeps existing code working unchanged on the delta-rs backend:

    df.write.format("delta").mode("append").option("txnAppId", "a").option("txnVersion", 1).save(p)
    spark.read.format("delta").option("versionAsOf", 3).load(p)

Options honoured: `txnAppId`, `txnVersion`, `mergeSchema`, `overwriteSchema`,
`partitionOverwriteMode`, `versionAsOf`, `timestampAsOf`, `replaceWhere` naming partitions
(`date = '2024-01-31' AND region = 'eu'`). Options of delta-spark this source cannot honour
(change data feed reads, `dataChange=false`, other `replaceWhere` predicates) are refused by
name, never ignored (`_source_options`). Reads follow the log's plan (`_read`): column
mapping, deletion vectors, partition values from the log; the `spark_flow.filter` option (a SQL
predicate, set by `delta.read(..., filter=)`) skips files.
Spark gives Python data sources only `append` and `overwrite`, and never passes them
`partitionBy`; partitioned writes go through `spark_flow.delta.write(df, path,
partition_by=[...])`, which passes them as the internal options `spark_flow.partitionBy` (a
JSON list) and `spark_flow.replaceWhere` (a JSON object) where it writes through this source
(Spark Connect).

Python workers write the files with Arrow (`_files.FileWriter`): into a staging folder on a local
disk, renamed into the table at commit; straight into the table on an object store, where each
task's commit message names its files and the commit adds exactly those.

`writeStream.format("delta")` commits each micro-batch as a Delta transaction of the query
(`_stream_sink`): a replayed batch is skipped. Streaming reads are refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import pyarrow as pa
from pyspark.sql.datasource import (
    DataSource,
    DataSourceArrowWriter,
    DataSourceReader,
    DataSourceStreamReader,
    DataSourceStreamWriter,
    InputPartition,
    WriterCommitMessage,
)
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import StructType

from spark_flow import storage
from spark_flow.delta import _read, _read_arrow, _read_spark, rs
from spark_flow.delta._files import WrittenFile
from spark_flow.delta._read import PlannedFile
from spark_flow.delta._remote_errors import noting
from spark_flow.delta._source_options import (
    PARTITION_BY_OPTION,
    TIME_ZONE_OPTION,
    dynamic_partitions,
    flag,
    int_option,
    json_option,
    path_of,
    read_version,
    refuse_unhonoured_writes,
    replace_where,
    session_time_zone,
)
from spark_flow.delta._stream_sink import StreamSink, stream_app_id, stream_partitioning
from spark_flow.delta._types import WriteRequest, WriteResult
from spark_flow.errors import UnsupportedDeltaFeatureError

PARTITION_BY_HINT = (
    "Spark does not pass DataFrameWriter.partitionBy to Python data sources; write partitioned "
    "tables with spark_flow.delta.write(df, path, partition_by=[...])."
)


class DeltaDataSource(DataSource):
    """`format("delta")` backed by delta-rs; see the module docstring."""

    def __init__(self, options: dict[str, str]) -> None:
        super().__init__(options)
        # Spark calls schema(), reader() and writer() in Python processes of its own, with the
        # JVM's environment: the driver's store variables come with the options instead
        # (delta.read sets them, see storage.store_environment). The object is unpickled, not
        # constructed, in those processes, so each call adopts them.
        self.environment = json.loads(options.get(_read_spark.ENVIRONMENT_OPTION) or "{}")

    @classmethod
    def name(cls) -> str:
        return "delta"

    @noting
    def schema(self) -> StructType:
        storage.adopt_environment(self.environment)
        return _read.logical_schema(path_of(self.options), read_version(self.options))

    @noting
    def reader(self, schema: StructType) -> DataSourceReader:
        storage.adopt_environment(self.environment)
        return _Reader(
            path_of(self.options),
            read_version(self.options),
            predicate=self.options.get(_read_spark.FILTER_OPTION),
            time_zone=self.options.get(TIME_ZONE_OPTION),
            schema=schema,
            environment=self.environment,
        )

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:
        raise UnsupportedDeltaFeatureError(
            "streaming reads of format('delta') (readStream)",
            "Read each new version in a batch job (spark_flow.delta.read(spark, path, "
            "version=...)), or use the jvm backend.",
        )

    @noting
    def streamWriter(self, schema: StructType, overwrite: bool) -> DataSourceStreamWriter:
        storage.adopt_environment(self.environment)
        refuse_unhonoured_writes(self.options)
        partition_by = json_option(self.options, PARTITION_BY_OPTION, list)
        request = WriteRequest(
            path=path_of(self.options),
            mode="overwrite" if overwrite else "append",  # complete mode replaces the table
            app_id=stream_app_id(self.options),
            txn_version=0,
            partition_by=stream_partitioning(self.options)
            if partition_by is None
            else tuple(partition_by),
            merge_schema=flag(self.options, "mergeSchema"),
        )
        return StreamSink(request, schema)

    @noting
    def writer(self, schema: StructType, overwrite: bool) -> _Writer:
        storage.adopt_environment(self.environment)
        if self.options.get("partitionBy"):  # a user trying the option form of partitionBy
            raise UnsupportedDeltaFeatureError(
                "partitionBy with format('delta')", PARTITION_BY_HINT
            )
        refuse_unhonoured_writes(self.options)
        partition_by = json_option(self.options, PARTITION_BY_OPTION, list)
        request = WriteRequest(
            path=path_of(self.options),
            mode="overwrite" if overwrite else "append",
            app_id=self.options.get("txnAppId"),
            txn_version=int_option(self.options, "txnVersion"),
            partition_by=None if partition_by is None else tuple(partition_by),
            merge_schema=flag(self.options, "mergeSchema"),
            overwrite_schema=flag(self.options, "overwriteSchema"),
            replace_where=replace_where(self.options, overwrite=overwrite),
            dynamic_partitions=overwrite and dynamic_partitions(self.options),
            time_zone=session_time_zone(self.options),
        )
        plan = rs.plan_write(request, schema)
        write_id = self.options.get("spark_flow.writeId")
        if write_id and isinstance(plan, rs.WritePlan):  # spark_flow.delta.write on Connect
            plan = replace(plan, write_id=str(write_id))  # finds its commit by this id
        return _Writer(plan)


@dataclass(frozen=True)
class _File(InputPartition):
    file: PlannedFile


class _Reader(DataSourceReader):
    """Reads the files the log plans with Arrow; `predicate` (SQL) skips files, not rows."""

    def __init__(
        self,
        path: str,
        version: int | None,
        *,
        predicate: str | None,
        time_zone: str | None,
        schema: StructType,
        environment: dict[str, str],
    ) -> None:
        self.plan = _read.plan(path, version, predicate=predicate, time_zone=time_zone)
        self.arrow_schema = to_arrow_schema(schema, timezone="UTC")
        self.environment = environment  # for the executors' Python workers too

    @noting
    def partitions(self) -> Sequence[InputPartition]:
        return [_File(file) for file in self.plan.files]

    @noting
    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        if not isinstance(partition, _File):
            # No file to read (an empty version, every file skipped): Spark then asks for one
            # partition of its own, `InputPartition(None)`.
            return
        planned = partition.file
        storage.adopt_environment(self.environment)
        yield from _read_arrow.read_file(self.plan, planned, self.arrow_schema).to_batches()


@dataclass(frozen=True)
class _Written(WriterCommitMessage):
    """What one task attempt wrote: in place (object stores) or in the staging folder."""

    files: list[WrittenFile] = field(default_factory=list)


def _written(messages: list[WriterCommitMessage | None]) -> list[WrittenFile]:
    return [file for m in messages if isinstance(m, _Written) for file in m.files]


class _Writer(DataSourceArrowWriter):
    def __init__(self, plan: rs.WritePlan | WriteResult) -> None:
        self.plan = plan

    @noting
    def write(self, iterator: Iterator[pa.RecordBatch]) -> WriterCommitMessage:
        plan = self.plan
        if not isinstance(plan, rs.WritePlan):  # already committed: compute nothing
            return _Written()
        root = plan.root if not plan.local else str(plan.staging)
        return _Written(rs.file_writer(plan, root).write(iterator))

    @noting
    def commit(self, messages: list[WriterCommitMessage | None]) -> None:
        plan = self.plan
        if not isinstance(plan, rs.WritePlan):
            return
        if not plan.local:
            rs.commit_written(plan, _written(messages))
            return
        try:
            # Only the files of the attempts Spark accepted: a speculative copy or an attempt
            # retried after it wrote its files left them in the staging folder too.
            rs.commit_staged(plan, [file.path for file in _written(messages)])
        finally:
            rs.discard_staging(plan)

    def abort(self, messages: list[WriterCommitMessage | None]) -> None:
        plan = self.plan
        if not isinstance(plan, rs.WritePlan):
            return
        if plan.local:
            rs.discard_staging(plan)
        else:  # the tasks that succeeded wrote files nobody will commit
            storage.delete_files(plan.root, [file.path for file in _written(messages)])
