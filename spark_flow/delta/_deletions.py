"""Dropping the rows deletion vectors remove, inside Spark's Parquet scan.

A row is identified by its file and its position in it: the row index Spark's Parquet reader
fills into a read-schema column named `ROW_INDEX_COLUMN` (what `_metadata.row_index` reads,
without building the `_metadata` struct for every row). Joining every scanned row against one
row per *deleted* row probes a table as large as the deletions; instead the deleted rows are
sent as bitmaps: one build row per (file, bucket of `2**BUCKET_BITS` rows) that has deletions,
carrying the bucket's bits as `array<bigint>`. Each scanned row finds its bucket by a broadcast
left join on one long key and tests its own bit; rows of buckets without deletions find no
bucket and are kept.

The key is `file << 24 | bucket`, where `file` is the file's size (`_metadata.file_size`) when
the driver has read every scanned file's size from the filesystem and no two are equal, else
`xxhash64(file_path)`. A shared key would drop rows of the wrong file, so the driver computes
the same keys (sizes by `stat`, never the log's `size`, which a writer may have got wrong;
xxhash64 with Spark's seed) and joins on the exact (file path, bucket) pair when two files share
their key bits, or a file could have more buckets than the key holds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import xxhash
from pyspark.sql import functions as F

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)

BUCKET_BITS = 12
"""A bucket holds 2**12 rows: 64 words of bits per build row."""
_WORDS = 1 << (BUCKET_BITS - 6)
_KEY_BUCKET_BITS = 24  # the low bits of the hashed key hold the bucket; the rest, the file's hash
_ROW_LIMIT = 1 << (BUCKET_BITS + _KEY_BUCKET_BITS)  # rows past it have no hashed key
_SIZE_LIMIT = 1 << (63 - _KEY_BUCKET_BITS)  # larger sizes would spill into the sign bit
_SPARK_HASH_SEED = 42  # xxhash64's seed in Spark SQL
_KEY = "_spark_flow_dv_key"
_BUCKET = "_spark_flow_dv_bucket"
_WORDS_COLUMN = "_spark_flow_dv_words"
ROW_INDEX_COLUMN = "_tmp_metadata_row_index"
"""A Parquet read schema's column that Spark fills with each row's index in its file
(`ParquetFileFormat.ROW_INDEX_TEMPORARY_COLUMN_NAME`); the join key fails the read if it is null."""
_ROW = ROW_INDEX_COLUMN

# A row without its index could be a deleted one: fail the read. Only rows that no earlier
# branch of a CASE matched reach this one, so it costs nothing on the others.
_NO_INDEX = (
    f"WHEN {_ROW} IS NULL THEN raise_error('reading a table with deletion vectors: the Parquet "
    f"reader gave a row no index ({_ROW}), so its deletion could not be checked. This Spark "
    "version reads row indexes differently: read the table with "
    "spark.spark_flow.delta.readPath=arrow.')"
)
_KEPT = (
    f"{_WORDS_COLUMN} IS NULL OR getbit("
    f"element_at({_WORDS_COLUMN}, CAST((shiftright({_ROW}, 6) & {_WORDS - 1}) + 1 AS INT)), "
    f"CAST({_ROW} & 63 AS INT)) = 0"
)


@dataclass(frozen=True)
class DeletionJoin:
    """How a scan drops the rows deletion vectors remove.

    Attributes:
        columns: what the scan's projection adds: the join key, or with the exact fallback
            the bucket (`on` then names the file path column too, which the scan must add).
        bitmaps: the build side, one row per (file, bucket) with deletions.
        on: the join's columns.
        kept: the condition a joined row must meet.
    """

    columns: list[Column]
    bitmaps: DataFrame
    on: list[str]
    kept: Column

    def apply(self, scan: DataFrame) -> DataFrame:
        """`scan`, which holds `columns`, without the deleted rows; the helper columns stay."""
        joined = scan.join(F.broadcast(self.bitmaps), on=self.on, how="left")
        return joined.where(self.kept)


def deletion_join(
    spark: SparkSession,
    deletions: dict[str, np.ndarray[Any, Any]],
    *,
    file_column: str,
    sizes: list[int] | None,
) -> DeletionJoin:
    """The join that drops from a scan the rows `deletions` remove.

    The scan reads `ROW_INDEX_COLUMN` and can select `_metadata`. The expressions are SQL text:
    each Column built through the API is a round trip to the JVM on a classic session.

    Args:
        spark: the session building the bitmaps.
        deletions: `_metadata.file_path` of each scanned file -> its deleted row indexes,
            ascending; every file of the scan has an entry.
        file_column: the scan's column of `_metadata.file_path`, if the fallback joins on it.
        sizes: each file's size in bytes as the filesystem lists it (as Spark does), in the
            order of `deletions`; None when the driver could not read them.
    """
    spark_names = list(deletions)
    deleted = [rows.astype(np.int64, copy=False) for rows in deletions.values()]
    buckets = [np.unique(rows >> BUCKET_BITS) for rows in deleted]
    words = pa.ListArray.from_arrays(
        pa.array(np.arange(sum(len(b) for b in buckets) + 1, dtype=np.int32) * _WORDS),
        pa.array(np.concatenate([_bitmaps(r, b) for r, b in zip(deleted, buckets, strict=True)])),
    )
    prefixes = file_prefixes(spark_names, deleted, sizes)
    if prefixes is None:
        log.info("deletion vectors of %d files joined on (file, bucket): hashed keys could collide",
                 len(deleted))  # fmt: skip
        names = [name for name, b in zip(spark_names, buckets, strict=True) for _ in b]
        build = {file_column: pa.array(names, pa.string()), _BUCKET: np.concatenate(buckets)}
        on = [file_column, _BUCKET]
        bucket = f"CASE WHEN {_ROW} >= 0 THEN shiftright({_ROW}, {BUCKET_BITS}) {_NO_INDEX} END"
        columns = [F.expr(bucket).alias(_BUCKET)]
    else:
        shifted, by_size = prefixes
        keys = [prefix | b.astype(np.uint64) for prefix, b in zip(shifted, buckets, strict=True)]
        build = {_KEY: np.concatenate(keys).view(np.int64)}
        on = [_KEY]
        file = "_metadata.file_size" if by_size else "xxhash64(_metadata.file_path)"
        log.debug("deletion vectors of %d files joined on the file's %s and the bucket",
                  len(deleted), "size" if by_size else "path hash")  # fmt: skip
        columns = [F.expr(_key_sql(file)).alias(_KEY)]
    bitmaps = spark.createDataFrame(pa.table({**build, _WORDS_COLUMN: words}))
    return DeletionJoin(columns, bitmaps, on, F.expr(_KEPT))


def _bitmaps(rows: np.ndarray[Any, Any], buckets: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The words of `buckets` (ascending, those holding `rows`), one row of `_WORDS` each, flat."""
    words = np.zeros((len(buckets), _WORDS), dtype=np.uint64)
    at = np.searchsorted(buckets, rows >> BUCKET_BITS)
    bits = np.left_shift(np.uint64(1), (rows & 63).astype(np.uint64))
    np.bitwise_or.at(words, (at, (rows >> 6) & (_WORDS - 1)), bits)
    flat: np.ndarray[Any, Any] = words.view(np.int64).ravel()
    return flat


