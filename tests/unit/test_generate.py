"""`spark-flow generate`: hourly partitions, skipped hours, seeds, the jobs' input schemas."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from spark_flow import generate
from spark_flow.cli import main
from spark_flow.generate import generate_visits
from spark_flow.jobs import load


def test_visits_are_hourly_partitions_without_the_skipped_hours(tmp_path: Path) -> None:
    code = main(["generate", "visits", "--date", "2024-01-01", "--rows-per-hour", "5",
                 "--output", str(tmp_path / "v"), "--skip-hours", "3,7"])  # fmt: skip

    hours = sorted(p.name for p in (tmp_path / "v" / "date=2024-01-01").iterdir())
    assert code == 0
    assert hours == [f"hour={h:02d}" for h in range(24) if h not in (3, 7)]
    record = json.loads(
        (tmp_path / "v/date=2024-01-01/hour=05/part-00000.json").read_text().splitlines()[0]
    )
    assert record["event_time"].startswith("2024-01-01T05:")
    assert set(record) == {"visit_id", "event_time", "user_id", "page", "browser", "country",
                           "duration_ms"}  # fmt: skip


def test_the_same_seed_gives_the_same_visits(tmp_path: Path) -> None:
    first = generate_visits(tmp_path / "a", date="2024-01-01", rows_per_hour=20, seed=9)
    second = generate_visits(tmp_path / "b", date="2024-01-01", rows_per_hour=20, seed=9)

    assert [p.read_text() for p in first] == [p.read_text() for p in second]


@pytest.mark.parametrize("hours", ["3,x", "24"])
def test_bad_skip_hours_are_usage_errors(
    tmp_path: Path, hours: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["generate", "visits", "--date", "2024-01-01", "--rows-per-hour", "1",
              "--output", str(tmp_path), "--skip-hours", hours])  # fmt: skip

    assert caught.value.code == 2
    assert "--skip-hours" in capsys.readouterr().err


def test_the_schemas_generated_data_is_read_back_with_are_the_jobs_contract() -> None:
    load("devices_loader")  # puts the jobs' folder on the path, as spark-submit does
    contract = importlib.import_module("_schemas")

    assert generate.DEVICE_SCHEMA == contract.DEVICE_SCHEMA
    assert generate.VISIT_SCHEMA == contract.VISIT_SCHEMA
