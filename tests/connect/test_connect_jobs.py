"""Runners and bundled jobs on a Spark Connect server, in this process and from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from pyspark.sql import SparkSession

from spark_flow import delta
from spark_flow.generate import generate_devices
from spark_flow.isolation import ThreadIsolation
from spark_flow.local_connect import LocalConnectServer
from spark_flow.runners import ConcurrentRunner, SingleRunner, daily
from spark_flow.runners.state import RunState

DAYS = daily(date(2024, 1, 1), date(2024, 1, 3))


def loader_args(root: Path) -> list[str]:
    return [
        "--input", str(root / "input" / "{ds}"), "--output", str(root / "devices"),
        "--batch-id", "{ds_nodash}", "--checkpoint-dir", str(root / "checkpoints"),
    ]  # fmt: skip


def test_runners_run_bundled_jobs_in_threads_of_one_connect_session(
    connect_spark: SparkSession, tmp_path: Path
) -> None:
    for n, day in enumerate(DAYS):
        generate_devices(tmp_path / "input" / day.isoformat(), rows=10 + n, seed=n)
    task = ThreadIsolation("devices_loader", loader_args(tmp_path), connect_spark)
    state = RunState(tmp_path / "state")

    report = ConcurrentRunner("devices_loader", state=state, max_active_runs=2).backfill(DAYS, task)
    again = SingleRunner("devices_loader", state=state, rerun=True).backfill(DAYS[:1], task)

    assert report.ok
    assert [run.rows for run in report.runs] == [10, 11, 12]
    assert [run.report["committed"] for run in again.runs] == [False]  # txnVersion holds
    assert delta.read(connect_spark, str(tmp_path / "devices")).count() == 33


def test_a_bundled_job_runs_against_the_server_named_by_spark_remote(
    connect_server: LocalConnectServer, tmp_path: Path
) -> None:
    generate_devices(tmp_path / "input", rows=30, seed=4)
    environment = {
        **os.environ,
        "SPARK_REMOTE": connect_server.url,
        "SPARK_FLOW_STATE": str(tmp_path / "state"),
    }
    command = [str(Path(sys.executable).parent / "spark-flow"), "run", "devices_loader",
               "--input", str(tmp_path / "input"), "--output", str(tmp_path / "devices"),
               "--batch-id", "1", "--checkpoint-dir", str(tmp_path / "checkpoints")]  # fmt: skip

    done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600,
                          check=False)  # fmt: skip

    assert done.returncode == 0, done.stderr[-3000:]
    (report,) = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert report["status"] == "success"
    assert report["committed"] is True
    assert "the Spark Connect server keeps its own values" in done.stderr  # it joined the server
    table = str(tmp_path / "devices")
    assert delta.transaction_version(table, "devices_loader.1") == 1
