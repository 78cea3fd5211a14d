"""Concurrent backfills of bundled jobs inside one shared session (`--isolation thread`)."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from spark_flow import delta
from spark_flow.errors import InvalidArgumentError
from spark_flow.generate import generate_devices
from spark_flow.isolation import ThreadIsolation
from spark_flow.jobs import JOBS_DIR_ENV
from spark_flow.runners import ConcurrentRunner, daily
from spark_flow.runners.state import RunState

DAYS = daily(date(2024, 1, 1), date(2024, 1, 4))


def loader_args(root: Path) -> list[str]:
    return [
        "--input", str(root / "input" / "{ds}"), "--output", str(root / "devices"),
        "--batch-id", "{ds_nodash}", "--checkpoint-dir", str(root / "checkpoints"),
    ]  # fmt: skip


def test_a_concurrent_backfill_loads_every_date_once_and_a_rerun_writes_nothing(
    spark: SparkSession, tmp_path: Path
) -> None:
    for n, day in enumerate(DAYS):
        generate_devices(tmp_path / "input" / day.isoformat(), rows=10 + n, seed=n)
    task = ThreadIsolation("devices_loader", loader_args(tmp_path), spark)
    state = RunState(tmp_path / "state")

    report = ConcurrentRunner("devices_loader", state=state, max_active_runs=2).backfill(DAYS, task)

    assert report.ok
    assert [run.rows for run in report.runs] == [10, 11, 12, 13]
    table = str(tmp_path / "devices")
    assert delta.read(spark, table).count() == 46
    for day in DAYS:  # each date under its own app id: committed in any order, none skipped
        batch = int(day.strftime("%Y%m%d"))
        assert delta.transaction_version(table, f"devices_loader.{batch}") == batch

    rerun = ConcurrentRunner("devices_loader", state=state, max_active_runs=2, rerun=True)
    again = rerun.backfill(DAYS, task)
    assert [run.report["committed"] for run in again.runs] == [False] * 4  # txnVersion holds
    assert delta.read(spark, table).count() == 46


def test_job_arguments_are_checked_for_every_date_before_any_run(
    spark: SparkSession, tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as bad:  # argparse: exit 2 with its usage message
        ThreadIsolation("devices_loader", ["--input", "x"], spark).check(DAYS)
    assert bad.value.code == 2

    for day in DAYS:  # inputs that exist: the refusal is the trigger's
        (tmp_path / "input" / day.isoformat()).mkdir(parents=True)
    trigger = [*loader_args(tmp_path), "--trigger", "devices_aggregator"]
    with pytest.raises(InvalidArgumentError, match="process isolation"):
        ThreadIsolation("devices_loader", trigger, spark).check(DAYS)


BLOCKING_JOB = '''
"""Test job: the run for --block-date holds a Spark task for minutes, any other run fails."""
import argparse, time
from dataclasses import dataclass
from pathlib import Path
from pyspark.sql import functions as F
from spark_flow.jobs import JobReport

@dataclass(frozen=True)
class Report(JobReport):
    rows_written: int = 1

def parser():
    p = argparse.ArgumentParser()
    p.add_argument("--date", required=True)
    p.add_argument("--block-date", required=True)
    p.add_argument("--signal", required=True)
    return p

def run(spark, args):
    started = args.signal
    if args.date != args.block_date:
        deadline = time.monotonic() + 60
        while not Path(started).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        raise RuntimeError("this date broke")

    @F.udf("long")
    def block(value):
        import time
        from pathlib import Path
        Path(started).touch()
        time.sleep(120)  # cancelling the run must stop this long before it ends
        return value

    spark.range(0, 1, numPartitions=1).withColumn("id", block("id")).collect()
    return Report()
'''


def test_fail_fast_cancels_the_spark_jobs_of_the_runs_still_going(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "blocking.py").write_text(textwrap.dedent(BLOCKING_JOB))
    monkeypatch.setenv(JOBS_DIR_ENV, str(jobs))
    argv = ["--date", "{ds}", "--block-date", DAYS[0].isoformat()]
    task = ThreadIsolation("blocking", [*argv, "--signal", str(tmp_path / "started")], spark)
    runner = ConcurrentRunner(
        "blocking", state=RunState(tmp_path / "state"), max_active_runs=2, fail_fast=True
    )

    report = runner.backfill(DAYS, task, cancel=task.cancel)

    assert [r.status for r in report.runs] == ["cancelled", "failed", "not_run", "not_run"]
    assert "cancel" in (report.runs[0].error or "").lower()
    assert "this date broke" in (report.runs[1].error or "")
