"""Bundled-job discovery and the command line, without starting Spark."""

from __future__ import annotations

import pytest

from spark_flow import cli
from spark_flow.errors import UnknownValueError
from spark_flow.jobs import available_jobs, describe, load, resolve


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
