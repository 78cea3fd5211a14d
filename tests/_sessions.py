"""Session settings a test changes for its own duration only (the session is shared)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession

TIME_ZONE = "spark.sql.session.timeZone"


@contextmanager
def time_zone(spark: SparkSession, zone: str) -> Iterator[SparkSession]:
    """`spark` with `zone` as its session time zone, restored afterwards."""
    before = spark.conf.get(TIME_ZONE)
    spark.conf.set(TIME_ZONE, zone)
    try:
        yield spark
    finally:
        spark.conf.set(TIME_ZONE, before)
