"""Output writers: one class per format behind one interface, picked from a registry.

The chapter's Example 6-19 repeats `if type == ...` in every method of its factory and names that
as the drawback; here each output type is a class and the factory is a lookup, so adding a type
is one `register_output` call and no existing branch changes.

Every writer is idempotent per `(output, app_id, txn_version)`:

- `delta` commits through `spark_flow.delta` with `txnAppId=app_id`, `txnVersion=txn_version`.
- `parquet`, `csv`, `json` publish the batch as the output's own partition
  `batch_id=<txn_version>/`, made visible by its manifest: on local and mounted filesystems a
  staged folder renamed into place, on object stores files written in place and a manifest
  created with put-if-absent (`spark_flow._manifests`). Readers see the whole batch or none of
  it, and a replay finds the manifest and writes nothing.
- `postgres` (`spark_flow.postgres`, the `postgres` extra, imported only when asked for)
  COPYs from the executors into staging and publishes the batch in one transaction that also
  records `(table, app_id, txn_version)` under a unique key.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from spark_flow import _manifests, delta, storage
from spark_flow._manifests import MANIFEST
from spark_flow.delta import WriteResult
from spark_flow.errors import InvalidArgumentError, SparkFlowError, UnknownValueError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "DeltaOutput",
    "FileOutput",
    "MicroBatchWriter",
    "OutputWriter",
    "for_each_batch",
    "output_types",
    "output_writer",
    "register_output",
]

log = logging.getLogger(__name__)


class OutputWriter(Protocol):
    """Writes one batch of a DataFrame to an output, at most once per `(app_id, txn_version)`.

    A writer may also offer `written(path, *, app_id, txn_version) -> str | None`: why the batch is
    already in the output (from metadata only), or None. A Parallel Split whose branches all
    say so skips reading its input; the built-in writers have it.
    """

    def write(
        self, df: DataFrame, path: str, *, app_id: str, txn_version: int | None
    ) -> WriteResult:
        """Write `df` to `path`; a batch already written by `app_id` is skipped, not repeated."""
        ...


@dataclass(frozen=True)
class DeltaOutput:
    """Appends to a Delta table, idempotently through Delta's `txnAppId`/`txnVersion`.

    Delta skips a replayed `(app_id, txn_version)` *even when its data differs*: give each
    distinct batch of data its own txn version. Without one the append is a plain, non-idempotent
    one.
    """

    partition_by: tuple[str, ...] | None = None
    merge_schema: bool = False

    def written(self, path: str, *, app_id: str, txn_version: int | None) -> str | None:
        """Why `(app_id, txn_version)` is already committed to the table at `path`, or None."""
        if txn_version is None:
            return None
        return delta.already_committed(path, app_id=app_id, txn_version=txn_version)

    def write(
        self, df: DataFrame, path: str, *, app_id: str, txn_version: int | None
    ) -> WriteResult:
        if txn_version is None:
            log.info("appending to %s without a txn version: a rerun appends again", path)
            return delta.write(
                df, path, partition_by=self.partition_by, merge_schema=self.merge_schema
            )
        return delta.write(
            df,
            path,
            app_id=app_id,
            txn_version=txn_version,
            partition_by=self.partition_by,
            merge_schema=self.merge_schema,
        )


@dataclass(frozen=True)
class FileOutput:
    """Publishes each batch as `<path>/batch_id=N/` in a file format (parquet, csv, json).

    A batch is published when its manifest `_spark_flow_batch.json` is; readers see the whole
    batch or none of it, and a replay finds the manifest and writes nothing. On a local or
    mounted path the batch folder is staged and renamed into place; on an object store the
    files are written in place by Python workers (Arrow) and the manifest is created with
    put-if-absent: there, read the output by its manifests (`read`), not by listing it.

    Every batch keeps the columns, order and types of the first published batch, so readers of
    the whole output (`spark.read.csv(path, header=True)`) see one schema; CSV gets a header.

    Attributes:
        format: a Spark file format name (parquet, csv or json on an object store).
        options: writer options, e.g. `{"compression": "gzip"}`.
    """

    format: str
    options: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Spark takes partition columns from DataFrameWriter.partitionBy only: as an option it
        # is ignored in silence, and the batch would land unpartitioned.
        partitioned = [key for key in self.options if key.lower() in _PARTITION_OPTIONS]
        if partitioned:
            raise InvalidArgumentError(
                "options",
                f"{self.format} output got {partitioned[0]!r}, which Spark's file writers ignore "
                "(they partition by DataFrameWriter.partitionBy only), and a file output "
                "publishes each batch unpartitioned as batch_id=N/",
                "Write partitioned data to a Delta output, DeltaOutput(partition_by=(...)), or "
                "drop the option.",
            )

    def written(self, path: str, *, app_id: str, txn_version: int | None) -> str | None:
        """Why batch `txn_version` of `app_id` is already published under `path`, or None."""
        if txn_version is None:
            return None
        storage.check_reachable(path)
        published = _manifests.skip_if_published(storage.folder(path), app_id, txn_version)
        return None if published is None else published.skipped_reason

    def write(
        self, df: DataFrame, path: str, *, app_id: str, txn_version: int | None
    ) -> WriteResult:
        root = storage.folder(path)
        storage.check_reachable(root)  # an unknown bucket is no failed Spark job
        batch = txn_version
        if batch is None or isinstance(batch, bool) or not isinstance(batch, int) or batch < 0:
            raise InvalidArgumentError(
                "txn_version",
                f"{self.format} outputs publish each batch as its own folder batch_id=N, "
                f"got txn_version {batch!r}",
                "Pass the batch number (an integer >= 0), e.g. the run date as YYYYMMDD.",
            )
        published = _manifests.skip_if_published(root, app_id, batch)
        if published is not None:
            return published
        aligned = df.select(*_manifests.columns_like_earlier_batches(root, df))
        if not storage.is_local(root):
            return _manifests.publish_in_place(
                aligned,
                root,
                batch=batch,
                app_id=app_id,
                format=self.format,
                options=self._writer_options(),
            )
        return self._publish_by_rename(aligned, Path(root), batch=batch, app_id=app_id)

    def read(self, spark: SparkSession, path: str) -> DataFrame:
        """Every published batch under `path`, with its `batch_id`, in the first batch's schema.

        Raises:
            InvalidArgumentError: nothing is published under `path` yet.
            StorageError: the store of `path` cannot be used (`storage.check_reachable`).
        """
        root = storage.folder(path)
        storage.check_reachable(root)
        found = _manifests.read_published(
            spark, root, format=self.format, options=self._writer_options()
        )
        if found is None:
            raise InvalidArgumentError(
                "path", f"no batch is published under {path!r}", "Write a batch first."
            )
        return found

    def _publish_by_rename(
        self, aligned: DataFrame, root: Path, *, batch: int, app_id: str
    ) -> WriteResult:
        target = root / f"batch_id={batch}"
        staging = root / storage.STAGING_DIR / f"batch_id={batch}-{uuid.uuid4().hex[:12]}"
        try:
            rows = _manifests.save_with_spark(
                aligned, str(staging), format=self.format, options=self._writer_options()
            )
            files = [p.name for p in staging.iterdir() if not p.name.startswith(("_", "."))]
            manifest = _manifests.manifest(app_id, batch, rows, files, aligned.schema)
            (staging / MANIFEST).write_text(json.dumps(manifest))
            try:
                os.rename(staging, target)
            except OSError:
                # Another writer published the batch between our check and our rename.
                lost = _manifests.skip_if_published(str(root), app_id, batch)
                if lost is None:
                    raise
                return lost
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        log.info("published %s rows of batch %s to %s", manifest["rows"], batch, target)
        return WriteResult(
            committed=True,
            table_version=None,
            rows_written=int(manifest["rows"]),
            files=tuple(f"{target.name}/{name}" for name in manifest["files"]),
        )

    def _writer_options(self) -> dict[str, str]:
        defaults = {"header": "true"} if self.format == "csv" else {}
        return {**defaults, **self.options}


_PARTITION_OPTIONS = frozenset({"partitionby", "partition_by"})


def _postgres_output() -> OutputWriter:
    # Imported on use: psycopg is an optional dependency (the `postgres` extra).
    from spark_flow.postgres import PostgresOutput

    return PostgresOutput()


_REGISTRY: dict[str, Callable[[], OutputWriter]] = {
    "delta": DeltaOutput,
    "parquet": lambda: FileOutput("parquet"),
    "csv": lambda: FileOutput("csv"),
    "json": lambda: FileOutput("json"),
    "postgres": _postgres_output,
}


def output_types() -> tuple[str, ...]:
    """The registered output types, built-in and custom."""
    return tuple(sorted(_REGISTRY))


def output_writer(output_type: str) -> OutputWriter:
    """A new writer for `output_type`.

    Raises:
        UnknownValueError: `output_type` is not registered; the message lists those that are.

    Example:
        >>> output_writer("csv").write(df, "out/devices", app_id="router", txn_version=20240101)
    """
    return output_factory(output_type)()


def output_factory(output_type: str) -> Callable[[], OutputWriter]:
    """What `output_writer(output_type)` calls: the factory registered for the type.

    Raises:
        UnknownValueError: `output_type` is not registered.
    """
    factory = _REGISTRY.get(output_type)
    if factory is None:
        raise UnknownValueError("output_type", output_type, output_types())
    return factory


def register_output(
    output_type: str, factory: Callable[[], OutputWriter], *, replace: bool = False
) -> None:
    """Make `output_writer(output_type)` return `factory()`.

    Raises:
        InvalidArgumentError: an empty name, a factory that is not callable, or a type that
            exists already (pass `replace=True` to swap it deliberately).

    Example:
        >>> register_output("orc", lambda: FileOutput("orc"))
    """
    if not isinstance(output_type, str) or not output_type.strip():
        raise InvalidArgumentError(
            "output_type", f"expected a non-empty name, got {output_type!r}", "Name the type."
        )
    if not callable(factory):
        raise InvalidArgumentError(
            "factory",
            f"expected a callable returning a writer, got {factory!r}",
            "Pass a class or a function without arguments, e.g. lambda: FileOutput('orc').",
        )
    if output_type in _REGISTRY and not replace:
        raise InvalidArgumentError(
            "output_type",
            f"{output_type!r} is registered already",
            "Pick another name, or pass replace=True to replace it.",
        )
    _REGISTRY[output_type] = factory


@dataclass
class MicroBatchWriter:
    """A `foreachBatch` function that writes every micro-batch of a stream exactly once.

    The micro-batch id is the txn version (Delta's txnVersion, or the file outputs'
    `batch_id=N`). A query restarted from its checkpoint replays the micro-batch it did not
    finish with the same id, so whatever that batch already wrote is skipped, not duplicated.
    `reports` keeps what the last micro-batches did, `failure` what failed the last one (in this
    driver process: a Spark Connect server runs the function elsewhere, so there they stay empty
    here, and the query's StreamingQueryException carries the failure's traceback).

    `ahead(batch_id)` says why the outputs already hold a batch *after* `batch_id`, or None.
    Spark replays only the last batch of a query, so such a batch means the query's checkpoint
    is not the one the app id wrote with (a stream started over from a new checkpoint): Delta
    would skip every batch id it has seen, in silence, so the micro-batch is refused instead.
    It is asked at the first micro-batch the function sees and wherever the ids jump.

    Example:
        >>> sink = for_each_batch(output_writer("delta"), "tables/devices", app_id="devices")
        >>> stream.writeStream.foreachBatch(sink).option("checkpointLocation", ck).start()
    """

    name: str
    write_batch: Callable[[DataFrame, int], Any]
    reports: deque[tuple[int, Any]] = field(default_factory=lambda: deque(maxlen=1000))
    failure: BaseException | None = None
    """What failed the query's last micro-batch; Spark wraps it in a StreamingQueryException."""
    ahead: Callable[[int], str | None] | None = None
    _last: int | None = field(default=None, init=False, repr=False)

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        try:
            self._check_not_behind(batch_id)
            report = self.write_batch(batch, batch_id)
        except BaseException as exc:
            self.failure = exc
            raise
        self._last = batch_id
        self.reports.append((batch_id, report))
        log.info("%s: micro-batch %d done", self.name, batch_id)

    def _check_not_behind(self, batch_id: int) -> None:
        if self.ahead is None or (self._last is not None and batch_id == self._last + 1):
            return  # the next batch of a query this function already wrote for
        later = self.ahead(batch_id)
        if later is not None:
            raise InvalidArgumentError(
                "app_id",
                f"micro-batch {batch_id} of {self.name!r}, whose outputs hold a later batch "
                f"({later}): the query's checkpoint is not the one this app id wrote with, "
                "and every batch id already used would be skipped without a row written",
                "Give a query started from a new checkpoint a new app_id (the app id and the "
                "checkpoint go together), or restart it from the checkpoint it wrote with.",
            )


