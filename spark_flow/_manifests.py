"""The file outputs' batch manifests: what makes a batch of files visible, and where.

Each batch is the folder `<output>/batch_id=N/` holding its data files and `_spark_flow_batch.json`,
the manifest (app id, txn version, rows, files, schema). A batch *is published* when its
manifest exists; readers read the files a manifest lists, and a replay that finds the manifest
writes nothing. How the manifest appears depends on the store:

- local and mounted filesystems: the whole folder is staged and renamed into place
  (`outputs.FileOutput`), so even a reader that ignores manifests (`spark.read.csv(output)`)
  never sees half a batch.
- object stores, where no folder can be renamed: the files are written straight into the batch
  folder under names of their own attempt, then the manifest is created with put-if-absent
  (`publish_in_place`). Files without a manifest are invisible to the readers here; the first
  attempt to create the manifest wins, a loser removes its files, and the winner removes what
  crashed attempts left behind.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from spark_flow import storage
from spark_flow.delta import WriteResult
from spark_flow.errors import InvalidArgumentError, SchemaMismatchError, StorageError
from spark_flow.files import list_files, read_listed, spark_reads, write_files

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

__all__ = [
    "MANIFEST",
    "batch_folder",
    "columns_like_earlier_batches",
    "manifest",
    "publish_in_place",
    "published",
    "read_published",
    "save_with_spark",
    "skip_if_published",
]

log = logging.getLogger(__name__)

MANIFEST = "_spark_flow_batch.json"
_BATCH = "batch_id="


def batch_folder(root: str, batch: int) -> str:
    """Where batch `batch` of the output at `root` lives."""
    return storage.join(root, f"{_BATCH}{batch}")


def manifest(
    app_id: str, batch: int, rows: int, files: list[str], schema: StructType
) -> dict[str, Any]:
    """The manifest of a batch about to be published."""
    return {
        "app_id": app_id,
        "txn_version": batch,
        "rows": rows,
        "files": sorted(files),
        "schema": schema.jsonValue(),
        "published_at": datetime.now(timezone.utc).isoformat(),
    }


def _read_manifest(folder: str) -> dict[str, Any] | None:
    text = storage.read_text(storage.join(folder, MANIFEST))
    return None if text is None else dict(json.loads(text))


def published(root: str) -> list[tuple[int, dict[str, Any]]]:
    """`(batch, manifest)` of every published batch of the output at `root`, by batch number."""
    found = [(batch, _read_manifest(batch_folder(root, batch))) for batch in _batches(root)]
    return [(batch, m) for batch, m in found if m is not None]


def _first_published(root: str) -> dict[str, Any] | None:
    """The manifest of the lowest published batch: one read, not one per batch."""
    for batch in _batches(root):
        found = _read_manifest(batch_folder(root, batch))
        if found is not None:
            return found
    return None


def _batches(root: str) -> list[int]:
    """The numbers of the `batch_id=N` folders under `root`, published or not, ascending."""
    from pyarrow.fs import FileSelector, FileType

    filesystem, location = storage.filesystem(root)
    try:
        entries = filesystem.get_file_info(FileSelector(location, allow_not_found=True))
    except OSError as exc:
        raise StorageError(root, "list", str(exc).strip()) from exc
    return sorted(
        int(name[len(_BATCH) :])
        for e in entries
        if e.type == FileType.Directory
        and (name := e.base_name).startswith(_BATCH)
        and name[len(_BATCH) :].isdigit()
    )


def skip_if_published(root: str, app_id: str, batch: int) -> WriteResult | None:
    """The skip of batch `batch` when `app_id` published it already, else None.

    Raises:
        InvalidArgumentError: another app published that batch; or, on a local path, the batch
            folder exists without a manifest (a rename publishes both at once, so someone else
            put it there).
    """
    folder = batch_folder(root, batch)
    found = _read_manifest(folder)
    if found is None:
        if storage.is_local(root) and storage.exists(folder):
            raise InvalidArgumentError(
                "path",
                f"{folder} exists but has no {MANIFEST}: it was not published by spark_flow",
                "Move that folder away, or write to another output.",
            )
        return None
    if found["app_id"] != app_id:
        raise InvalidArgumentError(
            "txn_version",
            f"batch {batch} of {root} was published by app {found['app_id']!r}, not {app_id!r}",
            "Give each writer of a shared output its own batch numbers, or its own output.",
        )
    reason = f"batch {batch} was already published by {app_id!r} at {found['published_at']}"
    log.info("skipping %s: %s", folder, reason)
    return WriteResult(committed=False, table_version=None, skipped_reason=reason)


def columns_like_earlier_batches(root: str, df: DataFrame) -> list[str]:
    """The data's columns in the order of the first published batch; a schema change fails."""
    from pyspark.sql.types import StructType

    earlier = _first_published(root)
    if earlier is None:
        return df.columns
    first = StructType.fromJson(earlier["schema"])
    had = {f.name: f.dataType.simpleString() for f in first.fields}
    has = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    conflicts = [(name, had.get(name), kind) for name, kind in has.items() if had.get(name) != kind]
    conflicts += [(name, kind, "no such column") for name, kind in had.items() if name not in has]
    if conflicts:
        raise SchemaMismatchError(
            root,
            conflicts,
            fix="Every batch of a file output needs the same columns and types: cast or select "
            "them, or publish the new shape to a new output.",
        )
    return first.fieldNames()


