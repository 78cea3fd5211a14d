"""Stream devices JSON files into a raw and an enriched Delta table, exactly once per micro-batch.

    spark-submit jobs/devices_stream_loader.py --input data/incoming \
        --raw-output data/tables/devices_raw --enriched-output data/tables/devices_enriched \
        --checkpoint data/checkpoints/devices_stream [--available-now | --trigger-once] \
        [--max-files-per-trigger 10] [--app-id devices_stream_loader]

A file-source stream with the devices schema; every micro-batch goes through the same Parallel
Split as devices_split_loader (persisted once, both branches concurrently) inside
`foreachBatch`. Branch `b` writes as `<app id>.b` with the micro-batch id as txnVersion, so a
micro-batch replayed after a crash, or after a failed branch stopped the query, skips the branch
that committed it and writes the other. Keep `--app-id` and `--checkpoint` together: the pair
is the stream's identity. Without a trigger flag the query runs until it is stopped.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.errors import StreamingQueryException
from pyspark.sql import SparkSession

from spark_flow.arguments import JobParser, folder_location, positive_int
from spark_flow.fan_out import SplitReport
from spark_flow.jobs import JobReport, job_main, load

from _schemas import DEVICE_SCHEMA

NAME = "devices_stream_loader"


def parser() -> JobParser:
    parser = JobParser(prog=NAME, description=__doc__.splitlines()[0])
    # The input may not exist yet: files land in it while the stream runs.
    parser.add_argument(
        "--input", required=True, type=folder_location, help="folder the devices JSON files land in"
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
        "--checkpoint", required=True, type=folder_location, help="the query's checkpoint folder"
    )
    parser.add_argument("--app-id", default=NAME, help="Delta app id prefix (default: %(default)s)")
    parser.add_argument(
        "--max-files-per-trigger",
        type=positive_int,
        default=None,
        help="files per micro-batch at most",
    )
    trigger = parser.add_mutually_exclusive_group()
    trigger.add_argument(
        "--available-now", action="store_true", help="process what is there, then stop"
    )
    trigger.add_argument(
        "--trigger-once", action="store_true", help="one micro-batch of everything, then stop"
    )
    return parser


@dataclass(frozen=True)
class StreamReport(JobReport):
    """The micro-batches this run processed; per branch, rows written and batches already done."""

    micro_batches: Sequence[int]
    branches: Mapping[str, Mapping[str, Any]]


def run(spark: SparkSession, args: argparse.Namespace) -> StreamReport:
    split = load("devices_split_loader").devices_split(args.raw_output, args.enriched_output)
    sink = split.for_each_batch(app_id=args.app_id)
    reader = spark.readStream.schema(DEVICE_SCHEMA)
    if args.max_files_per_trigger:
        reader = reader.option("maxFilesPerTrigger", args.max_files_per_trigger)
    writer = (
        reader.json(args.input)
        .writeStream.queryName(NAME)
        .foreachBatch(sink)
        .option("checkpointLocation", args.checkpoint)
    )
    if args.available_now:
        writer = writer.trigger(availableNow=True)
    elif args.trigger_once:
        writer = writer.trigger(once=True)
    try:
        writer.start().awaitTermination()
    except StreamingQueryException as stopped:
        # Spark's message carries the Python traceback and the plan; ours names the branch.
        raise (sink.failure or stopped) from stopped
    return summary(sink.reports)


def summary(reports: Sequence[tuple[int, SplitReport]]) -> StreamReport:
    """Micro-batches this run processed, and per branch: rows written, batches already done."""
    branches: dict[str, dict[str, Any]] = {}
    for batch_id, report in reports:
        for branch in report.branches:
            seen = branches.setdefault(branch.name, {"rows_written": 0, "already_done": []})
            seen["rows_written"] += branch.rows_written
            if branch.status == "already_done":
                seen["already_done"].append(batch_id)
    return StreamReport([batch_id for batch_id, _ in reports], branches)


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(NAME, parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
