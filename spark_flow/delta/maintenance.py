"""Table maintenance: compact small files (`optimize`) and delete unreferenced ones (`vacuum`).

Our own patterns make small files: micro-batches, daily backfills, ten-row writes spread over
every core. Crashes leave orphans: files published by a writer that died before its commit, and
its staging folder. `optimize` rewrites a partition's small files into few large ones in one
commit that changes no data (`dataChange=false` on every action), so streaming readers skip it
and every `(app_id, txn_version)` stays in the log: a replay of a compacted batch is still
skipped. `vacuum` deletes what no version within the retention references, staging leftovers
included, once they are older than the retention.

Both work on local or mounted tables (the delta-rs backend's commits need a rename).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

import pyarrow as pa

from spark_flow import storage
from spark_flow.delta import _compact, _log
from spark_flow.delta._files import partition_text
from spark_flow.delta._types import OptimizeReport, VacuumReport
from spark_flow.delta._validate import COMMIT_FILE, DV_FILE
from spark_flow.errors import InvalidArgumentError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["OptimizeReport", "VacuumReport", "optimize", "vacuum"]

log = logging.getLogger(__name__)

DEFAULT_TARGET_FILE_SIZE = 128 * 1024 * 1024
DEFAULT_RETENTION_HOURS = 168.0
_RETENTION_PROPERTY = "delta.deletedFileRetentionDuration"
_CHANGE_DATA = "_change_data"
_INTERVAL = re.compile(r"^\s*interval\s+(\d+(?:\.\d+)?)\s+(\w+?)s?\s*$", re.IGNORECASE)
_HOURS_PER_UNIT = {"second": 1 / 3600, "minute": 1 / 60, "hour": 1, "day": 24, "week": 168}


def optimize(
    spark: SparkSession,
    path: str,
    *,
    partition: Mapping[str, object] | None = None,
    target_file_size: int = DEFAULT_TARGET_FILE_SIZE,
    min_files: int = 2,
) -> OptimizeReport:
    """Compact the small files of the Delta table at `path` (bin-packing, run by Spark).

    In each partition holding at least `min_files` files smaller than `target_file_size`, those
    files are packed into bins of about that size, and each bin is rewritten as one file. One
    commit removes the small files and adds the new ones, all with `dataChange=false`: the rows
    do not change, streaming readers ignore it, and the app transactions stay in the log. A
    concurrent append is kept (the commit goes on top of it); when a concurrent commit removed
    files this one compacts (an overwrite), nothing is committed and the report says why.

    Args:
        spark: the session whose executors read and write the files.
        path: a local or mounted Delta table.
        partition: compact only this partition, e.g. `{"date": "2024-01-01"}`.
        target_file_size: the size of the files to write, in bytes (128 MiB).
        min_files: the fewest small files that make a partition worth compacting (>= 2).

    Returns:
        The files removed and added and the version committed.

    Raises:
        NotADeltaTableError: nothing at `path` is a Delta table.
        UnsupportedDeltaFeatureError: a file has a deletion vector, or the table uses column
            mapping or row tracking: such files cannot be rewritten as plain Parquet.
        InvalidArgumentError: a bad size or count, a partition naming non-partition columns, or
            a path on an object store.

    Example:
        >>> report = optimize(spark, "data/tables/events")
        >>> report.files_removed, report.files_added
        (480, 1)
    """
    if (
        isinstance(target_file_size, bool)
        or not isinstance(target_file_size, int)
        or (target_file_size <= 0)
    ):
        raise InvalidArgumentError(
            "target_file_size",
            f"expected a size in bytes > 0, got {target_file_size!r}",
            "Pass e.g. 128 * 1024 * 1024.",
        )
    if isinstance(min_files, bool) or not isinstance(min_files, int) or min_files < 2:
        raise InvalidArgumentError(
            "min_files",
            f"expected an integer >= 2, got {min_files!r}",
            "Compaction merges at least two files; pass 2 or more.",
        )
    root = _root(path, "optimize rewrites files")
    wanted = None if partition is None else {c: _text(v) for c, v in partition.items()}
    return _compact.compact(
        spark, path, root, wanted=wanted, target_file_size=target_file_size, min_files=min_files
    )


def _text(value: object) -> str | None:
    """A partition value given to `optimize` as text (None: the null partition); the plan reads
    it as a value of its column's type."""
    return value if isinstance(value, str) or value is None else str(partition_text(value))


