"""visits_trends under the Single Runner: each day against the previous day's own output."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from spark_flow import delta
from spark_flow.errors import DependsOnPastError
from spark_flow.generate import generate_visits
from spark_flow.isolation import ThreadIsolation
from spark_flow.jobs import policy
from spark_flow.runners import SingleRunner, daily, runner_for
from spark_flow.runners.state import RunState

DAYS = daily(date(2024, 3, 1), date(2024, 3, 3))


def pages_in(root: Path, day: date) -> Counter[str]:
    """Visits per page, counted straight from the generated JSON lines."""
    return Counter(
        json.loads(line)["page"]
        for file in (root / f"date={day.isoformat()}").glob("hour=*/*.json")
        for line in file.read_text().splitlines()
    )


def trends_by_page(spark: SparkSession, table: str, day: date) -> dict[str, tuple[object, ...]]:
    rows = delta.read(spark, table).where(f"date = '{day}'").collect()
    return {r["page"]: (r["visits"], r["previous_visits"], r["change"]) for r in rows}


@pytest.fixture
def visits(tmp_path: Path) -> Path:
    root = tmp_path / "visits"
    for n, day in enumerate(DAYS):
        generate_visits(root, date=day.isoformat(), rows_per_hour=5 + 3 * n, seed=n)
    return root


def test_a_sequential_backfill_compares_each_day_with_the_one_before(
    spark: SparkSession, visits: Path, tmp_path: Path
) -> None:
    output = str(tmp_path / "trends")
    task = ThreadIsolation(
        "visits_trends", ["--input", str(visits), "--date", "{ds}", "--output", output], spark
    )
    runner = runner_for("visits_trends", state=RunState(tmp_path / "state"), policy=policy(
        "visits_trends"))  # fmt: skip

    report = runner.backfill(DAYS, task)

    assert report.ok
    assert [run.report["previous_day_found"] for run in report.runs] == [False, True, True]
    first = pages_in(visits, DAYS[0])
    assert trends_by_page(spark, output, DAYS[0]) == {p: (n, None, None) for p, n in first.items()}
    for before, day in itertools.pairwise(DAYS):
        today, yesterday = pages_in(visits, day), pages_in(visits, before)
        expected = {
            page: (today[page], yesterday[page], today[page] - yesterday[page])
            for page in today.keys() | yesterday.keys()
        }
        assert trends_by_page(spark, output, day) == expected


def test_the_job_declares_itself_sequential_and_dependent_on_its_past() -> None:
    declared = policy("visits_trends")

    assert declared.sequential
    assert declared.depends_on_past
    assert "previous day" in declared.reason


def test_a_day_whose_previous_day_never_ran_is_refused_and_writes_nothing(
    spark: SparkSession, visits: Path, tmp_path: Path
) -> None:
    output = tmp_path / "trends"
    task = ThreadIsolation(
        "visits_trends", ["--input", str(visits), "--date", "{ds}", "--output", str(output)], spark
    )
    runner = SingleRunner("visits_trends", state=RunState(tmp_path / "state"), depends_on_past=True)

    with pytest.raises(DependsOnPastError) as caught:
        runner.run(DAYS[1], task)

    assert caught.value.previous_date == "2024-03-01"
    assert not output.exists()


def test_a_rerun_replaces_its_day_and_reads_a_delta_input_too(
    spark: SparkSession, visits: Path, tmp_path: Path
) -> None:
    table, output = str(tmp_path / "visits_table"), str(tmp_path / "trends")
    raw = spark.read.json(str(visits)).selectExpr("page", "CAST(date AS DATE) AS date")
    delta.write(raw, table, partition_by=["date"])
    task = ThreadIsolation(
        "visits_trends", ["--input", table, "--date", "{ds}", "--output", output], spark
    )
    runner = SingleRunner("visits_trends", state=RunState(tmp_path / "state"), rerun=True)

    runner.backfill(DAYS[:2], task)
    runner.run(DAYS[1], task)

    day_two = delta.read(spark, output).where(f"date = '{DAYS[1]}'")
    assert day_two.count() == len(pages_in(visits, DAYS[1]) | pages_in(visits, DAYS[0]))
    assert sum(r["visits"] for r in day_two.collect()) == sum(pages_in(visits, DAYS[1]).values())


def test_malformed_lines_are_counted_and_left_out_of_the_visits(
    spark: SparkSession, visits: Path, tmp_path: Path
) -> None:
    day = DAYS[0]
    parsed = sum(pages_in(visits, day).values())
    hour = next((visits / f"date={day.isoformat()}").glob("hour=*"))
    (hour / "broken.json").write_text('not json\n{"page": "home", "dura\n')
    task = ThreadIsolation(
        "visits_trends",
        ["--input", str(visits), "--date", "{ds}", "--output", str(tmp_path / "t")],
        spark,
    )

    outcome = SingleRunner("visits_trends", state=RunState(tmp_path / "s")).run(
        day, task, first=True
    )

    accounting = outcome.report["accounting"]
    assert accounting["rows_read"] == parsed + 2
    assert accounting["rows_rejected"] == {"malformed_record": 2}
    assert "an aggregate" in accounting["note"]
    rows = delta.read(spark, str(tmp_path / "t")).collect()
    assert None not in {r["page"] for r in rows}  # read plainly, a broken line was a visit
    assert sum(r["visits"] for r in rows) == parsed
