"""Load devices JSON once into a raw and an enriched Delta table (Parallel Split), exactly once.

    spark-submit jobs/devices_split_loader.py --input data/devices \
        --raw-output data/tables/devices_raw --enriched-output data/tables/devices_enriched \
        --batch-id 1 [--app-id devices_split_loader] [--max-parallel 2] [--fail-fast]

The input is read (malformed lines kept) and persisted once; the branches append under their own
Delta app id (`<app id>.raw`, `<app id>.enriched`, `<app id>.quarantine`) with `txnVersion =
--batch-id`: the parsed rows to both tables, the lines Spark could not parse, with their reason,
to the quarantine table `<raw output>/_spark_flow_quarantine`. The report accounts for every
row: read = written + rejected, for each table. If one branch fails, rerun with the same batch
id: the branches that committed are skipped, the others write, and each table holds every input
row once.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_flow.arguments import (
    JobParser,
    batch_id,
    existing_input,
    folder_location,
    identifier,
    positive_int,
    separate_locations,
)
from spark_flow.fan_out import Branch, ParallelSplit, SplitReport
from spark_flow.files import read_files
from spark_flow.jobs import MERGED, JobReport, job_main
from spark_flow.validation import (
    QUARANTINE,
    Accounting,
    Tally,
    Validation,
    permissive,
    quarantine_path,
)

from _schemas import DEVICE_SCHEMA

NAME = "devices_split_loader"
# No rule beyond parsing: the raw table holds the rows as read, the malformed lines go aside.
RULES = Validation([], name="devices")


def enrich(devices: DataFrame) -> DataFrame:
    return devices.withColumn("loading_time", F.current_timestamp()).withColumn(
        "full_name", F.concat_ws(" ", "full_name", "version")
    )


def parser() -> JobParser:
    parser = JobParser(prog=NAME, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--input", required=True, type=existing_input, help="folder (or file) of devices JSON lines"
    )
    parser.add_argument(
        "--raw-output", required=True, type=folder_location, help="Delta table for the rows as read"
    )
    parser.add_argument(
        "--enriched-output",
        required=True,
        type=folder_location,
        help="Delta table for enriched rows",
    )
    parser.add_argument(
        "--batch-id", type=batch_id, required=True, help="txnVersion; a committed batch is skipped"
    )
    parser.add_argument(
        "--app-id", type=identifier, default=NAME, help="Delta app id prefix (default: %(default)s)"
    )
    parser.add_argument("--max-parallel", type=positive_int, default=None, help="branches at once")
    parser.add_argument("--fail-fast", action="store_true", help="cancel branches on a failure")
    parser.add_check(separate_locations("--input", "--raw-output", "--enriched-output"))
    return parser


def devices_split(
    raw: str,
    enriched: str,
    *,
    tally: Tally,
    max_parallel: int | None = None,
    fail_fast: bool = False,
) -> ParallelSplit:
    """The raw, enriched and quarantine branches of one batch, counted by `tally`.

    devices_stream_loader runs the same split per micro-batch (a tally counts one batch).
    """
    return ParallelSplit(
        NAME,
        [
            Branch("raw", raw, tally.valid("raw")),
            Branch("enriched", enriched, lambda d: enrich(tally.valid("enriched")(d))),
            Branch(QUARANTINE, quarantine_path(raw), tally.rejected(QUARANTINE)),
        ],
        max_parallel=max_parallel,
        fail_fast=fail_fast,
    )


def account(tally: Tally, report: SplitReport) -> Accounting:
    """Rows read, written per table, rejected by reason, from the branches that ran."""
    tables = [b for b in report.branches if b.name != QUARANTINE]
    return tally.accounting(
        {b.name: b.rows_written for b in tables},
        computed=[b.name for b in report.branches if b.status == "success"],
        skipped={b.name: b.reason or "" for b in tables if b.status == "already_done"},
    )


@dataclass(frozen=True)
class SplitLoaderReport(JobReport):
    """The split's report (its keys as before) and where every input row went."""

    split: SplitReport = field(metadata=MERGED)
    accounting: Accounting


def run(spark: SparkSession, args: argparse.Namespace) -> SplitLoaderReport:
    tally = Tally(RULES)
    split = devices_split(
        args.raw_output, args.enriched_output, tally=tally, max_parallel=args.max_parallel,
        fail_fast=args.fail_fast,
    )  # fmt: skip
    devices = read_files(spark, args.input, format="json", schema=permissive(DEVICE_SCHEMA))
    # Classified before the split persists it: once, not once per branch.
    devices = devices.transform(RULES.classify)
    report = split.run(devices, app_id=args.app_id, txn_version=args.batch_id)
    return SplitLoaderReport(report, account(tally, report))


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(NAME, parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