def vacuum(
    path: str,
    *,
    retention_hours: float = DEFAULT_RETENTION_HOURS,
    dry_run: bool = False,
    enforce_retention_duration: bool = True,
) -> VacuumReport:
    """Delete the files of the Delta table at `path` that no version within the retention uses.

    A file goes when no version committed within the last `retention_hours` (nor the version
    current at its start) references it and it was last written before then: files of
    compacted or overwritten versions, change data files (`_change_data/`) of older versions,
    files a writer published but never committed. Deletion vector files stay, used or not.
    Staging folders of writers gone for longer are removed too; young ones may belong to a
    writer still running and stay, which is why Delta refuses short retentions. No Spark job
    runs.

    Args:
        path: a local or mounted Delta table.
        retention_hours: how far back versions stay readable (time travel) and how old a file
            must be to go.
        dry_run: only report what would be deleted.
        enforce_retention_duration: refuse a retention below the table's
            `delta.deletedFileRetentionDuration` (7 days), as Delta's `retentionDurationCheck`.
            Pass False only when no reader or writer can be using files that old.

    Returns:
        The files and staging folders deleted (or to delete) and their bytes.

    Raises:
        NotADeltaTableError: nothing at `path` is a Delta table.
        InvalidArgumentError: a retention below the table's minimum, or a path on an object store.
        UnsupportedDeltaFeatureError: the table lists `vacuumProtocolCheck` and writer features
            this backend does not honour.

    Example:
        >>> vacuum("data/tables/events", dry_run=True).files
        ('part-00000-3f2a....snappy.parquet',)
    """
    root = _root(path, "vacuum deletes files")
    table = _log.require_table(str(root))
    _log.check_vacuumable(path, table)
    minimum = _min_retention_hours(table.metadata().configuration)
    if (
        isinstance(retention_hours, bool)
        or not isinstance(retention_hours, (int, float))
        or (retention_hours < 0 or math.isnan(retention_hours))
    ):
        raise InvalidArgumentError(
            "retention_hours", f"expected hours >= 0, got {retention_hours!r}", "Pass e.g. 168."
        )
    if enforce_retention_duration and retention_hours < minimum:
        raise InvalidArgumentError(
            "retention_hours",
            f"{retention_hours:g} hours is below the table's {_RETENTION_PROPERTY} of "
            f"{minimum:g} hours; readers of older versions and writers still publishing files "
            "could lose them",
            "Keep the retention, or pass enforce_retention_duration=False when no reader or "
            "writer can be using files that old.",
        )
    cutoff = time.time() - retention_hours * 3600
    referenced = _referenced(root, cutoff)
    files = [
        (relative, size)
        for relative, size, mtime in _data_files(root)
        # Deletion vector files stay: the log names them by encoded descriptors, not paths,
        # and deleting one a version still uses breaks that version for every reader.
        if relative not in referenced and mtime < cutoff and not DV_FILE.search(relative)
    ]
    staging = [(write_id, size) for write_id, size, mtime in _staging(root) if mtime < cutoff]
    if not dry_run:
        for relative, _ in files:
            Path(root, relative).unlink(missing_ok=True)
        for write_id, _ in staging:
            shutil.rmtree(Path(root, storage.STAGING_DIR, write_id), ignore_errors=True)
        _remove_empty_folders(root)
    report = VacuumReport(
        path=path,
        dry_run=dry_run,
        files=tuple(sorted(relative for relative, _ in files)),
        staging=tuple(sorted(write_id for write_id, _ in staging)),
        bytes=sum(size for _, size in files) + sum(size for _, size in staging),
    )
    log.info(
        "vacuum %s%s: %d files, %d staging folders, %d bytes",
        path, " (dry run)" if dry_run else "", len(report.files), len(report.staging),
        report.bytes,
    )  # fmt: skip
    return report


def _root(path: str, purpose: str) -> Path:
    return storage.local_folder(
        path,
        purpose=f"{purpose} of the table in place with renames and deletes",
        fix="Run it on a local or mounted path, or with the delta-spark connector.",
    )


