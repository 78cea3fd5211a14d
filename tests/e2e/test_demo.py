"""The demo as a user runs it, through spark-submit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import spark_flow

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent


def _check_demo_output(stdout: str, workdir: Path) -> None:
    assert (
        "write  (app_id=devices-loader-v1, txn_version=1): committed=True, table version 0"
        in stdout
    )
    assert "replay (app_id=devices-loader-v1, txn_version=1): committed=False" in stdout
    assert "rows in the table: 20 (not 40)" in stdout
    assert "loader run: committed=True" in stdout
    assert "loader rerun: committed=False, 0 rows written" in stdout
    assert (
        "accounting: 20 rows read = 14 written + 6 rejected "
        "(malformed_record 0, type_too_short 5, no_full_name 1)"
    ) in stdout
    assert "quarantine: 6 rows with their reason and raw line -> _spark_flow_quarantine" in stdout
    assert "accounting: nothing read: every write of this batch was already committed" in stdout
    assert "aggregator: waited for the marker, read version 0" in stdout
    assert "run 1, enriched: failed, 0 rows (schema of the data does not match the table" in stdout
    assert "run 2, raw     : already_done, 0 rows" in stdout
    assert "input 20 rows -> devices_raw 20, devices_enriched 20 (each row once)" in stdout
    assert "2023-12-31: csv -> " in stdout
    assert "2024-01-01: delta -> " in stdout
    assert "aligned:   not run, hours 03, 07 missing (nothing written)" in stdout
    assert "completeness 0.917 (22/24 hours)" in stdout
    week = [f"01-0{day}" for day in range(1, 8)]
    assert "backfill: " + ", ".join(f"{day} success" for day in week) in stdout
    assert "resume: " + ", ".join(f"{day} already_done" for day in week) in stdout
    assert "rows in the table: 91 (each day once" in stdout
    assert "max_active_runs=3 refused: visits_trends is sequential" in stdout
    assert "backfill: 01-02 success, 01-03 success, 01-04 success" in stdout
    assert "query stopped in micro-batch 0: raw success, enriched failed" in stdout
    assert "restarted: micro-batches [0, 1, 2], raw already done in [0]" in stdout
    assert "rows: raw 30, enriched 30 (30 in; each row once)" in stdout
    assert "9. PostgreSQL output: " in stdout  # loaded, or skipped in one line without a server
    assert (workdir / "devices" / "_delta_log" / "00000000000000000000.json").is_file()
    assert not (workdir / "devices" / "_delta_log" / "00000000000000000001.json").exists()


def test_the_demo_runs_under_spark_submit_commits_once_and_skips_the_replay(
    tmp_path: Path,
) -> None:
    """The demo module through spark-submit, the harder of its two ways in (the `spark-flow
    demo` console script is the same code behind the entry point the CLI tests use)."""
    workdir = tmp_path / "demo"
    cli = Path(spark_flow.__file__).parent / "cli.py"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    result = subprocess.run(
        [str(BIN / "spark-submit"), "--master", "local[1]", str(cli), "demo",
         "--workdir", str(workdir), "--rows", "20"],
        capture_output=True, text=True, timeout=300, check=False, env=env,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr[-3000:]
    _check_demo_output(result.stdout, workdir)
    # The failures the demo causes on purpose are narrated, not dumped as stack traces.
    assert "Traceback" not in result.stderr
    assert "terminated with error" not in result.stderr
