"""Load devices JSON into a Delta table idempotently, then mark it ready for its consumers.

    spark-submit jobs/devices_loader.py --input data/devices --output data/tables/devices \
        --batch-id 1 [--run-id ID] [--trigger devices_aggregator -- --input ... --output ...]

Local Sequencer: read (explicit schema, malformed lines kept) -> validate -> enrich; the sink
writes the valid rows with the idempotent Delta write, the rejected ones (malformed, or failing a
named rule) with their raw line and reason to the quarantine table
`<output>/_spark_flow_quarantine` under the same transaction, then the readiness marker. The
report accounts for every row: read = written + rejected by reason.

Each batch writes under its own app id (`devices_loader.<batch id>`, txn version = batch id):
Delta's txnVersion is a watermark per app id, so with one app id for every batch, an older batch
committed after a newer one would be skipped, which is what a backfill of past dates, or a
concurrent one (`spark-flow backfill --max-active-runs N`), does.
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_flow.arguments import (
    JobParser,
    batch_id,
    existing_input,
    folder_location,
    identifier,
    separate_locations,
)
from spark_flow.errors import StepFailedError
from spark_flow.files import read_files
from spark_flow.jobs import MERGED, JobReport, add_trigger_argument, job_main
from spark_flow.markers import mark_ready
from spark_flow.sequence import LocalSequencer, step
from spark_flow.validation import Accounting, Rule, ValidatedWrite, Validation, permissive

from _schemas import DEVICE_SCHEMA

NAME = "devices_loader"


def enrich(devices: DataFrame) -> DataFrame:
    return devices.withColumn("full_name", F.concat_ws(" ", "full_name", "version"))


RULES = Validation(
    [Rule("type_too_short", "length(type) > 3"), Rule("no_full_name", "full_name IS NOT NULL")],
    name="devices",
)
LOAD = LocalSequencer(NAME, [step("validate", RULES.classify), step("enrich", enrich)])


def parser() -> JobParser:
    parser = JobParser(prog=NAME, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--input", required=True, type=existing_input, help="folder (or file) of devices JSON lines"
    )
    parser.add_argument(
        "--output", required=True, type=folder_location, help="Delta table to append to"
    )
    parser.add_argument(
        "--batch-id", type=batch_id, help="txnVersion; a replayed batch writes nothing"
    )
    parser.add_argument(
        "--run-id", type=identifier, default=None, help="run identifier (default: random)"
    )
    parser.add_argument(
        "--checkpoint-dir",
        type=folder_location,
        default="data/checkpoints",
        help="restart boundaries",
    )
    add_trigger_argument(parser)
    parser.add_check(separate_locations("--input", "--output", "--checkpoint-dir"))
    return parser


@dataclass(frozen=True)
class LoaderReport(JobReport):
    """The run and its batch; the Delta transaction (with a batch id), the write and marker;
    where every row went (`accounting`) and the quarantine's write."""

    run_id: str
    batch_id: int | None
    idempotent: Mapping[str, object] = field(metadata=MERGED)  # app_id, txn_version
    written: Mapping[str, object] = field(metadata=MERGED)  # the write's summary, marker_version
    accounting: Accounting
    quarantine: Mapping[str, object]  # path and the quarantine write's summary


def run(spark: SparkSession, args: argparse.Namespace) -> LoaderReport:
    run_id = args.run_id or uuid.uuid4().hex[:12]
    idempotent: dict[str, Any] = {}
    if args.batch_id is not None:
        idempotent = {"app_id": f"{NAME}.{args.batch_id}", "txn_version": args.batch_id}
    raw = read_files(spark, args.input, format="json", schema=permissive(DEVICE_SCHEMA))
    validated: list[ValidatedWrite] = []

    def write_and_mark(devices: DataFrame) -> dict[str, Any]:
        validated.append(RULES.write(devices, args.output, **idempotent))
        result = validated[0].output
        marker = mark_ready(
            args.output,
            run_id=run_id,
            row_count=result.rows_written,
            table_version=result.table_version,
            batch_id=args.batch_id,
        )
        return {**result.summary(), "marker_version": marker.table_version}

    try:
        outcome = LOAD.run(
            raw, run_id=run_id, checkpoint_dir=args.checkpoint_dir, sink=write_and_mark
        )
    except StepFailedError as failed:
        # The sequence's advice is the library's (`run_id=`, a boundary to resume after); the
        # loader has no boundary, and its batch id is what makes a rerun safe.
        raise StepFailedError(
            failed.sequence, failed.step, failed.cause, _rerun_advice(args.batch_id)
        ) from failed.__cause__
    done = validated[0]
    return LoaderReport(
        run_id,
        args.batch_id,
        idempotent=idempotent,
        written=outcome.output,
        accounting=done.accounting,
        quarantine={"path": done.quarantine_path, **done.quarantine.summary()},
    )


def _rerun_advice(batch: int | None) -> str:
    if batch is None:
        return "Fix the cause and rerun; pass --batch-id N so that a rerun never loads twice"
    return f"Fix the cause and rerun with --batch-id {batch}: a table that committed it is skipped"


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(NAME, parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
