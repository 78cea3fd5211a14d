"""Daily visit trends per page: day D against day D-1, built on the previous run's output.

    spark-flow backfill visits_trends --start 2024-01-01 --end 2024-01-07 \
        -- --input data/visits --date {ds} --output data/tables/visits_trends

`--input` is a folder of `date=D/hour=HH/` visit partitions (JSON lines) or a Delta table with
`date` and `page` columns, one row per visit. Each run counts day D's visits per page and takes
day D-1's counts from its own output table, so the run for D needs the run for D-1 to have
succeeded first: the job is sequential with depends_on_past (the chapter's Example 6-21).
Concurrent runs would read a previous day that is not written yet and report no trend.
A run replaces its date's partition, so reruns never duplicate a day.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_flow import delta, storage
from spark_flow.arguments import (
    JobParser,
    existing_folder,
    folder_location,
    iso_date,
    separate_locations,
)
from spark_flow.errors import InvalidArgumentError
from spark_flow.files import read_files
from spark_flow.jobs import MERGED, JobReport, job_main
from spark_flow.runners import RunPolicy
from spark_flow.validation import Accounting, Tally, Validation, permissive

from _schemas import VISIT_SCHEMA

NAME = "visits_trends"
RULES = Validation([], name="trends")  # parsing is the only check: every parsed visit counts
# What a run reads back from its output: the previous day's visits per page.
TRENDS_COLUMNS = ("date", "page", "visits")
POLICY = RunPolicy(
    sequential=True,
    depends_on_past=True,
    reason="each day's trend reads the counts the previous day's run wrote",
)


def parser() -> JobParser:
    parser = JobParser(prog=NAME, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--input",
        required=True,
        type=existing_folder,
        help="visit partitions folder or Delta table",
    )
    parser.add_argument("--date", required=True, type=iso_date, help="YYYY-MM-DD")
    parser.add_argument(
        "--output", required=True, type=folder_location, help="Delta table, partitioned by date"
    )
    parser.add_check(separate_locations("--input", "--output"))
    parser.add_check(check_day)
    parser.add_check(check_output)
    return parser


def check_output(args: argparse.Namespace) -> None:
    """An existing output is a trends table: each run reads the previous day's counts there."""
    info = delta.table_info(args.output)
    missing = sorted(set(TRENDS_COLUMNS) - set(info.schema.fieldNames())) if info else []
    if info is not None and missing:
        raise InvalidArgumentError(
            "--output",
            f"expected a table of visit trends (columns {list(TRENDS_COLUMNS)}), found a Delta "
            f"table without {missing}",
            "Point --output at this job's trends table, or at a new folder.",
        )


def check_day(args: argparse.Namespace) -> None:
    """The day's visits are there before Spark starts (exit 2 when they are not)."""
    _day_folder(args.input, args.date)


def _day_folder(source: str, day: date) -> str | None:
    """Day `day`'s partition folder under `source`; None when `source` is a Delta table.

    Raises:
        InvalidArgumentError: neither is there; checked when the arguments are parsed, and
            again when the run reads (a backfill parses every date's arguments first).
    """
    if delta.table_info(source) is not None:
        return None
    folder = storage.join(source, f"date={day.isoformat()}")
    if not storage.exists(folder):
        raise InvalidArgumentError(
            "--input",
            f"expected the visits of {day} under {source!r} (its date={day}/ folder) or a "
            "Delta table, found neither",
            "Load that day first, or check the path and the date.",
        )
    return folder


def visits_of(spark: SparkSession, source: str, day: date) -> DataFrame:
    """Day `day`'s visits, from a Delta table or from its `date=D/` partition folder."""
    folder = _day_folder(source, day)
    if folder is None:
        return delta.read(spark, source).where(F.col("date") == F.lit(day))
    # Malformed lines kept, to be counted and left out: read plainly they are all-null visits.
    # read_files: Arrow in Python workers where Spark has no filesystem for the store (s3://).
    return read_files(spark, folder, format="json", schema=permissive(VISIT_SCHEMA))


def trends(today: DataFrame, previous: DataFrame | None, day: date) -> DataFrame:
    """Visits per page on `day`, next to the previous day's counts and the change."""
    counts = today.groupBy("page").agg(F.count("*").alias("visits"))
    if previous is None:
        counts = counts.withColumn("previous_visits", F.lit(None).cast("long"))
    else:
        before = previous.select("page", F.col("visits").alias("previous_visits"))
        counts = counts.join(before, "page", "full_outer").fillna(
            0, subset=["visits", "previous_visits"]
        )
    change = F.col("visits") - F.col("previous_visits")
    return counts.select(
        F.lit(day).alias("date"),
        "page",
        "visits",
        "previous_visits",
        change.alias("change"),
        F.round(change / F.nullif(F.col("previous_visits"), F.lit(0)), 4).alias("change_ratio"),
    )


@dataclass(frozen=True)
class TrendsReport(JobReport):
    """The day computed, whether the previous day's counts were there, the write, and where
    the visits read went."""

    date: str
    previous_day_found: bool
    written: Mapping[str, object] = field(metadata=MERGED)
    accounting: Accounting


def run(spark: SparkSession, args: argparse.Namespace) -> TrendsReport:
    day, before = args.date, args.date - timedelta(days=1)
    previous = None
    if delta.table_info(args.output) is not None:
        previous = delta.read(spark, args.output).where(F.col("date") == F.lit(before))
        previous = previous if previous.limit(1).count() else None
    tally = Tally(RULES)
    result = trends(tally.valid("trends")(visits_of(spark, args.input, day)), previous, day)
    written = delta.write(
        result, args.output, mode="overwrite", partition_by=["date"],
        replace_where={"date": day.isoformat()},
    )  # fmt: skip
    accounting = tally.accounting(
        {"trends": written.rows_written},
        computed=["trends"],  # the day's partition is replaced: the write always runs
        why="an aggregate: the trends' rows are pages of the visits read, not one per visit",
    )
    return TrendsReport(
        day.isoformat(), previous is not None, written=written.summary(), accounting=accounting
    )


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(NAME, parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
