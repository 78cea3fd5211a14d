"""Stream devices JSON files into a raw and an enriched Delta table, exactly once per micro-batch.

    spark-submit jobs/devices_stream_loader.py --input data/incoming \
        --raw-output data/tables/devices_raw --enriched-output data/tables/devices_enriched \
        --checkpoint data/checkpoints/devices_stream [--available-now | --trigger-once] \
        [--max-files-per-trigger 10] [--app-id devices_stream_loader]

A file-source stream with the devices schema (malformed lines kept); every micro-batch goes
through the same Parallel Split as devices_split_loader (persisted once, the raw, enriched and
quarantine branches concurrently) inside `foreachBatch`, and is accounted for: rows read,
written per table, rejected by reason. Branch `b` writes as `<app id>.b` with the micro-batch
id as txnVersion, so a micro-batch replayed after a crash, or after a failed branch stopped the
query, skips the branches that committed it and writes the others. Keep `--app-id` and
`--checkpoint` together: the pair is the stream's identity (a new checkpoint under an app id
whose tables hold later batches is refused at its first micro-batch). Without a trigger
flag the query runs until it is stopped. Spark's file source lists `--input` and writes
`--checkpoint` itself, so on an object store both need Spark's connector for it (hadoop-aws
for `s3a://`); without one the run refuses them by name before the query starts. The Delta
outputs may be anywhere.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame, SparkSession

from spark_flow.arguments import (
    JobParser,
    existing_folder,
    folder_location,
    identifier,
    positive_int,
    separate_locations,
)
from spark_flow.errors import InvalidArgumentError
from spark_flow.fan_out import SplitReport
from spark_flow.files import spark_reads
from spark_flow.jobs import JobReport, job_main, load
from spark_flow.outputs import MicroBatchWriter
from spark_flow.validation import Accounting, Tally, permissive

from _schemas import DEVICE_SCHEMA

NAME = "devices_stream_loader"


def parser() -> JobParser:
    parser = JobParser(prog=NAME, description=__doc__.splitlines()[0])
    # Files land in it while the stream runs, but Spark's file source lists it when the query
    # starts: a folder that is not there yet failed the run with Spark's PATH_NOT_FOUND.
    parser.add_argument(
        "--input", required=True, type=existing_folder, help="folder the devices JSON files land in"
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
    parser.add_argument(
        "--app-id", type=identifier, default=NAME, help="Delta app id prefix (default: %(default)s)"
    )
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
    parser.add_check(
        separate_locations("--input", "--raw-output", "--enriched-output", "--checkpoint")
    )
    return parser


@dataclass(frozen=True)
class StreamReport(JobReport):
    """The micro-batches this run processed; per branch, rows written and batches already done;
    the rows read, written per table and rejected by reason, summed over the micro-batches."""

    micro_batches: Sequence[int]
    branches: Mapping[str, Mapping[str, Any]]
    accounting: Accounting


def check_spark_reaches(spark: SparkSession, args: argparse.Namespace) -> None:
    """Spark's file stream source lists `--input` and keeps its offsets in `--checkpoint` with
    its own filesystem: unlike a batch read, no Arrow worker can stand in for it. Asked of the
    session, as only it knows its connectors (a cluster may have hadoop-aws)."""
    for argument in ("--input", "--checkpoint"):
        value = getattr(args, argument[2:])
        if not spark_reads(spark, value):
            raise InvalidArgumentError(
                argument,
                f"a location Spark's own filesystem reaches (a stream's files and checkpoint "
                f"are Spark's to list and write), got {value!r}, on a store this session has "
                "no Hadoop filesystem for",
                "Stream from and checkpoint to a local or mounted folder, or give Spark the "
                "store's connector (hadoop-aws for s3a://); the Delta outputs may stay on it.",
            )


def run(spark: SparkSession, args: argparse.Namespace) -> StreamReport:
    check_spark_reaches(spark, args)
    splitter = load("devices_split_loader")

    def load_batch(batch: DataFrame, batch_id: int) -> tuple[SplitReport, Accounting]:
        tally = Tally(splitter.RULES)  # one per micro-batch: an Observation counts one action
        split = splitter.devices_split(args.raw_output, args.enriched_output, tally=tally)
        report = split.run(batch, app_id=args.app_id, txn_version=batch_id)
        return report, splitter.account(tally, report)

    # The same branches, to tell a restart from a stream started over under a used app id.
    branches = splitter.devices_split(
        args.raw_output, args.enriched_output, tally=Tally(splitter.RULES)
    )
    sink = MicroBatchWriter(
        args.app_id,
        load_batch,
        ahead=lambda batch_id: branches.later_batch(args.app_id, batch_id),
    )
    reader = spark.readStream.schema(permissive(DEVICE_SCHEMA))
    if args.max_files_per_trigger:
        reader = reader.option("maxFilesPerTrigger", args.max_files_per_trigger)
    writer = (
        reader.json(args.input)
        .transform(splitter.RULES.classify)
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


def summary(reports: Sequence[tuple[int, tuple[SplitReport, Accounting]]]) -> StreamReport:
    """Micro-batches this run processed, per branch rows written and batches already done, and
    the micro-batches' accounting summed (its note names the batches whose own has one)."""
    branches: dict[str, dict[str, Any]] = {}
    read, written, rejected = 0, Counter[str](), Counter[str]()
    notes = []
    for batch_id, (report, accounting) in reports:
        for branch in report.branches:
            seen = branches.setdefault(branch.name, {"rows_written": 0, "already_done": []})
            seen["rows_written"] += branch.rows_written
            if branch.status == "already_done":
                seen["already_done"].append(batch_id)
        read += accounting.rows_read
        written.update(accounting.rows_written)
        rejected.update(accounting.rows_rejected)
        if accounting.note:
            notes.append(f"micro-batch {batch_id}: {accounting.note}")
    total = Accounting(read, dict(written), dict(rejected), note="; ".join(notes) or None)
    return StreamReport([batch_id for batch_id, _ in reports], branches, total)


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(NAME, parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
