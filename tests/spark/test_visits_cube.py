"""visits_cube in this process: aligned refusal, unaligned completeness, per-date replacement."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from spark_flow import delta
from spark_flow.errors import TriggerRuleError
from spark_flow.generate import generate_visits
from spark_flow.jobs import load

cube_job = load("visits_cube")
ROWS = 20


def cube(spark: SparkSession, *argv: str) -> dict[str, Any]:
    report: dict[str, Any] = cube_job.run(spark, cube_job.parser().parse_args(list(argv))).as_dict()
    return report


def pages_in(root: Path, day: str) -> Counter[str]:
    """Visits per page, counted straight from the generated JSON lines."""
    return Counter(
        json.loads(line)["page"]
        for file in (root / f"date={day}").glob("hour=*/*.json")
        for line in file.read_text().splitlines()
    )


def test_unaligned_cube_of_half_a_day_is_marked_approximate_and_recorded(
    spark: SparkSession, tmp_path: Path
) -> None:
    visits, output = tmp_path / "visits", str(tmp_path / "cube")
    generate_visits(visits, date="2024-01-01", rows_per_hour=ROWS, skip_hours=range(1, 24, 2))

    report = cube(spark, "--input", str(visits), "--date", "2024-01-01", "--output", output,
                  "--mode", "unaligned", "--min-completeness", "0.5")  # fmt: skip

    assert report["completeness"] == 0.5
    assert report["missing_hours"] == [f"{h:02d}" for h in range(1, 24, 2)]
    table = delta.read(spark, output)
    assert {
        tuple(r) for r in table.select("completeness", "is_approximate").distinct().collect()
    } == {(0.5, True)}
    by_page = table.filter("browser IS NULL AND country IS NULL AND page IS NOT NULL")
    assert {r.page: r.visits for r in by_page.collect()} == dict(pages_in(visits, "2024-01-01"))
    total = table.filter("page IS NULL AND browser IS NULL AND country IS NULL").first()
    assert total is not None
    assert total.visits == 12 * ROWS
    record = delta.read(spark, f"{output}/_spark_flow_completeness").first()
    assert record is not None
    assert (record.expected, record.present, record.completeness) == (24, 12, 0.5)
    assert list(record.missing) == report["missing_hours"]


def test_a_rerun_replaces_its_date_and_keeps_the_others(
    spark: SparkSession, tmp_path: Path
) -> None:
    visits, output = tmp_path / "visits", str(tmp_path / "cube")
    generate_visits(visits, date="2024-01-01", rows_per_hour=ROWS, skip_hours=[5])
    generate_visits(visits, date="2024-01-02", rows_per_hour=ROWS)
    args = ("--input", str(visits), "--output", output, "--mode", "unaligned")

    cube(spark, *args, "--date", "2024-01-01")
    cube(spark, *args, "--date", "2024-01-02")
    generate_visits(visits, date="2024-01-01", rows_per_hour=ROWS)  # hour 05 arrives late
    rerun = cube(spark, *args, "--date", "2024-01-01")

    totals = delta.read(spark, output).filter(
        "page IS NULL AND browser IS NULL AND country IS NULL"
    )
    assert rerun["completeness"] == 1.0
    assert {str(r.date): (r.visits, r.is_approximate) for r in totals.collect()} == {
        "2024-01-01": (24 * ROWS, False),
        "2024-01-02": (24 * ROWS, False),
    }
    records = delta.read(spark, f"{output}/_spark_flow_completeness").collect()
    assert sorted((r.logical_date, r.present) for r in records) == [
        ("2024-01-01", 24),
        ("2024-01-02", 24),
    ]


def test_aligned_cube_with_a_missing_hour_writes_nothing(
    spark: SparkSession, tmp_path: Path
) -> None:
    visits = tmp_path / "visits"
    generate_visits(visits, date="2024-01-01", rows_per_hour=ROWS, skip_hours=[3, 7])

    with pytest.raises(TriggerRuleError) as caught:
        cube(spark, "--input", str(visits), "--date", "2024-01-01",
             "--output", str(tmp_path / "cube"), "--mode", "aligned")  # fmt: skip

    assert [name for name, _, _ in caught.value.not_succeeded] == [
        "date=2024-01-01/hour=03",
        "date=2024-01-01/hour=07",
    ]
    assert not (tmp_path / "cube").exists()


def test_malformed_lines_are_left_out_of_the_cube_and_counted(
    spark: SparkSession, tmp_path: Path
) -> None:
    visits, output = tmp_path / "visits", str(tmp_path / "cube")
    generate_visits(visits, date="2024-01-01", rows_per_hour=ROWS)
    with (visits / "date=2024-01-01" / "hour=05" / "part-00000.json").open("a") as hour:
        hour.write('{"visit_id": "cut short", "event_ti\n')

    report = cube(spark, "--input", str(visits), "--date", "2024-01-01", "--output", output,
                  "--mode", "aligned")  # fmt: skip

    accounting = report["accounting"]
    assert accounting["rows_read"] == 24 * ROWS + 1
    assert accounting["rows_rejected"] == {"malformed_record": 1}
    assert accounting["rows_written"] == {"cube": report["rows_written"]}
    assert "an aggregate" in accounting["note"]
    total = delta.read(spark, output).filter("page IS NULL AND browser IS NULL AND country IS NULL")
    assert [r.visits for r in total.collect()] == [24 * ROWS]