def already_written(
    writer: OutputWriter, path: str, *, app_id: str, txn_version: int
) -> str | None:
    """Why `writer`'s output at `path` already holds batch `txn_version` of `app_id` (or, for
    Delta, a later one), from its metadata alone (`written`); None when it does not, or when
    the writer cannot say."""
    written = getattr(writer, "written", None)
    if written is None:
        return None
    try:
        reason: str | None = written(path, app_id=app_id, txn_version=txn_version)
    except SparkFlowError:  # e.g. a file where the output goes: its write will say so
        return None
    return reason


def for_each_batch(writer: OutputWriter, path: str, *, app_id: str) -> MicroBatchWriter:
    """`writer` as a `foreachBatch` function writing to `path` as `app_id`, exactly once per batch.

    `app_id` must stay the same for the life of the query (its checkpoint): it is what lets a
    replayed micro-batch recognise its own earlier write. A query started from a new checkpoint
    under an `app_id` the output already holds later batches of is refused at its first
    micro-batch (`InvalidArgumentError`), not skipped batch after batch.
    """

    def later(batch_id: int) -> str | None:
        reason = already_written(writer, path, app_id=app_id, txn_version=batch_id + 1)
        return None if reason is None else f"{path!r}: {reason}"

    return MicroBatchWriter(
        app_id,
        lambda batch, batch_id: writer.write(batch, path, app_id=app_id, txn_version=batch_id),
        ahead=later,
    )