def file_prefixes(
    spark_names: list[str],
    deleted: list[np.ndarray[Any, Any]],
    sizes: list[int] | None,
) -> tuple[np.ndarray[Any, Any], bool] | None:
    """Each file's part of the join key, shifted into place, and whether it is the file's size
    (else the hash of its path); None when no key can be trusted.

    The scan computes the key for every row of every file, bucket with deletions or not, so
    it is unique only if the files' prefixes differ and no deleted row lies past the buckets
    the key holds.
    """
    if any(len(rows) and rows[-1] >= _ROW_LIMIT for rows in deleted):
        return None
    if sizes is not None and all(0 <= size < _SIZE_LIMIT for size in sizes):
        by_size = np.left_shift(np.array(sizes, dtype=np.uint64), np.uint64(_KEY_BUCKET_BITS))
        if len(np.unique(by_size)) == len(by_size):
            return by_size, True
    hashes = np.array([path_hash(name) for name in spark_names], dtype=np.int64).view(np.uint64)
    by_hash = np.left_shift(hashes, np.uint64(_KEY_BUCKET_BITS))
    if len(np.unique(by_hash)) == len(by_hash):
        return by_hash, False
    return None


def path_hash(name: str) -> int:
    """Spark's `xxhash64(name)` (a signed long) for a string column holding `name`."""
    unsigned = xxhash.xxh64_intdigest(name.encode("utf-8"), seed=_SPARK_HASH_SEED)
    return unsigned - (1 << 64) if unsigned >= 1 << 63 else unsigned


def _key_sql(file: str) -> str:
    """The join key of a row of the file whose prefix is the SQL `file`."""
    # Rows past _ROW_LIMIT get no key (kept): their bucket would spill into the file's bits.
    key = f"shiftleft({file}, {_KEY_BUCKET_BITS}) | shiftright({_ROW}, {BUCKET_BITS})"
    return f"CASE WHEN {_ROW} < {_ROW_LIMIT} THEN {key} {_NO_INDEX} END"
