"""devices_split_loader and devices_stream_loader in this process: every input row accounted for."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from spark_flow import delta
from spark_flow.errors import InvalidArgumentError
from spark_flow.jobs import load
from spark_flow.validation import quarantine_path

LINES = [
    *(
        json.dumps({"type": "galaxy", "full_name": f"galaxy {i}", "version": "1.0"})
        for i in range(3)
    ),
    "not json at all",
    '{"type": "iphone", "full_na',  # truncated
]


def run_job(spark: SparkSession, job: str, *argv: str) -> dict[str, Any]:
    module = load(job)
    report: dict[str, Any] = module.run(spark, module.parser().parse_args(list(argv))).as_dict()
    return report


def write_input(folder: Path) -> str:
    folder.mkdir()
    (folder / "devices.json").write_text("\n".join(LINES) + "\n")
    return str(folder)


def test_the_split_loader_quarantines_malformed_lines_and_counts_every_row_once(
    spark: SparkSession, tmp_path: Path
) -> None:
    raw, enriched = str(tmp_path / "raw"), str(tmp_path / "enriched")
    argv = ("--input", write_input(tmp_path / "in"), "--raw-output", raw,
            "--enriched-output", enriched, "--batch-id", "3")  # fmt: skip

    first = run_job(spark, "devices_split_loader", *argv)
    rerun = run_job(spark, "devices_split_loader", *argv)

    assert [b["name"] for b in first["branches"]] == ["raw", "enriched", "quarantine"]
    assert first["accounting"] == {
        "rows_read": 5,
        "rows_written": {"raw": 3, "enriched": 3},
        "rows_rejected": {"malformed_record": 2},
        "balanced": True,
        "note": None,
    }
    held = {r["raw"] for r in delta.read(spark, quarantine_path(raw)).collect()}
    assert held == {"not json at all", '{"type": "iphone", "full_na'}
    assert {b["status"] for b in rerun["branches"]} == {"already_done"}
    assert rerun["accounting"]["rows_read"] == 0
    assert rerun["accounting"]["rows_rejected"] == {"malformed_record": 0}  # every reason, as 0
    assert [delta.read(spark, t).count() for t in (raw, enriched, quarantine_path(raw))] == [
        3,
        3,
        2,
    ]


def test_the_stream_loader_accounts_for_each_micro_batch(
    spark: SparkSession, tmp_path: Path
) -> None:
    raw, enriched = str(tmp_path / "raw"), str(tmp_path / "enriched")
    argv = ("--input", write_input(tmp_path / "in"), "--raw-output", raw,
            "--enriched-output", enriched, "--checkpoint", str(tmp_path / "ck"),
            "--available-now")  # fmt: skip

    report = run_job(spark, "devices_stream_loader", *argv)

    assert report["micro_batches"] == [0]
    assert report["accounting"] == {
        "rows_read": 5,
        "rows_written": {"raw": 3, "enriched": 3},
        "rows_rejected": {"malformed_record": 2},
        "balanced": True,
        "note": None,
    }
    assert report["branches"]["quarantine"]["rows_written"] == 2


def test_the_stream_loader_refuses_a_new_checkpoint_under_an_app_id_already_used(
    spark: SparkSession, tmp_path: Path
) -> None:
    # Its batch ids start at 0 again, which its tables already hold: skipped in silence.
    folder = Path(write_input(tmp_path / "in"))
    (folder / "more.json").write_text(LINES[0] + "\n")
    argv = ("--input", str(folder), "--raw-output", str(tmp_path / "raw"),
            "--enriched-output", str(tmp_path / "enriched"), "--checkpoint", str(tmp_path / "ck"),
            "--max-files-per-trigger", "1", "--available-now")  # fmt: skip
    assert run_job(spark, "devices_stream_loader", *argv)["micro_batches"] == [0, 1]
    shutil.rmtree(tmp_path / "ck")

    with pytest.raises(InvalidArgumentError, match="new app_id"):
        run_job(spark, "devices_stream_loader", *argv)
