"""Bundled-job discovery and the command line, without starting Spark."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

import pytest

from spark_flow import cli
from spark_flow.errors import InvalidArgumentError, UnknownValueError
from spark_flow.fan_out import Choice
from spark_flow.jobs import MERGED, JobReport, available_jobs, describe, load, report_of, resolve


def test_the_bundled_jobs_are_found_with_their_descriptions() -> None:
    assert {"devices_aggregator", "devices_loader"} <= set(available_jobs())
    assert describe("devices_loader").startswith("Load devices JSON into a Delta table")


def test_an_unknown_job_lists_the_known_ones_and_the_closest() -> None:
    with pytest.raises(UnknownValueError) as caught:
        resolve("devices_loadr")

    assert "devices_loader" in caught.value.valid_values
    assert "Did you mean 'devices_loader'?" in str(caught.value)


def test_spark_flow_jobs_lists_them(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["jobs"]) == 0

    assert "devices_loader" in capsys.readouterr().out


def test_spark_flow_run_refuses_an_unknown_job(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["run", "nope"])

    assert caught.value.code == 2
    assert "job='nope' is not supported" in capsys.readouterr().err


def test_an_unknown_trigger_is_a_usage_error_before_any_work(
    capsys: pytest.CaptureFixture[str],
) -> None:
    loader = load("devices_loader")

    with pytest.raises(SystemExit) as caught:
        loader.main(["--input", "in", "--output", "out", "--trigger", "devices_agregator"])

    assert caught.value.code == 2
    assert "Did you mean 'devices_aggregator'?" in capsys.readouterr().err


def test_the_loader_describes_its_sequence() -> None:
    assert load("devices_loader").LOAD.describe().splitlines()[1:] == [
        "  1. drop_invalid",
        "  2. enrich",
    ]


# -- typed reports -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExampleReport(JobReport):
    run_id: str
    route: Choice[str]
    written: dict[str, object] = field(metadata=MERGED)


def test_a_report_is_its_fields_in_order_with_nested_reports_and_merged_summaries() -> None:
    report = ExampleReport(
        "r1", Choice("c", "legacy", "csv", "old date"), written={"rows_written": 4, "x": None}
    )

    assert list(report.as_dict().items()) == [
        ("run_id", "r1"),
        ("route", {"choice": "c", "branch": "legacy", "reason": "old date"}),
        ("rows_written", 4),
        ("x", None),
    ]


def test_a_run_that_returns_no_report_is_named() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        report_of("probe", {"rows": 1})

    assert caught.value.argument == "probe.run"
    assert "returned a dict, which has no as_dict()" in str(caught.value)


@pytest.mark.parametrize("name", sorted(available_jobs()))
def test_every_bundled_job_returns_a_typed_report(name: str) -> None:
    returns = typing.get_type_hints(load(name).run)["return"]

    assert callable(getattr(returns, "as_dict", None)), f"{name}.run returns {returns}"
