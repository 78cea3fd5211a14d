"""`spark-flow demo`: the toolkit's behaviour on small generated data, start to finish.

Each pattern issue adds its step: an idempotent Delta write and its replay; then the devices
loader (Local Sequencer, readiness marker) and the aggregator waiting for that marker.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, TextIO

from spark_flow import delta
from spark_flow.generate import DEVICE_SCHEMA, generate_devices
from spark_flow.jobs import load
from spark_flow.session import get_session


def run_demo(workdir: Path, out: TextIO, *, rows: int = 50) -> None:
    """Run every demo step under `workdir` (emptied first) and narrate it to `out`."""
    shutil.rmtree(workdir, ignore_errors=True)
    source = generate_devices(workdir / "input", rows=rows, invalid_ratio=0.2)
    spark = get_session("spark-flow-demo")
    try:
        _idempotent_write(spark, source, str(workdir / "devices"), out)
        _loader_then_aggregator(spark, workdir, out)
    finally:
        spark.stop()


def _idempotent_write(spark: Any, source: Path, table: str, out: TextIO) -> None:
    devices = spark.read.schema(DEVICE_SCHEMA).json(str(source))
    first = delta.write(devices, table, app_id="devices-loader-v1", version=1)
    replay = delta.write(devices, table, app_id="devices-loader-v1", version=1)
    rows_in_table = delta.read(spark, table).count()
    out.write(f"1. Idempotent Delta write -> {table}\n")
    out.write(
        f"   write  (app_id=devices-loader-v1, version=1): committed={first.committed}, "
        f"table version {first.table_version}, {first.rows_written} rows\n"
    )
    out.write(
        f"   replay (app_id=devices-loader-v1, version=1): committed={replay.committed}, "
        f"skipped: {replay.skipped_reason}\n"
    )
    out.write(f"   rows in the table: {rows_in_table} (not {2 * first.rows_written})\n")


def _loader_then_aggregator(spark: Any, workdir: Path, out: TextIO) -> None:
    loader, aggregator = load("devices_loader"), load("devices_aggregator")
    table, counts = str(workdir / "tables" / "devices"), str(workdir / "tables" / "counts")
    loader_args = ["--input", str(workdir / "input"), "--output", table, "--batch-id", "1"]
    loader_args += ["--checkpoint-dir", str(workdir / "checkpoints")]
    out.write("2. Local Sequencer + readiness marker: devices_loader, then devices_aggregator\n")
    out.write("   (the generated input has about 20% invalid rows, which the loader drops)\n")
    out.write("   " + loader.LOAD.describe().replace("\n", "\n   ") + "\n")
    for attempt in ("run", "rerun"):
        report = loader.run(spark, loader.parser().parse_args(loader_args))
        out.write(
            f"   loader {attempt}: committed={report['committed']}, "
            f"{report['rows_written']} rows written, table version {report['table_version']}"
            f"{'' if report['committed'] else ' (batch 1 already committed)'}\n"
        )
    aggregator_args = ["--input", table, "--output", counts, "--wait-timeout", "5"]
    report = aggregator.run(spark, aggregator.parser().parse_args(aggregator_args))
    out.write(
        f"   aggregator: waited for the marker, read version {report['input_version']}, "
        f"wrote {report['rows_written']} (type, version) counts\n"
    )
    top = delta.read(spark, counts).orderBy("count", ascending=False).limit(3).collect()
    for row in top:
        out.write(f"     {row['type']:<8} {row['version']:<5} {row['count']}\n")
