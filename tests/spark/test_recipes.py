"""The recipes the bundled jobs share (`jobs/_recipes.py`), called as the jobs call them."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from spark_flow.errors import TriggerRuleError
from spark_flow.fan_in import read_partitions
from spark_flow.generate import VISIT_SCHEMA, generate_visits
from spark_flow.jobs import load

load("visits_cube")  # puts jobs/ on sys.path, as spark-submit does for a job's own folder
recipes = importlib.import_module("_recipes")


@pytest.mark.parametrize("mode", ["aligned", "unaligned"])
def test_a_day_without_any_hour_is_refused_naming_every_hour(
    spark: SparkSession, tmp_path: Path, mode: str
) -> None:
    visits, output = tmp_path / "visits", tmp_path / "cube"
    generate_visits(visits, date="2024-01-02", rows_per_hour=2)  # another day is there

    with pytest.raises(TriggerRuleError) as caught:
        recipes.fan_in_day(
            spark, "visits", root=str(visits), day="2024-01-01", hours=range(3), mode=mode,
            read=lambda found: read_partitions(spark, found, format="json", schema=VISIT_SCHEMA),
            aggregate=lambda rows: rows.agg(F.count("*").alias("visits")), output=str(output),
        )  # fmt: skip

    assert [(name, status) for name, status, _ in caught.value.not_succeeded] == [
        (f"date=2024-01-01/hour={h:02d}", "failed") for h in range(3)
    ]
    assert caught.value.completeness == 0.0
    assert not output.exists()
