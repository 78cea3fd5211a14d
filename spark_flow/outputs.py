"""Output writers: one class per format behind one interface, picked from a registry.

The chapter's Example 6-19 repeats `if type == ...` in every method of its factory and names that
as the drawback; here each output type is a class and the factory is a lookup, so adding a type
is one `register_output` call and no existing branch changes.

Every writer is idempotent per `(output, app_id, txn_version)`:

- `delta` commits through `spark_flow.delta` with `txnAppId=app_id`, `txnVersion=txn_version`.
- `parquet`, `csv`, `json` write the batch into a staging folder and publish it with one
  atomic rename as the output's own partition `batch_id=<txn_version>/`. Readers see the whole
  batch or none of it, and a replay finds the folder and writes nothing. The rename is atomic on
  local and mounted filesystems only, so file outputs accept local paths (`spark_flow.storage`
  refuses object stores for them).
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
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from spark_flow import delta, storage
from spark_flow.delta import WriteResult
from spark_flow.errors import InvalidArgumentError, SchemaMismatchError, UnknownValueError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

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

MANIFEST = "_spark_flow_batch.json"


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

    Every batch keeps the columns, order and types of the first published batch, so readers of
    the whole output (`spark.read.csv(path, header=True)`) see one schema; CSV gets a header.

    Attributes:
        format: a Spark file format name.
        options: writer options, e.g. `{"compression": "gzip"}`.
    """

    format: str
    options: Mapping[str, str] = field(default_factory=dict)

    def written(self, path: str, *, app_id: str, txn_version: int | None) -> str | None:
        """Why batch `txn_version` of `app_id` is already published under `path`, or None."""
        if txn_version is None:
            return None
        published = _skip_if_published(_local_root(path, self.format) / f"batch_id={txn_version}",
                                       app_id, txn_version)  # fmt: skip
        return None if published is None else published.skipped_reason

    def write(
        self, df: DataFrame, path: str, *, app_id: str, txn_version: int | None
    ) -> WriteResult:
        from pyspark.sql import Observation
        from pyspark.sql import functions as F

        root = _local_root(path, self.format)
        batch = txn_version
        if batch is None or isinstance(batch, bool) or not isinstance(batch, int) or batch < 0:
            raise InvalidArgumentError(
                "txn_version",
                f"{self.format} outputs publish each batch as its own folder batch_id=N, "
                f"got txn_version {batch!r}",
                "Pass the batch number (an integer >= 0), e.g. the run date as YYYYMMDD.",
            )
        target = root / f"batch_id={batch}"
        published = _skip_if_published(target, app_id, batch)
        if published is not None:
            return published
        aligned = df.select(*_columns_like_earlier_batches(root, df))
        staging = root / storage.STAGING_DIR / f"batch_id={batch}-{uuid.uuid4().hex[:12]}"
        rows = Observation(f"spark_flow_rows_{uuid.uuid4().hex}")
        try:
            writer = aligned.observe(rows, F.count(F.lit(1)).alias("rows")).write
            writer = writer.format(self.format).options(**self._writer_options())
            writer.save(str(staging))
            files = sorted(p.name for p in staging.iterdir() if not p.name.startswith(("_", ".")))
            manifest = {
                "app_id": app_id,
                "txn_version": batch,
                "rows": rows.get["rows"],
                "files": files,
                "schema": aligned.schema.jsonValue(),
                "published_at": datetime.now(timezone.utc).isoformat(),
            }
            (staging / MANIFEST).write_text(json.dumps(manifest))
            try:
                os.rename(staging, target)
            except OSError:
                # Another writer published the batch between our check and our rename.
                lost = _skip_if_published(target, app_id, batch)
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
            files=tuple(f"{target.name}/{name}" for name in files),
        )

    def _writer_options(self) -> dict[str, str]:
        defaults = {"header": "true"} if self.format == "csv" else {}
        return {**defaults, **self.options}


def _local_root(path: str, output_format: str) -> Path:
    return storage.local_folder(
        path,
        purpose=f"{output_format} outputs publish each batch with a folder rename",
        fix="Write to a mounted path, or use the 'delta' output type for object stores.",
    )


def _skip_if_published(target: Path, app_id: str, batch: int) -> WriteResult | None:
    manifest_path = target / MANIFEST
    if not manifest_path.is_file():
        if target.exists():
            raise InvalidArgumentError(
                "path",
                f"{target} exists but has no {MANIFEST}: it was not published by spark_flow",
                "Move that folder away, or write to another output.",
            )
        return None
    manifest = json.loads(manifest_path.read_text())
    if manifest["app_id"] != app_id:
        raise InvalidArgumentError(
            "txn_version",
            f"batch {batch} of {target.parent} was published by app {manifest['app_id']!r}, "
            f"not {app_id!r}",
            "Give each writer of a shared output its own batch numbers, or its own output.",
        )
    reason = f"batch {batch} was already published by {app_id!r} at {manifest['published_at']}"
    log.info("skipping %s: %s", target, reason)
    return WriteResult(committed=False, table_version=None, skipped_reason=reason)


def _columns_like_earlier_batches(root: Path, df: DataFrame) -> list[str]:
    """The data's columns in the order of the first published batch; a schema change fails."""
    from pyspark.sql.types import StructType

    earlier = sorted(root.glob(f"batch_id=*/{MANIFEST}"))
    if not earlier:
        return df.columns
    published = StructType.fromJson(json.loads(earlier[0].read_text())["schema"])
    had = {f.name: f.dataType.simpleString() for f in published.fields}
    has = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    conflicts = [(name, had.get(name), kind) for name, kind in has.items() if had.get(name) != kind]
    conflicts += [(name, kind, "no such column") for name, kind in had.items() if name not in has]
    if conflicts:
        raise SchemaMismatchError(
            str(root),
            conflicts,
            fix="Every batch of a file output needs the same columns and types: cast or select "
            "them, or publish the new shape to a new output.",
        )
    return published.fieldNames()


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
    factory = _REGISTRY.get(output_type)
    if factory is None:
        raise UnknownValueError("output_type", output_type, output_types())
    return factory()


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
    `reports` keeps what the last micro-batches did (in this driver process: a Spark Connect
    server runs the function elsewhere, so there it stays empty here).

    Example:
        >>> sink = for_each_batch(output_writer("delta"), "tables/devices", app_id="devices")
        >>> stream.writeStream.foreachBatch(sink).option("checkpointLocation", ck).start()
    """

    name: str
    write_batch: Callable[[DataFrame, int], Any]
    reports: deque[tuple[int, Any]] = field(default_factory=lambda: deque(maxlen=1000))
    failure: BaseException | None = None
    """What failed the query's last micro-batch; Spark wraps it in a StreamingQueryException."""

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        try:
            report = self.write_batch(batch, batch_id)
        except BaseException as exc:
            self.failure = exc
            raise
        self.reports.append((batch_id, report))
        log.info("%s: micro-batch %d done", self.name, batch_id)


def for_each_batch(writer: OutputWriter, path: str, *, app_id: str) -> MicroBatchWriter:
    """`writer` as a `foreachBatch` function writing to `path` as `app_id`, exactly once per batch.

    `app_id` must stay the same for the life of the query (its checkpoint): it is what lets a
    replayed micro-batch recognise its own earlier write.
    """
    return MicroBatchWriter(
        app_id,
        lambda batch, batch_id: writer.write(batch, path, app_id=app_id, txn_version=batch_id),
    )
