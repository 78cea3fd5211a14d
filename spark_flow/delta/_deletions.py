"""Dropping the rows deletion vectors remove, inside Spark's Parquet scan.

A row is identified by its file (`_metadata.file_path`) and its position in it
(`_metadata.row_index`). Joining every scanned row against one row per *deleted* row probes a
table as large as the deletions; instead the deleted rows are sent as bitmaps: one build row per
(file, bucket of `2**BUCKET_BITS` rows) that has deletions, carrying the bucket's bits as
`array<bigint>`. Each scanned row finds its bucket by a broadcast left join on one long key
and tests its own bit; rows of buckets without deletions find no bucket and are kept.

The key is `xxhash64(file_path) << 24 | bucket`. A hash may collide, and a collision would drop
rows of the wrong file, so the driver computes the same hash (xxhash64, Spark's seed) for every
file scanned and keys the join on the exact (file path, bucket) pair when two files share
their key bits, or a file could have more buckets than the key holds.
"""

from __future__ import annotations

import logging
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
_SPARK_HASH_SEED = 42  # xxhash64's seed in Spark SQL
_KEY = "_spark_flow_dv_key"
_BUCKET = "_spark_flow_dv_bucket"
_WORDS_COLUMN = "_spark_flow_dv_words"


def without_deleted_rows(
    spark: SparkSession,
    frame: DataFrame,
    deletions: dict[str, np.ndarray[Any, Any]],
    *,
    file_column: str,
    row_column: str,
) -> DataFrame:
    """`frame` without the rows that `deletions` remove.

    Args:
        spark: the session building the bitmaps.
        frame: a scan with each row's `_metadata.file_path` in `file_column` and
            `_metadata.row_index` in `row_column`.
        deletions: `_metadata.file_path` of each scanned file -> its deleted row indexes,
            ascending; every file of the scan has an entry.
        file_column: the column of `frame` holding the file path.
        row_column: the column of `frame` holding the row index.
    """
    spark_names = list(deletions)
    deleted = [rows.astype(np.int64, copy=False) for rows in deletions.values()]
    buckets = [np.unique(rows >> BUCKET_BITS) for rows in deleted]
    words = pa.ListArray.from_arrays(
        pa.array(np.arange(sum(len(b) for b in buckets) + 1, dtype=np.int32) * _WORDS),
        pa.array(np.concatenate([_bitmaps(r, b) for r, b in zip(deleted, buckets, strict=True)])),
    )
    row = F.col(row_column)
    keys = hashed_keys(spark_names, deleted, buckets)
    if keys is None:
        log.info("deletion vectors of %d files joined on (file, bucket): hashed keys could collide",
                 len(deleted))  # fmt: skip
        names = [name for name, b in zip(spark_names, buckets, strict=True) for _ in b]
        columns = {file_column: pa.array(names, pa.string()), _BUCKET: np.concatenate(buckets)}
        on, helper = [file_column, _BUCKET], _BUCKET
        frame = frame.withColumn(_BUCKET, F.shiftright(row, BUCKET_BITS))
    else:
        columns = {_KEY: keys}
        on, helper = [_KEY], _KEY
        frame = frame.withColumn(_KEY, _hashed_key(F.col(file_column), row))
    bitmaps = spark.createDataFrame(pa.table({**columns, _WORDS_COLUMN: words}))
    joined = frame.join(F.broadcast(bitmaps), on=on, how="left")
    return joined.where(_kept(row)).drop(helper, _WORDS_COLUMN)


def _bitmaps(rows: np.ndarray[Any, Any], buckets: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The words of `buckets` (ascending, those holding `rows`), one row of `_WORDS` each, flat."""
    words = np.zeros((len(buckets), _WORDS), dtype=np.uint64)
    at = np.searchsorted(buckets, rows >> BUCKET_BITS)
    bits = np.left_shift(np.uint64(1), (rows & 63).astype(np.uint64))
    np.bitwise_or.at(words, (at, (rows >> 6) & (_WORDS - 1)), bits)
    flat: np.ndarray[Any, Any] = words.view(np.int64).ravel()
    return flat


def hashed_keys(
    spark_names: list[str],
    deleted: list[np.ndarray[Any, Any]],
    buckets: list[np.ndarray[Any, Any]],
) -> np.ndarray[Any, Any] | None:
    """The hashed key of each (file, bucket), flat; None when the keys cannot be trusted.

    The scan computes `_hashed_key` for every row of every file, bucket with deletions or not,
    so the key is unique only if the files' hashes differ in the bits the key keeps and no
    deleted row lies past the buckets the key holds.
    """
    if any(len(rows) and rows[-1] >= _ROW_LIMIT for rows in deleted):
        return None
    hashes = np.array([path_hash(name) for name in spark_names], dtype=np.int64).view(np.uint64)
    prefixes = np.left_shift(hashes, np.uint64(_KEY_BUCKET_BITS))
    if len(np.unique(prefixes)) < len(prefixes):
        return None
    per_bucket = [prefix | b.astype(np.uint64) for prefix, b in zip(prefixes, buckets, strict=True)]
    keys: np.ndarray[Any, Any] = np.concatenate(per_bucket).view(np.int64)
    return keys


def path_hash(name: str) -> int:
    """Spark's `xxhash64(name)` (a signed long) for a string column holding `name`."""
    unsigned = xxhash.xxh64_intdigest(name.encode("utf-8"), seed=_SPARK_HASH_SEED)
    return unsigned - (1 << 64) if unsigned >= 1 << 63 else unsigned


def _hashed_key(file: Column, row: Column) -> Column:
    # Rows past _ROW_LIMIT get no key (kept): their bucket would spill into the hash bits.
    key = F.shiftleft(F.xxhash64(file), _KEY_BUCKET_BITS).bitwiseOR(F.shiftright(row, BUCKET_BITS))
    return F.when(row < _ROW_LIMIT, key)


def _kept(row: Column) -> Column:
    position = F.shiftright(row, 6).bitwiseAND(_WORDS - 1) + 1  # element_at counts from 1
    word = F.element_at(_WORDS_COLUMN, position.cast("int"))
    return F.col(_WORDS_COLUMN).isNull() | (F.getbit(word, row.bitwiseAND(63).cast("int")) == 0)
