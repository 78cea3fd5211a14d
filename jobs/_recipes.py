"""Recipes the bundled jobs share: job code, so it lives beside the jobs, not in spark_flow.

`spark-submit jobs/<job>.py` puts this folder on `sys.path`, and so does `spark_flow.jobs.load`,
so a job imports them by plain name: `from _recipes import fan_in_day`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_flow import delta
from spark_flow.errors import InvalidArgumentError
from spark_flow.fan_in import (
    CompletenessRecord,
    FanIn,
    PartitionListing,
    PartitionParents,
    add_completeness_columns,
    list_partitions,
    record_completeness,
)

__all__ = ["check_completeness", "fan_in_day"]


def check_completeness(args: argparse.Namespace) -> None:
    """`--min-completeness` is the unaligned fan-in's: an aligned one needs every hour, and
    would ignore it."""
    if args.mode == "aligned" and args.min_completeness:
        raise InvalidArgumentError(
            "--min-completeness",
            f"--mode aligned needs every hour, so a least completeness of "
            f"{args.min_completeness} would be ignored",
            "Leave it out, or pass --mode unaligned.",
        )


def fan_in_day(
    spark: SparkSession,
    name: str,
    *,
    root: str,
    day: str,
    hours: Sequence[int],
    mode: Literal["aligned", "unaligned"],
    read: Callable[[PartitionListing], DataFrame],
    aggregate: Callable[[DataFrame], DataFrame],
    output: str,
    min_completeness: float = 0.0,
) -> dict[str, Any]:
    """One day's hourly partitions `root/date=D/hour=HH/` fanned in, aggregated, written as date D.

    `aligned` (Aligned Fan-In) needs every hour in `hours`: a missing one raises
    `TriggerRuleError` naming it, and nothing is written. `unaligned` runs with at least one
    hour and `min_completeness` of them, marks every row with `completeness` and
    `is_approximate`, and records the missing hours with `record_completeness`. The day replaces
    its `date` partition of the Delta table `output`, so a rerun after late data never
    duplicates it.

    Args:
        read: reads the present partitions (e.g. `read_partitions(spark, listing, ...)`).
        aggregate: what is computed over the day's rows; a `date` column is added to it.

    Returns:
        The day's report: hours present, missing hours, completeness and the write's summary.

    Raises:
        TriggerRuleError: an `aligned` day misses an hour, or an `unaligned` one has no hour or
            fewer than `min_completeness` of them; it names the missing hours.
    """
    expected = [{"date": day, "hour": f"{hour:02d}"} for hour in hours]
    listing = list_partitions(root, expected)
    aligned = mode == "aligned"
    fan_in = FanIn(
        f"{name}.{day}",
        PartitionParents(listing, read),
        trigger_rule="all_success" if aligned else "one_success",
        min_completeness=None if aligned else min_completeness,
    )
    report = fan_in.run()
    # Both rules need a present hour, and without a fallback an unmet rule raises, so a report
    # always carries data here: a day without any hour raises TriggerRuleError (see the tests).
    assert report.data is not None
    rows = aggregate(report.data).withColumn("date", F.to_date(F.lit(day)))
    written = delta.write(
        add_completeness_columns(rows, report.completeness),
        output,
        mode="overwrite",
        partition_by=["date"],
        replace_where={"date": day},
    )
    missing = tuple(m.rsplit("hour=", 1)[1] for m in listing.missing)
    record = CompletenessRecord(name, day, len(expected), len(listing.present), missing)
    record_completeness(spark, output, record)
    return {
        "date": day,
        "hours_present": len(listing.present),
        "missing_hours": list(missing),
        "completeness": report.completeness,
        **written.summary(),
    }
