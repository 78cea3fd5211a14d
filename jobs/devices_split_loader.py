"""Load devices JSON once into a raw and an enriched Delta table (Parallel Split), exactly once.

    spark-submit jobs/devices_split_loader.py --input data/devices \
        --raw-output data/tables/devices_raw --enriched-output data/tables/devices_enriched \
        --batch-id 1 [--app-id devices_split_loader] [--max-parallel 2] [--fail-fast]

The input is read and persisted once; both branches append under their own Delta app id
(`<app id>.raw`, `<app id>.enriched`) with `txnVersion = --batch-id`. If one branch fails, rerun
with the same batch id: the branch that committed is skipped, the other writes, and each table
holds every input row once.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_flow.arguments import (
    JobParser,
    batch_id,
    existing_input,
    folder_location,
    positive_int,
)
from spark_flow.fan_out import Branch, ParallelSplit, SplitReport
from spark_flow.jobs import job_main

from _schemas import DEVICE_SCHEMA

NAME = "devices_split_loader"


def enrich(devices: DataFrame) -> DataFrame:
    return devices.withColumn("loading_time", F.current_timestamp()).withColumn(
        "full_name", F.concat_ws(" ", "full_name", "version")
    )


def parser() -> JobParser:
    parser = JobParser(prog=NAME, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--input", required=True, type=existing_input, help="folder of devices JSON lines"
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
    parser.add_argument("--app-id", default=NAME, help="Delta app id prefix (default: %(default)s)")
    parser.add_argument("--max-parallel", type=positive_int, default=None, help="branches at once")
    parser.add_argument("--fail-fast", action="store_true", help="cancel branches on a failure")
    return parser


def devices_split(
    raw: str, enriched: str, *, max_parallel: int | None = None, fail_fast: bool = False
) -> ParallelSplit:
    """The raw and enriched branches; devices_stream_loader runs the same split per micro-batch."""
    return ParallelSplit(
        NAME,
        [Branch("raw", raw), Branch("enriched", enriched, enrich)],
        max_parallel=max_parallel,
        fail_fast=fail_fast,
    )


def run(spark: SparkSession, args: argparse.Namespace) -> SplitReport:
    split = devices_split(
        args.raw_output, args.enriched_output, max_parallel=args.max_parallel,
        fail_fast=args.fail_fast,
    )  # fmt: skip
    devices = spark.read.schema(DEVICE_SCHEMA).json(args.input)
    return split.run(devices, app_id=args.app_id, txn_version=args.batch_id)


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(NAME, parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
