"""The Local Sequencer's restart boundaries in a bucket: checkpoints and their completion
records are objects below the `s3://` checkpoint folder, a rerun resumes from them, and nothing
lands in a local folder named after the URI (`Path("s3://b/ck")` is `s3:/b/ck`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession

from spark_flow import storage
from spark_flow.errors import StepFailedError
from spark_flow.sequence import LocalSequencer, step


def test_a_rerun_resumes_from_the_boundary_checkpointed_in_the_bucket(
    spark: SparkSession, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where a URI taken for a local path would land
    computed: list[str] = []

    def costly(df: DataFrame) -> DataFrame:
        computed.append("costly")
        return df.selectExpr("id", "id * 2 AS doubled")

    sequence = LocalSequencer("devices", [step("costly", costly, boundary=True)])
    source = spark.range(5)
    checkpoints = f"{s3_bucket}/checkpoints/"
    sunk: list[list[int]] = []

    def failing(df: DataFrame) -> None:
        raise RuntimeError("the sink's store is down")

    def sink(df: DataFrame) -> int:
        sunk.append(sorted(r.doubled for r in df.collect()))
        return len(sunk[-1])

    with pytest.raises(StepFailedError):
        sequence.run(source, run_id="r1", checkpoint_dir=checkpoints, sink=failing)
    kept = storage.list_files(f"{s3_bucket}/checkpoints/devices/r1", recursive=True)
    resumed = sequence.run(source, run_id="r1", checkpoint_dir=checkpoints, sink=sink)

    assert "costly/_completed.json" in kept
    assert resumed.resumed_from == "costly"
    assert [s.status for s in resumed.steps] == ["already_done"]
    assert sunk == [[0, 2, 4, 6, 8]]
    assert computed == ["costly", "costly"]  # the second: the plan probed for its schema only
    assert storage.list_files(f"{s3_bucket}/checkpoints", recursive=True) == []
    assert list(tmp_path.iterdir()) == []
