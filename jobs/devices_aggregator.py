"""Count devices per type and version once the loader has marked its table ready.

    spark-submit jobs/devices_aggregator.py --input data/tables/devices \
        --output data/tables/devices_counts [--wait-timeout 600]

Isolated Sequencer, data-based: waits for the loader's readiness marker, reads the table at the
version the marker names, and overwrites the counts idempotently per input version.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import SparkSession

from spark_flow import delta
from spark_flow.arguments import (
    JobParser,
    folder_location,
    positive_seconds,
    seconds,
    separate_locations,
)
from spark_flow.errors import ArgumentLocationError, InputNotReadyError
from spark_flow.jobs import JobReport, job_main
from spark_flow.markers import Marker, read_ready, wait_until_ready
from spark_flow.validation import Accounting, Tally, Validation

NAME = "devices_aggregator"
RULES = Validation([], name="counts")  # the loader validated the rows: every one counts


def parser() -> JobParser:
    parser = JobParser(prog=NAME, description=__doc__.splitlines()[0])
    # The input may not exist yet: the job waits for the loader to mark it ready.
    parser.add_argument(
        "--input", required=True, type=folder_location, help="the loader's Delta table"
    )
    parser.add_argument(
        "--output",
        required=True,
        type=folder_location,
        help="Delta table of counts (overwritten)",
    )
    parser.add_argument("--wait-timeout", type=seconds, default=600.0, help="seconds (default 600)")
    parser.add_argument(
        "--poke-interval", type=positive_seconds, default=5.0, help="seconds between checks"
    )
    parser.add_check(separate_locations("--input", "--output"))
    return parser


@dataclass(frozen=True)
class AggregatorReport(JobReport):
    """The input version counted (and the run that wrote it), the counts' write, and the rows
    read (an aggregate: the counts are groups of them, which the accounting's note says)."""

    input_version: int | None
    input_run_id: str
    committed: bool
    rows_written: int
    table_version: int | None
    accounting: Accounting


def wait_for_input(args: argparse.Namespace) -> Marker:
    """The loader's marker on `--input`, once there (main waits before Spark starts)."""
    try:
        return wait_until_ready(
            args.input, timeout=args.wait_timeout, poke_interval=args.poke_interval
        )
    except InputNotReadyError as exc:  # the job's words: which argument, and its flags
        raise ArgumentLocationError(
            "--input",
            args.input,
            f"expected a table its producer marked ready, found no marker after {exc.waited:.1f}s",
            "Run devices_loader with this --output first, or wait longer (--wait-timeout)",
            str(exc),
        ) from exc


def run(spark: SparkSession, args: argparse.Namespace) -> AggregatorReport:
    marker = wait_for_input(args)  # at once when main waited: the marker is there
    tally = Tally(RULES)  # counted by an Observation on the write: no pass of its own
    counts = tally.valid("counts")(read_ready(spark, marker)).groupBy("type", "version").count()
    # One txn version per input version: re-running on the same input writes nothing.
    version = marker.table_version or 0
    result = delta.write(counts, args.output, mode="overwrite", app_id=NAME, txn_version=version)
    accounting = tally.accounting(
        {"counts": result.rows_written},
        computed=["counts"] if result.committed else [],
        why="an aggregate: the counts are (type, version) groups of the rows read",
    )
    return AggregatorReport(
        input_version=marker.table_version,
        input_run_id=marker.run_id,
        committed=result.committed,
        rows_written=result.rows_written,
        table_version=result.table_version,
        accounting=accounting,
    )


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(NAME, parser(), run, argv, before_spark=wait_for_input)


if __name__ == "__main__":
    raise SystemExit(main())
