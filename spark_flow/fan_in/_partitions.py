"""Parents that are partitions of one dataset, and how complete a fan-in over them is.

`list_partitions` finds which expected partitions (`date=.../hour=HH/`) hold data by listing
folders only; `read_partitions` reads the present ones in one scan. The completeness helpers mark
an Unaligned Fan-In's rows and keep the chapter's companion record of what was missing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from spark_flow import delta, files, storage
from spark_flow.errors import InvalidArgumentError

COMPLETENESS_DIR = "_spark_flow_completeness"
_INTEGER = re.compile(r"-?[0-9]+")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class PartitionListing:
    """Which expected partitions of a dataset exist, found by listing folders only."""

    root: str
    expected: tuple[str, ...]
    present: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def completeness(self) -> float:
        return len(self.present) / len(self.expected) if self.expected else 0.0


def list_partitions(
    root: str | Path, partitions: Sequence[Mapping[str, object]]
) -> PartitionListing:
    """List `root/k1=v1/k2=v2/` for each expected partition; present = holds a data file.

    Example:
        >>> hours = [{"date": "2024-01-01", "hour": f"{h:02d}"} for h in range(24)]
        >>> list_partitions("data/visits", hours).missing
        ('date=2024-01-01/hour=07',)
    """
    # A local root as written (`data/visits/` -> `data/visits`), a store's URI as given.
    base = str(Path(root)) if storage.is_local(str(root)) else str(root).rstrip("/")
    expected = tuple("/".join(f"{k}={v}" for k, v in p.items()) for p in partitions)
    if not expected:
        raise InvalidArgumentError(
            "partitions", "no partition is expected", "List the partitions the fan-in waits for."
        )
    present = tuple(p for p in expected if _has_data(storage.join(base, p)))
    missing = tuple(p for p in expected if p not in present)
    return PartitionListing(base, expected, present, missing)


def _has_data(folder: str) -> bool:
    # One listing per partition, on a disk or a store, read as Spark's file index reads it: a
    # folder of only `_SUCCESS` or `.crc` files holds no data, and neither does one whose files
    # are all below a hidden folder (`_temporary/`, a producer's committer still writing).
    return not all(
        files.hidden_from_spark(name) for name in storage.list_files(folder, recursive=True)
    )


def read_partitions(
    spark: Any,
    listing: PartitionListing,
    *,
    format: str = "parquet",
    schema: str | StructType | None = None,
    options: Mapping[str, str] | None = None,
) -> DataFrame:
    """Read the present partitions in one scan, keeping the partition values as columns.

    One reader over all the paths lets Spark pack many small files into few tasks, where N
    reads and a union plan N scans. On a store Spark has no filesystem for (`s3://` on a plain
    pip pyspark) the files are read by Arrow in Python workers (`spark_flow.files`), one task
    per file, which needs `schema`; the partition columns are typed as Spark's discovery types
    them (integers, `YYYY-MM-DD` dates, else strings).

    Raises:
        InvalidArgumentError: no expected partition is present, or a store read without
            `schema`.
    """
    if not listing.present:
        raise InvalidArgumentError(
            "listing",
            f"none of the {len(listing.expected)} expected partitions under {listing.root} exists",
            "Wait for the producer, or check the root and the partition names.",
        )
    if not files.spark_reads(spark, listing.root):
        return _read_with_arrow(spark, listing, format=format, schema=schema, options=options)
    # Listed in this process: absolute here, or a Spark Connect server would resolve a relative
    # root against its own working folder and read other files, or none.
    root = storage.absolute(listing.root)
    reader = spark.read.format(format).option("basePath", root).options(**(options or {}))
    if schema is not None:
        reader = reader.schema(schema)
    paths = [storage.join(root, p) for p in listing.present]
    df: DataFrame = reader.load(paths)
    return df


def _read_with_arrow(
    spark: Any,
    listing: PartitionListing,
    *,
    format: str,
    schema: str | StructType | None,
    options: Mapping[str, str] | None,
) -> DataFrame:
    """The present partitions on a store Spark has no filesystem for (`s3://` on a plain pip
    pyspark), read by Arrow in Python workers, in one scan, with the partition columns typed
    as Spark's partition discovery types them (integers, dates, else strings)."""
    if schema is None:
        raise InvalidArgumentError(
            "schema",
            f"a schema to read the partitions under {listing.root} with Arrow (Spark has no "
            "filesystem for that store, and Arrow workers infer none), got none",
            "Pass schema=, e.g. the DDL string of the files' columns.",
        )
    # A DDL string parsed by Spark: no job runs.
    struct = schema if isinstance(schema, StructType) else spark.createDataFrame([], schema).schema
    listed = [
        (file[len(listing.root) + 1 :], index)  # relative to the root, as read_listed takes
        for index, partition in enumerate(listing.present)
        for file in files.list_files(storage.join(listing.root, partition))
    ]
    df = files.read_listed(
        spark, listing.root, listed, format=format, schema=struct, options=options or {}
    )
    # Every present partition spells the same keys in the same order (list_partitions built
    # them from one expected list), so each key's values are looked up by the batch number.
    values: dict[str, list[str]] = {}
    for partition in listing.present:
        for pair in partition.split("/"):
            key, value = pair.split("=", 1)
            values.setdefault(key, []).append(value)
    batch = F.col(files.BATCH_COLUMN).cast("int") + 1  # element_at counts from 1
    columns = [
        F.element_at(F.array(*(F.lit(v) for v in found)), batch).cast(_discovered_type(found))
        .alias(key)
        for key, found in values.items()
    ]  # fmt: skip
    return df.select(*struct.fieldNames(), *columns)


