"""Write devices to the one output a parameter, the run date or the input schema chooses.

    spark-submit jobs/devices_output_router.py --input data/devices --output data/out \
        (--output-type delta|parquet|csv|json|postgres
         | --route-by date --run-date 2023-12-31 --migration-date 2024-01-01
         | --route-by schema) [--batch-id N]

Exclusive Choice, three routers:
- `--output-type T`: writes T to OUTPUT (the chapter's Example 6-18 factory); for `postgres`,
  OUTPUT is the table (`devices` or `schema.devices`: the chapter's devices load into a
  database) on the server of $SPARK_FLOW_POSTGRES_DSN or the profile's [postgres] table;
- `--route-by date`: run dates before the migration date keep the legacy CSV writer at
  OUTPUT/legacy, the migration date and later take Delta at OUTPUT/current (Example 6-17), so a
  backfill of an old date reproduces what it produced then;
- `--route-by schema`: inputs with at least 3 fields go to the new layout OUTPUT/current,
  others to OUTPUT/legacy, both Delta (Example 6-20).
The choice and its reason are logged and in the report. Writes are idempotent per batch
(default: the run date as YYYYMMDD), each batch under its own app id so dates load in any order.
Lines Spark cannot parse go, with their reason, to the quarantine Delta table
`<output>/_spark_flow_quarantine` (for postgres, `_spark_flow_quarantine/<table>` in Spark's
warehouse folder, `spark.sql.warehouse.dir`) under the same batch; the report accounts for every
row read.
"""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pyspark.sql import SparkSession
from pyspark.sql.types import StringType, StructField, StructType

from spark_flow import storage
from spark_flow.arguments import (
    JobParser,
    batch_id,
    check_argument,
    existing_input,
    folder_location,
    iso_date,
    separate_locations,
)
from spark_flow.errors import InvalidArgumentError
from spark_flow.fan_out import (
    ChosenBranch,
    ExclusiveChoice,
    Route,
    route_by_date,
    route_by_parameter,
    route_by_schema,
)
from spark_flow.files import list_files, read_files
from spark_flow.jobs import MERGED, JobReport, job_main
from spark_flow.outputs import output_types, output_writer
from spark_flow.validation import (
    QUARANTINE_DIR,
    Accounting,
    Validation,
    permissive,
)

from _schemas import DEVICE_SCHEMA

NAME = "devices_output_router"
NEW_LAYOUT_FIELDS = 3
SNIFFED_LINES = 1000  # lines looked at for the first record to route by
# Branch -> (output type, subfolder of --output); the parameter router writes to --output.
BY_DATE = ExclusiveChoice(NAME, {"legacy": ("csv", "legacy"), "current": ("delta", "current")})
BY_SCHEMA = ExclusiveChoice(NAME, {"legacy": ("delta", "legacy"), "current": ("delta", "current")})
RULES = Validation([], name="devices")  # routed as read: only unparsable lines are rejected


def parser() -> JobParser:
    parser = JobParser(prog=NAME, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--input", required=True, type=existing_input, help="folder (or file) of devices JSON lines"
    )
    parser.add_argument(
        "--output", required=True, help="output location; for postgres, the table name"
    )
    route = parser.add_mutually_exclusive_group(required=True)
    route.add_argument("--output-type", choices=output_types(), help="route by this parameter")
    route.add_argument("--route-by", choices=("date", "schema"), help="route by date or schema")
    parser.add_argument("--run-date", type=iso_date, help="logical date, YYYY-MM-DD")
    parser.add_argument("--migration-date", type=iso_date, help="first new-branch date")
    parser.add_argument(
        "--batch-id", type=batch_id, help="batch number (default: run date YYYYMMDD)"
    )
    parser.add_check(check_route)
    return parser


def check_route(args: argparse.Namespace) -> None:
    """Routing by date needs both dates; every output but a postgres table is a folder apart
    from the input."""
    if args.route_by == "date" and (args.run_date is None or args.migration_date is None):
        raise InvalidArgumentError(
            "--route-by",
            "'date' needs --run-date and --migration-date",
            "Pass both, e.g. --run-date 2023-12-31 --migration-date 2024-01-01.",
        )
    if args.output_type != "postgres":
        check_argument("--output", folder_location, args.output)
        separate_locations("--input", "--output")(args)
    if args.route_by == "schema" and sniff_schema(args.input) is None:
        raise _no_record(args.input)