def _min_retention_hours(configuration: Mapping[str, str | None]) -> float:
    raw = configuration.get(_RETENTION_PROPERTY)
    if raw is None:
        return DEFAULT_RETENTION_HOURS
    match = _INTERVAL.match(raw)
    unit = None if match is None else _HOURS_PER_UNIT.get(match.group(2).lower())
    if match is None or unit is None:
        raise InvalidArgumentError(
            _RETENTION_PROPERTY,
            f"the table property is {raw!r}; expected e.g. 'interval 7 days'",
            "Fix the table property (units: seconds, minutes, hours, days, weeks).",
        )
    return float(match.group(1)) * unit


def _referenced(root: Path, cutoff: float) -> set[str]:
    """Relative paths of the files any version from the one current at `cutoff` on references.

    That version's files, plus every file added by a later commit: a file removed after
    `cutoff` was in a version still readable by time travel.
    """
    log_dir = root / "_delta_log"
    # Commits only: checkpoints and log compaction files (`<v>.<w>.compacted.json`) repeat
    # the actions of versions the commits already hold.
    commits = sorted(
        (int(found.group(1)), entry.path, entry.stat().st_mtime)
        for entry in os.scandir(log_dir)
        if (found := COMMIT_FILE.match(entry.name))
    )
    before = [version for version, _, mtime in commits if mtime <= cutoff]
    start = before[-1] if before else commits[0][0]
    snapshot = _log.require_table(str(root), start)
    paths = pa.table(snapshot.get_add_actions(flatten=True)).column("path").to_pylist()
    referenced = {_relative(root, unquote(path)) for path in paths}
    for version, commit, _ in commits:
        if version > start:
            referenced.update(_relative(root, added) for added in _added_paths(commit))
    return referenced


def _added_paths(commit: str) -> Iterator[str]:
    with open(commit) as lines:
        for line in lines:
            action = json.loads(line) if line.strip() else {}
            for kind in ("add", "cdc"):  # a later version's data files and change data files
                if kind in action:
                    yield unquote(action[kind]["path"])


def _relative(root: Path, location: str) -> str:
    """A log path relative to the table: as it is, or made so when absolute (a `file:` URI)."""
    if storage.scheme(location) == "file" and not location.startswith(("/", "file:")):
        return os.path.normpath(location)
    return os.path.relpath(storage.absolute(location), root)


def _data_files(root: Path) -> Iterator[tuple[str, int, float]]:
    """(relative path, size, mtime) of every file outside the table's hidden folders."""
    for entry in os.scandir(root):
        if _hidden(entry.name):
            continue
        if entry.is_file(follow_symlinks=False):
            stat = entry.stat()
            yield entry.name, stat.st_size, stat.st_mtime
            continue
        for folder, _, names in os.walk(entry.path):
            for name in names:
                full = os.path.join(folder, name)
                stat = os.stat(full)
                yield os.path.relpath(full, root), stat.st_size, stat.st_mtime


def _hidden(name: str) -> bool:
    """Whether vacuum leaves the table's top-level entry `name` alone.

    As Delta's vacuum: names starting with `_` or `.` (the log, staging, our markers and
    quarantine), except partition folders of `_`-named columns (`_col=value`) and
    `_change_data`, whose change data files no version references once they are old.
    """
    return name.startswith((".", "_")) and "=" not in name and name != _CHANGE_DATA


def _staging(root: Path) -> Iterator[tuple[str, int, float]]:
    """(write id, size, newest mtime) of each staging folder: a writer touches it while alive."""
    staging = root / storage.STAGING_DIR
    if not staging.is_dir():
        return
    for entry in os.scandir(staging):
        size, newest = 0, entry.stat(follow_symlinks=False).st_mtime
        for folder, _, names in os.walk(entry.path):
            newest = max(newest, os.stat(folder).st_mtime)
            for name in names:
                stat = os.stat(os.path.join(folder, name))
                size, newest = size + stat.st_size, max(newest, stat.st_mtime)
        yield entry.name, size, newest


def _remove_empty_folders(root: Path) -> None:
    """Remove the partition folders and the staging folder that deleting files emptied."""
    tops = [root / storage.STAGING_DIR] + [
        Path(entry.path) for entry in os.scandir(root) if entry.is_dir() and not _hidden(entry.name)
    ]
    for top in tops:
        if not top.is_dir():
            continue
        for folder, _, _ in sorted(os.walk(top), key=lambda walked: -len(walked[0])):
            if not os.listdir(folder):
                os.rmdir(folder)
