"""The generated datasets fit the bundled jobs' input contract (`jobs/_schemas.py`) exactly."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from pyspark.sql import SparkSession

from spark_flow.generate import generate_devices, generate_visits
from spark_flow.jobs import load

CORRUPT = "_corrupt_record"


def job_schemas() -> ModuleType:
    """`_schemas` as the bundled jobs import it."""
    load("devices_loader")  # puts the jobs' folder on the path, as spark-submit does
    return importlib.import_module("_schemas")


def written_fields(folder: Path) -> set[str]:
    """Every field name the generator wrote, straight from its JSON lines."""
    return {
        name
        for file in folder.rglob("*.json")
        for line in file.read_text().splitlines()
        for name in json.loads(line)
    }


def generate_some_devices(folder: Path) -> None:
    generate_devices(folder, rows=200, invalid_ratio=0.0)


def generate_a_day_of_visits(folder: Path) -> None:
    generate_visits(folder, date="2024-01-01", rows_per_hour=5)


@pytest.mark.parametrize(
    ("schema", "generate", "rows"),
    [
        ("DEVICE_SCHEMA", generate_some_devices, 200),
        ("VISIT_SCHEMA", generate_a_day_of_visits, 24 * 5),
    ],
)
def test_generated_data_parses_under_the_jobs_schema_with_every_field_filled(
    spark: SparkSession,
    tmp_path: Path,
    schema: str,
    generate: Callable[[Path], None],
    rows: int,
) -> None:
    contract: str = getattr(job_schemas(), schema)
    generate(tmp_path)

    read = (
        spark.read.schema(f"{contract}, {CORRUPT} STRING")
        .option("mode", "PERMISSIVE")  # a record that does not fit is kept, in _corrupt_record
        .option("columnNameOfCorruptRecord", CORRUPT)
        .json(str(tmp_path))
    )
    records = [row.asDict() for row in read.collect()]

    assert len(records) == rows
    assert written_fields(tmp_path) == set(spark.createDataFrame([], contract).columns)
    unfilled = {name for record in records for name, value in record.items() if value is None}
    assert unfilled == {CORRUPT}  # no corrupt record, no field the schema failed to parse
