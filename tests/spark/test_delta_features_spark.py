"""Both writers of the delta-rs backend refuse a table our commit cannot honour, before any job."""

from __future__ import annotations

from pathlib import Path

import _delta_logs as logs
import pytest
from deltalake import DeltaTable
from pyspark.errors import PySparkException
from pyspark.sql import SparkSession

from spark_flow import delta, storage
from spark_flow.errors import UnsupportedDeltaFeatureError
from spark_flow.testing import count_spark_jobs


def test_a_table_with_a_check_constraint_is_refused_by_both_writers(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = logs.table(tmp_path / "devices", commits=1)
    logs.set_protocol(path, {"minReaderVersion": 1, "minWriterVersion": 3})
    logs.set_metadata(path, configuration={"delta.constraints.positive": "id > 0"})
    data = spark.createDataFrame([(-1, "d9")], "id long, day string")  # breaks the constraint

    with count_spark_jobs(spark) as jobs, pytest.raises(UnsupportedDeltaFeatureError) as caught:
        delta.write(data, path)
    with pytest.raises(PySparkException, match="checkConstraints"):
        data.write.format("delta").mode("append").save(path)

    assert jobs.count == 0
    assert "it needs checkConstraints" in caught.value.feature
    assert DeltaTable(path).version() == 0
    assert not (Path(path) / storage.STAGING_DIR).exists()
    assert delta.read(spark, path).count() == 1
