"""Dates and timestamps in CSV and JSON files on object stores read as Spark reads them locally.

Spark's own CSV and JSON readers are the oracle: the same values in local files, read by Spark
and by the Arrow readers that object stores get (`csv_batch`, `json_batch`), must agree.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from _sessions import time_zone
from pyspark.sql import SparkSession
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import (
    DateType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from spark_flow._csv_read import csv_batch
from spark_flow._json_read import json_batch

ZONE = "America/New_York"
SCHEMA = StructType(
    [StructField("t", TimestampType()), StructField("n", TimestampNTZType()),
     StructField("d", DateType())]
)  # fmt: skip
TOKENS = [
    "2024-01-02 10:20:30", "2024-01-02T10:20:30.123456789", "2024-01-02 10:20:30.5Z",
    "2024-01-02 10:20:30+01:00", "2024-01-02 10:20:30 +1:00", "2024-01-02 10:20:30-0330",
    "2024-01-02 10:20:30UTC+02", "2024-01-02 10:20:30 GMT-3", "2024-01-02 10:20:30 UT",
    "2024-01-02 10:20:30 Europe/Paris", "2024-01-02 10:20:30 PST", "2024-01-02 10:20:30 EST",
    "2024-01-02 10:20:30 Mars/Olympus", "2024-01-02 10:20:30+19:00", "2024-01-02 10:20:30+01:0030",
    "2024", "2024-1", "2024-1-2", "2024-01-02 3", "2024-01-02 3:4", "2024-01-02T",
    "2024-01-02 10:20", "2024-01-02 10:20Z", "2024-01-02 10:20:30.", "2024-01-02 10:20:30.1.5",
    "2024-01-02 25:00:00", "2024-02-30", "+2024-01-02", "2024-W01-1", "12", "-3", "200", "2024-",
    "  2024-01-02 10:20:30  ", "\u0662\u0660\u0662\u0664-01-02", "2024-01-02 1\u0660:00:00",
    "2024-03-10 02:30:00", "2024-11-03 01:30:00", "2024-01-02T10:20:30 whatever", " T10:20",
    "2024-01-02 whatever", "2024-01-02T99",
]  # fmt: skip
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _as_compared(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Each row with its instant as microseconds since the epoch (zone-free to compare)."""
    return [
        (None if r["t"] is None else (r["t"] - EPOCH) // timedelta(microseconds=1), r["n"], r["d"])
        for r in rows
    ]


@pytest.mark.parametrize("file_format", ["csv", "json"])
def test_dates_and_timestamps_read_from_text_as_spark_reads_them(
    spark: SparkSession, tmp_path: Path, file_format: str
) -> None:
    if file_format == "csv":
        text = "".join(f"{v},{v},{v}\n" for v in TOKENS)
    else:
        text = "".join(json.dumps({"t": v, "n": v, "d": v}) + "\n" for v in TOKENS)
    path = tmp_path / f"values.{file_format}"
    path.write_text(text, encoding="utf-8")
    arrow_schema = to_arrow_schema(SCHEMA, timezone="UTC")

    with time_zone(spark, ZONE):
        read = spark.read.schema(SCHEMA).format(file_format).load(str(path))
        by_spark = read.selectExpr("unix_micros(t) AS t", "n", "d").collect()
    if file_format == "csv":
        ours = csv_batch(path.read_bytes(), SCHEMA, arrow_schema, {}, ZONE)
    else:
        batch = json_batch(path.read_bytes(), SCHEMA, arrow_schema, ZONE)
        assert batch is not None
        ours = batch

    expected = [(r.t, r.n, r.d) for r in by_spark]
    assert list(zip(TOKENS, _as_compared(ours.to_pylist()), strict=True)) == list(
        zip(TOKENS, expected, strict=True)
    )
    assert sum(r[0] is not None for r in expected) > len(TOKENS) / 2  # not all null
