"""Parents that are partitions of one dataset, and how complete a fan-in over them is.

`list_partitions` finds which expected partitions (`date=.../hour=HH/`) hold data by listing
folders only; `read_partitions` reads the present ones in one scan. The completeness helpers mark
an Unaligned Fan-In's rows and keep the chapter's companion record of what was missing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from spark_flow import delta, files, storage
from spark_flow._csv_read import JAVA_DOUBLE
from spark_flow._paths import HIVE_NULL, partition_directory
from spark_flow.errors import InvalidArgumentError

COMPLETENESS_DIR = "_spark_flow_completeness"
_INTEGER = re.compile(r"[+-]?[0-9]+")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Spark's partition discovery: a double as Java parses it, a timestamp as yyyy-MM-dd HH:mm:ss[.S].
_DOUBLE = re.compile(rf"{JAVA_DOUBLE.pattern}|NaN|[+-]?Infinity")
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?")


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

    Folders are named as Spark's `partitionBy` names them: a value's `:` or `%` escaped (`a%3Ab`),
    None as `__HIVE_DEFAULT_PARTITION__`.

    Raises:
        InvalidArgumentError: no partition is expected.
        StorageError: the store of `root` cannot be used (`storage.check_reachable`): an unknown
            bucket is named, not taken for every partition missing.

    Example:
        >>> hours = [{"date": "2024-01-01", "hour": f"{h:02d}"} for h in range(24)]
        >>> list_partitions("data/visits", hours).missing
        ('date=2024-01-01/hour=07',)
    """
    # A local root as written (`data/visits/` -> `data/visits`), a store's URI as given.
    base = str(Path(root)) if storage.is_local(str(root)) else str(root).rstrip("/")
    expected = tuple(_folder(p) for p in partitions)
    if not expected:
        raise InvalidArgumentError(
            "partitions", "no partition is expected", "List the partitions the fan-in waits for."
        )
    storage.check_reachable(base)
    present = tuple(p for p in expected if _has_data(storage.join(base, p)))
    missing = tuple(p for p in expected if p not in present)
    return PartitionListing(base, expected, present, missing)


def _folder(partition: Mapping[str, object]) -> str:
    """The partition's folders as Spark's `partitionBy` names them: `a:b` is `a%3Ab`, None (or
    "") is `__HIVE_DEFAULT_PARTITION__`, a boolean `true`."""
    return partition_directory({key: _text(value) for key, value in partition.items()})


def _text(value: object) -> str | None:
    if value is None:
        return None
    return str(value).lower() if isinstance(value, bool) else str(value)


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
    per file, which needs `schema`; the partition columns get the values and types Spark's
    discovery gives them (escapes undone, `__HIVE_DEFAULT_PARTITION__` null; integers,
    doubles, timestamps, dates, else strings).

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
    pyspark), read by Arrow in Python workers, in one scan, with the partition columns as
    Spark's partition discovery gives them."""
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
        F.element_at(F.array(*(F.lit(v) for v in unescaped)), batch)
        .cast(_discovered_type(unescaped)).alias(unquote(key))
        for key, found in values.items()
        for unescaped in [[None if v == HIVE_NULL else unquote(v) for v in found]]
    ]  # fmt: skip
    return df.select(*struct.fieldNames(), *columns)


def _discovered_type(values: Sequence[str | None]) -> str:
    """The type Spark's partition discovery gives these (unescaped) values: integers, decimals
    of whole numbers past a long, doubles, `yyyy-MM-dd HH:mm:ss` timestamps, ISO dates, else
    strings; numbers of several kinds widen to the widest, other mixes are strings."""
    kinds = {_value_type(v) for v in values if v is not None}
    if len(kinds) == 1:
        return kinds.pop()
    if kinds and all(k in ("int", "bigint") for k in kinds):
        return "bigint"
    if kinds and all(k in ("int", "bigint", "double") or k.startswith("decimal") for k in kinds):
        return "double"
    return "string"


def _value_type(value: str) -> str:
    if _INTEGER.fullmatch(value):
        number, digits = int(value), len(value.lstrip("+-"))
        if -(2**31) <= number < 2**31:
            return "int"
        if -(2**63) <= number < 2**63:
            return "bigint"
        if digits <= 38:
            return f"decimal({digits},0)"
    checks = ((_DOUBLE, None, "double"), (_TIMESTAMP, datetime.fromisoformat, "timestamp"),
              (_ISO_DATE, date.fromisoformat, "date"))  # fmt: skip
    for pattern, parse, kind in checks:
        if pattern.fullmatch(value) and (parse is None or _valid(parse, value)):
            return kind
    return "string"


def _valid(parse: Any, value: str) -> bool:
    try:
        parse(value)
    except ValueError:
        return False
    return True


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
