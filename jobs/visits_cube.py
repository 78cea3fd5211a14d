"""Daily visits cube over 24 hourly partitions: aligned (all hours) or unaligned (completeness).

    spark-submit jobs/visits_cube.py --input data/visits --date 2024-01-01 \
        --output data/tables/visits_cube --mode aligned|unaligned [--min-completeness 0.5]

Fan-in: the hours present under `--input/date=D/hour=HH/` are listed (no data read) and read in
one scan. `aligned` needs all 24 (Aligned Fan-In: a missing hour fails the run, listing the
missing hours, and writes nothing). `unaligned` runs with at least one hour and
`--min-completeness` of them, and marks every row with `completeness` and `is_approximate`; a
companion record in `<output>/_spark_flow_completeness` says which hours were missing. The
cube is `GROUP BY CUBE(page, browser, country)` with visit counts and duration sums; each run
replaces its date's partition of the output, so reruns never duplicate a day.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import date
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from spark_flow import delta
from spark_flow.errors import InvalidArgumentError
from spark_flow.fan_in import (
    CompletenessRecord,
    FanIn,
    list_partitions,
    read_partitions,
    with_completeness,
    write_completeness,
)
from spark_flow.generate import VISIT_SCHEMA
from spark_flow.jobs import job_main

NAME = "visits_cube"


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=NAME, description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="root of date=D/hour=HH/ partitions")
    parser.add_argument("--date", required=True, type=date.fromisoformat, help="YYYY-MM-DD")
    parser.add_argument("--output", required=True, help="Delta table, partitioned by date")
    parser.add_argument("--mode", required=True, choices=("aligned", "unaligned"))
    parser.add_argument(
        "--min-completeness", type=float, default=0.0, help="unaligned: least fraction of hours"
    )
    return parser


def run(spark: SparkSession, args: argparse.Namespace) -> dict[str, Any]:
    day = args.date.isoformat()
    hours = [{"date": day, "hour": f"{hour:02d}"} for hour in range(24)]
    listing = list_partitions(args.input, hours)
    rule = (
        {"trigger_rule": "all_success"}
        if args.mode == "aligned"
        else {"trigger_rule": "one_success", "min_completeness": args.min_completeness}
    )
    fan_in = FanIn.from_partitions(
        f"{NAME}.{day}",
        listing,
        lambda found: read_partitions(spark, found, format="json", schema=VISIT_SCHEMA),
        **rule,
    )
    result = fan_in.run()
    if result.data is None:  # both rules need a present hour; kept for a clear message anyway
        raise InvalidArgumentError("--input", f"no hour of {day} under {args.input}", "Load it.")
    cube = (
        result.data.cube("page", "browser", "country")
        .agg(F.count("*").alias("visits"), F.sum("duration_ms").alias("duration_ms"))
        .withColumn("date", F.lit(args.date))
    )
    written = delta.write(
        with_completeness(cube, result.completeness),
        args.output,
        mode="overwrite",
        partition_by=["date"],
        replace_where={"date": day},
    )
    missing = tuple(m.rsplit("hour=", 1)[1] for m in listing.missing)
    write_completeness(
        spark,
        args.output,
        CompletenessRecord(NAME, day, len(listing.expected), len(listing.present), missing),
    )
    return {
        "date": day,
        "mode": args.mode,
        "hours_present": len(listing.present),
        "missing_hours": list(missing),
        "completeness": result.completeness,
        **written.summary(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(NAME, parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
