"""devices_loader in this process: every input row accounted for, rejected rows quarantined."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import write_deltalake
from pyspark.sql import SparkSession

from spark_flow import delta
from spark_flow.errors import StepFailedError
from spark_flow.jobs import load
from spark_flow.validation import quarantine_path

loader = load("devices_loader")
LINES = [
    json.dumps({"type": "galaxy", "full_name": "galaxy s", "version": "1.0"}),
    json.dumps({"type": "pixel", "full_name": "pixel 8", "version": "2.1"}),
    json.dumps({"type": "tv", "full_name": "a tv", "version": "2.1"}),  # type too short
    json.dumps({"type": "nokia", "full_name": None, "version": "3.5"}),  # no full name
    "not json at all",
    '{"type": "iphone", "full_na',  # truncated
]


def load_batch(spark: SparkSession, root: Path, batch: str) -> dict[str, Any]:
    argv = [
        "--input", str(root / "in"), "--output", str(root / "devices"), "--batch-id", batch,
        "--checkpoint-dir", str(root / "checkpoints"),
    ]  # fmt: skip
    report: dict[str, Any] = loader.run(spark, loader.parser().parse_args(argv)).as_dict()
    return report


def test_malformed_invalid_and_valid_lines_are_counted_quarantined_and_not_duplicated(
    spark: SparkSession, tmp_path: Path
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "devices.json").write_text("\n".join(LINES) + "\n")

    first = load_batch(spark, tmp_path, "1")
    rerun = load_batch(spark, tmp_path, "1")

    assert first["rows_written"] == 2  # the keys reports had before stay
    assert first["accounting"] == {
        "rows_read": 6,
        "rows_written": {"devices": 2},
        "rows_rejected": {"malformed_record": 2, "type_too_short": 1, "no_full_name": 1},
        "balanced": True,
        "note": None,
    }
    table = str(tmp_path / "devices")
    quarantine = quarantine_path(table)
    assert first["quarantine"]["path"] == quarantine
    assert first["quarantine"]["rows_written"] == 4
    held = sorted((r["reason"], r["raw"]) for r in delta.read(spark, quarantine).collect())
    assert [reason for reason, _ in held] == [
        "malformed_record", "malformed_record", "no_full_name", "type_too_short"
    ]  # fmt: skip
    assert {raw for _, raw in held[:2]} == {"not json at all", '{"type": "iphone", "full_na'}
    assert json.loads(held[3][1])["type"] == "tv"
    assert sorted(r["full_name"] for r in delta.read(spark, table).collect()) == [
        "galaxy s 1.0", "pixel 8 2.1"
    ]  # fmt: skip

    assert (rerun["committed"], rerun["quarantine"]["committed"]) == (False, False)
    assert rerun["accounting"]["rows_read"] == 0
    assert "already committed" in rerun["accounting"]["note"]
    assert delta.read(spark, table).count() == 2
    assert delta.read(spark, quarantine).count() == 4


def test_the_aggregator_accounts_for_the_rows_it_counts(
    spark: SparkSession, tmp_path: Path
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "devices.json").write_text("\n".join(LINES) + "\n")
    load_batch(spark, tmp_path, "1")
    aggregator = load("devices_aggregator")
    argv = ["--input", str(tmp_path / "devices"), "--output", str(tmp_path / "counts")]

    first = aggregator.run(spark, aggregator.parser().parse_args(argv)).as_dict()
    rerun = aggregator.run(spark, aggregator.parser().parse_args(argv)).as_dict()

    assert first["accounting"]["rows_read"] == 2  # the loader's valid rows
    assert first["accounting"]["rows_written"] == {"counts": first["rows_written"]}
    assert "an aggregate" in first["accounting"]["note"]
    assert not rerun["committed"]
    assert "nothing read" in rerun["accounting"]["note"]


def test_a_failed_load_advises_the_job_s_own_flags(spark: SparkSession, tmp_path: Path) -> None:
    # The sequence's own advice is the library's (`run_id=`); the job speaks in its flags.
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "devices.json").write_text("\n".join(LINES) + "\n")
    write_deltalake(str(tmp_path / "devices"), pa.table({"type": pa.array([1], pa.int64())}))

    with pytest.raises(StepFailedError) as caught:
        load_batch(spark, tmp_path, "3")

    assert "schema of the data does not match the table" in str(caught.value)
    assert str(caught.value).endswith(
        "rerun with --batch-id 3: a table that committed it is skipped."
    )
    assert "run_id=" not in str(caught.value)
