"""Daily visits cube over 24 hourly partitions: aligned (all hours) or unaligned (completeness).

    spark-submit jobs/visits_cube.py --input data/visits --date 2024-01-01 \
        --output data/tables/visits_cube --mode aligned|unaligned [--min-completeness 0.5]

Fan-in: the hours present under `--input/date=D/hour=HH/` are listed (no data read) and read in
one scan. `aligned` needs all 24 (Aligned Fan-In: a missing hour fails the run, listing the
missing hours, and writes nothing). `unaligned` runs with at least one hour and
`--min-completeness` of them, and marks every row with `completeness` and `is_approximate`; a
companion record in `<output>/_spark_flow_completeness` says which hours were missing. The
cube is `GROUP BY CUBE(page, browser, country)` with visit counts and duration sums; each run
replaces its date's partition of the output, so reruns never duplicate a day. Lines Spark cannot
parse are left out of the cube and counted; the report says the rows read, the cube rows
written (an aggregate: not one per row read) and the rows rejected.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from spark_flow.arguments import (
    JobParser,
    existing_folder,
    folder_location,
    fraction,
    iso_date,
    separate_locations,
)
from spark_flow.fan_in import read_partitions
from spark_flow.jobs import MERGED, JobReport, job_main
from spark_flow.validation import Accounting, Tally, Validation, permissive

from _recipes import check_completeness, fan_in_day
from _schemas import VISIT_SCHEMA

NAME = "visits_cube"
RULES = Validation([], name="cube")  # parsing is the only check: every parsed visit counts


def parser() -> JobParser:
    parser = JobParser(prog=NAME, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--input", required=True, type=existing_folder, help="root of date=D/hour=HH/ partitions"
    )
    parser.add_argument("--date", required=True, type=iso_date, help="YYYY-MM-DD")
    parser.add_argument(
        "--output", required=True, type=folder_location, help="Delta table, partitioned by date"
    )
    parser.add_argument("--mode", required=True, choices=("aligned", "unaligned"))
    parser.add_argument(
        "--min-completeness", type=fraction, default=0.0, help="unaligned: least fraction of hours"
    )
    parser.add_check(separate_locations("--input", "--output"))
    parser.add_check(check_completeness)
    return parser


@dataclass(frozen=True)
class CubeReport(JobReport):
    """The fan-in mode, the day's hours present and missing, completeness and write, and where
    the rows read went."""

    mode: str
    day: Mapping[str, Any] = field(metadata=MERGED)
    accounting: Accounting


def run(spark: SparkSession, args: argparse.Namespace) -> CubeReport:
    tally = Tally(RULES)
    schema = permissive(VISIT_SCHEMA)  # malformed lines kept, to be counted
    report = fan_in_day(
        spark,
        NAME,
        root=args.input,
        day=args.date.isoformat(),
        hours=range(24),
        mode=args.mode,
        min_completeness=args.min_completeness,
        read=lambda found: read_partitions(spark, found, format="json", schema=schema),
        aggregate=lambda visits: (
            tally.valid("cube")(visits)
            .cube("page", "browser", "country")
            .agg(F.count("*").alias("visits"), F.sum("duration_ms").alias("duration_ms"))
        ),
        output=args.output,
    )
    accounting = tally.accounting(
        {"cube": report["rows_written"]},
        computed=["cube"],  # the day's partition is replaced: the write always runs
        why="an aggregate: the cube's rows are groups of the visits read, not one per visit",
    )
    return CubeReport(args.mode, day=report, accounting=accounting)


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(NAME, parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