def _discovered_type(values: Sequence[str]) -> str:
    """The type Spark's partition discovery gives these values (`hour=07` is an int, `date=
    2024-01-01` a date), for the forms the fan-ins' partitions take; anything else a string."""
    if all(_INTEGER.fullmatch(v) for v in values):
        return "int" if all(-(2**31) <= int(v) < 2**31 for v in values) else "bigint"
    if all(_ISO_DATE.fullmatch(v) for v in values):
        return "date"
    return "string"


def add_completeness_columns(df: DataFrame, completeness: float) -> DataFrame:
    """Add `completeness` (present / expected parents) and `is_approximate` to every row.

    Works with `DataFrame.transform`: `df.transform(add_completeness_columns, 0.75)`.
    """
    return df.withColumn("completeness", F.lit(float(completeness))).withColumn(
        "is_approximate", F.lit(completeness < 1.0)
    )


@dataclass(frozen=True)
class CompletenessRecord:
    """How complete a fan-in's output is for one logical date (the chapter's companion table)."""

    dataset: str
    logical_date: str
    expected: int
    present: int
    missing: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "missing", tuple(self.missing))
        if not 0 <= self.present <= self.expected:
            raise InvalidArgumentError(
                "present",
                f"{self.dataset} {self.logical_date}: {self.present} present of "
                f"{self.expected} expected",
                "Count the present parents among the expected ones.",
            )

    @property
    def completeness(self) -> float:
        return self.present / self.expected if self.expected else 0.0


def record_completeness(spark: Any, output: str, record: CompletenessRecord) -> str:
    """Store `record` in the Delta table `<output>/_spark_flow_completeness`, one row per date.

    The output's own rows carry their completeness (`add_completeness_columns`); this table
    says which parents were missing, so consumers learn it without scanning the output. A
    rerun for the same date replaces its row.

    Returns:
        The companion table's path.
    """
    path = storage.join(output, COMPLETENESS_DIR)
    row = spark.createDataFrame(
        [(record.dataset, record.logical_date, record.expected, record.present,
          list(record.missing), record.completeness, datetime.now(timezone.utc))],
        "dataset string, logical_date string, expected int, present int, "
        "missing array<string>, completeness double, computed_at timestamp",
    )  # fmt: skip
    delta.write(row, path, mode="overwrite", partition_by=["logical_date"],
                replace_where={"logical_date": record.logical_date})  # fmt: skip
    return path
