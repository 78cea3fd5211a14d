"""devices_stream_loader with a bucket: Spark's file stream source needs Spark's own filesystem
for its input and checkpoint, which a plain pip pyspark lacks for `s3://`; the run refuses them
by name before the query starts, instead of failing inside it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from spark_flow import storage
from spark_flow.errors import InvalidArgumentError
from spark_flow.jobs import load

stream_job = load("devices_stream_loader")


@pytest.mark.parametrize("on_bucket", ["--input", "--checkpoint"])
def test_a_stream_refuses_an_input_or_checkpoint_spark_cannot_reach(
    spark: SparkSession, s3_bucket: str, tmp_path: Path, on_bucket: str
) -> None:
    storage.write_text_atomically(f"{s3_bucket}/incoming/devices.json", '{"type": "phone"}\n')
    (tmp_path / "incoming").mkdir()
    where = {"--input": str(tmp_path / "incoming"), "--checkpoint": str(tmp_path / "checkpoint")}
    where[on_bucket] = {"--input": f"{s3_bucket}/incoming/", "--checkpoint": f"{s3_bucket}/ck"}[
        on_bucket
    ]
    args = stream_job.parser().parse_args([
        "--input", where["--input"], "--checkpoint", where["--checkpoint"],
        "--raw-output", f"{s3_bucket}/raw", "--enriched-output", f"{s3_bucket}/enriched",
        "--available-now",
    ])  # fmt: skip

    with pytest.raises(InvalidArgumentError) as refused:
        stream_job.run(spark, args)

    assert refused.value.argument == on_bucket
    assert where[on_bucket] in refused.value.problem
    assert "hadoop-aws" in refused.value.fix
    assert spark.streams.active == []
    assert not storage.exists(f"{s3_bucket}/raw")
