"""The pytest plugin's fixtures and helpers with a Spark Connect session."""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession

from spark_flow import delta
from spark_flow.errors import InvalidArgumentError
from spark_flow.testing import assert_df_equal, count_spark_jobs, read_output


def test_the_plugin_helpers_work_on_a_connect_session(
    connect_spark: SparkSession, tmp_delta_path: str
) -> None:
    delta.write(connect_spark.range(3), tmp_delta_path, app_id="t", txn_version=1)

    assert_df_equal(delta.read(connect_spark, tmp_delta_path), connect_spark.range(3))
    assert_df_equal(read_output(connect_spark, "delta", tmp_delta_path), connect_spark.range(3))


def test_counting_jobs_says_it_needs_a_classic_session(connect_spark: SparkSession) -> None:
    with (
        pytest.raises(InvalidArgumentError, match="no status tracker"),
        count_spark_jobs(connect_spark),
    ):
        pass