def publish_in_place(
    df: DataFrame,
    root: str,
    *,
    batch: int,
    app_id: str,
    format: str,
    options: Mapping[str, str],
) -> WriteResult:
    """Write `df` into batch `batch`'s folder and publish it by creating its manifest if absent
    (for object stores, where nothing can be renamed); `df` has the output's columns already."""
    folder = batch_folder(root, batch)
    attempt = uuid.uuid4().hex[:12]
    if spark_reads(df.sparkSession, root):
        # Spark has a filesystem for the store (a connector on the cluster): its own writer,
        # into a folder of this attempt's own.
        target = storage.join(folder, f"attempt-{attempt}")
        rows = save_with_spark(df, target, format=format, options=options)
        files = _relative(folder, list_files(target))
    else:
        written = write_files(df, folder, format=format, prefix=f"part-{attempt}", options=options)
        files, rows = [name for name, _ in written], sum(n for _, n in written)
    record = manifest(app_id, batch, rows, files, df.schema)
    if not storage.create_if_absent(folder, MANIFEST, json.dumps(record)):
        # Another attempt published the batch while this one wrote: its files are the batch.
        _remove(folder, files)
        lost = skip_if_published(root, app_id, batch)
        if lost is None:
            raise StorageError(folder, "publish", f"{MANIFEST} exists but cannot be read")
        return lost
    _remove(folder, _orphans(folder, files))
    log.info("published %s rows of batch %s to %s", record["rows"], batch, folder)
    return WriteResult(
        committed=True,
        table_version=None,
        rows_written=int(record["rows"]),
        files=tuple(f"{_BATCH}{batch}/{name}" for name in record["files"]),
    )


def save_with_spark(df: DataFrame, target: str, *, format: str, options: Mapping[str, str]) -> int:
    """Write `df` to the new folder `target` with Spark's writer; the rows it wrote, counted by an
    Observation on the write itself (no second pass)."""
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    rows = Observation(f"spark_flow_rows_{uuid.uuid4().hex}")
    writer = df.observe(rows, F.count(F.lit(1)).alias("rows")).write
    writer.format(format).options(**options).save(target)
    return int(rows.get["rows"])


def read_published(
    spark: SparkSession, root: str, *, format: str, options: Mapping[str, str]
) -> DataFrame | None:
    """The rows of every published batch under `root`, with `batch_id`; None when there is none."""
    from pyspark.sql.types import StructType

    batches = published(root)
    if not batches:
        return None
    schema = StructType.fromJson(batches[0][1]["schema"])
    if storage.is_local(root):
        # Published local batches are whole folders (renamed into place): Spark lists them and
        # adds `batch_id` from the folder names; staging folders start with `_`, so are skipped.
        return spark.read.format(format).schema(schema).options(**options).load(root)
    files = [
        (f"{_BATCH}{batch}/{name}", batch) for batch, record in batches for name in record["files"]
    ]
    return read_listed(spark, root, files, format=format, schema=schema, options=options)


def _relative(folder: str, paths: list[str]) -> list[str]:
    """`paths` (as `list_files` names them) relative to `folder`."""
    prefix = storage.join(folder, "")
    return [path[len(prefix) :] for path in paths]


def _orphans(folder: str, published_files: list[str]) -> list[str]:
    """Data files in `folder` that `published_files` does not list: crashed attempts' files."""
    keep = set(published_files)
    return [name for name in _relative(folder, list_files(folder)) if name not in keep]


def _remove(folder: str, names: list[str]) -> None:
    if not names:
        return
    filesystem, location = storage.filesystem(folder)
    for name in names:
        try:
            filesystem.delete_file(f"{location.rstrip('/')}/{name}")
        except FileNotFoundError:
            pass  # the winner cleaned it up first
        except OSError as exc:
            log.warning(
                "could not remove %s/%s (invisible, but takes space): %s", folder, name, exc
            )
    log.info("removed %d unpublished files from %s", len(names), folder)
