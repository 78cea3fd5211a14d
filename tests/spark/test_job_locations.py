"""A bundled job whose input vanished after its arguments were checked names the argument."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession

from spark_flow.errors import ArgumentLocationError
from spark_flow.generate import generate_devices
from spark_flow.jobs import load, run_for_report


def test_an_input_gone_since_the_check_is_named_with_spark_s_words_as_the_cause(
    spark: SparkSession, tmp_path: Path
) -> None:
    loader = load("devices_loader")
    generate_devices(tmp_path / "devices", rows=3, seed=1)
    args = loader.parser().parse_args(
        ["--input", str(tmp_path / "devices"), "--output", str(tmp_path / "out"),
         "--checkpoint-dir", str(tmp_path / "checkpoints")]
    )  # fmt: skip
    shutil.rmtree(tmp_path / "devices")  # after the check, before the read

    with pytest.raises(ArgumentLocationError) as caught:
        run_for_report("devices_loader", loader.run, spark, args)

    assert (caught.value.argument, caught.value.location) == ("--input", str(tmp_path / "devices"))
    assert caught.value.problem == "expected an existing file or folder, found nothing there"
    assert "PATH_NOT_FOUND" in caught.value.cause
    assert isinstance(caught.value.__cause__, AnalysisException)


def test_the_aggregator_names_its_input_when_no_marker_came(
    spark: SparkSession, tmp_path: Path
) -> None:
    aggregator = load("devices_aggregator")
    args = aggregator.parser().parse_args(
        ["--input", str(tmp_path / "never"), "--output", str(tmp_path / "counts"),
         "--wait-timeout", "0"]
    )  # fmt: skip

    with pytest.raises(ArgumentLocationError) as caught:
        run_for_report("devices_aggregator", aggregator.run, spark, args)

    assert (caught.value.argument, caught.value.location) == ("--input", str(tmp_path / "never"))
    assert "expected a table its producer marked ready" in caught.value.problem
    assert "--wait-timeout" in caught.value.fix
    assert "no readiness marker" in caught.value.cause