def _no_record(folder: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        "--input",
        f"expected a JSON record (an object per line) in the first {SNIFFED_LINES} lines under "
        f"{folder!r} to route by its fields, found none",
        "Point --input at the devices files, JSON lines, or route by --output-type.",
    )


def sniff_schema(folder: str) -> StructType | None:
    """The devices' fields from the first record, read on the driver: metadata, not a scan.

    Read as Spark reads JSON lines: a UTF-8 BOM is no part of the first line, a line holding
    an array of records holds records, and a line that is no record is skipped here (the read
    quarantines it); only the first `SNIFFED_LINES` lines are looked at. None: no record
    there (an empty folder, or only lines Spark cannot parse).
    """
    looked = 0
    for file in list_files(folder):
        filesystem, location = storage.filesystem(file)
        with filesystem.open_input_stream(location, compression="detect") as source:
            lines = io.TextIOWrapper(io.BufferedReader(source), "utf-8-sig", errors="replace")
            for line in lines:
                looked += 1
                if looked > SNIFFED_LINES:
                    return None  # not another file opened past the limit
                fields = _record(line)
                if fields:
                    return StructType([StructField(name, StringType()) for name in fields])
    return None


def _record(line: str) -> dict[str, object] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    if isinstance(value, list) and value:
        value = value[0]
    return value if isinstance(value, dict) else None


@dataclass(frozen=True)
class RouterReport(JobReport):
    """The branch taken and why, where it wrote, the write's summary, where every row went."""

    route: ChosenBranch[tuple[str, str]]
    output_type: str
    output: str
    batch_id: int | None
    written: Mapping[str, object] = field(metadata=MERGED)
    accounting: Accounting
    quarantine: Mapping[str, object]  # path and the quarantine write's summary


def run(spark: SparkSession, args: argparse.Namespace) -> RouterReport:
    sniffed = sniff_schema(args.input)
    route: Route
    if args.output_type:
        choices = ExclusiveChoice(NAME, {t: (t, "") for t in output_types()})
        route = route_by_parameter("--output-type", args.output_type)
    elif args.route_by == "date":
        choices, route = BY_DATE, route_by_date(args.run_date, args.migration_date)
    elif sniffed is None:
        raise _no_record(args.input)
    else:
        choices, route = BY_SCHEMA, route_by_schema(sniffed, min_fields=NEW_LAYOUT_FIELDS)
    chosen = choices.choose(route)
    output_type, subfolder = chosen.value
    output = storage.join(args.output, subfolder) if subfolder else args.output
    batch = args.batch_id
    if batch is None and args.run_date is not None:
        batch = int(args.run_date.strftime("%Y%m%d"))
    # No record in the input (empty, or every line malformed): read with the devices' fields,
    # so each line is quarantined and counted.
    schema = permissive(sniffed or DEVICE_SCHEMA)
    devices = read_files(spark, args.input, format="json", schema=schema)
    # One app id per batch: a backfill of an older date must not be skipped behind a newer one.
    app_id = NAME if batch is None else f"{NAME}.{batch}"
    # A postgres output is a table name, not a folder: its quarantine goes where Spark keeps
    # tables that have no location of their own.
    elsewhere = None
    if output_type == "postgres":
        warehouse = spark.conf.get("spark.sql.warehouse.dir") or "spark-warehouse"
        elsewhere = storage.join(warehouse, QUARANTINE_DIR, output)
    result = RULES.write(
        devices,
        output,
        app_id=app_id,
        txn_version=batch,
        writer=output_writer(output_type).write,
        quarantine=elsewhere,
    )
    return RouterReport(
        chosen,
        output_type,
        output,
        batch,
        written=result.output.summary(),
        accounting=result.accounting,
        quarantine={"path": result.quarantine_path, **result.quarantine.summary()},
    )


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(NAME, parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
