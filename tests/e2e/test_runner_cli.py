"""`spark-flow backfill | run | runs` as users type them: processes, locks, exit codes."""

from __future__ import annotations

import os
import shutil
import threading
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest
from _jobs import BIN, reports, run, submit, table_rows
from deltalake import write_deltalake

from spark_flow.errors import JobProcessError
from spark_flow.isolation import ProcessIsolation
from spark_flow.runners import RunContext, RunLock
from spark_flow.runners.state import RunState

pytestmark = pytest.mark.e2e
SPARK_FLOW = str(BIN / "spark-flow")
DATES = ("2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04")


def generate(root: Path, day: str, rows: int) -> None:
    made = run(SPARK_FLOW, "generate", "devices", "--rows", str(rows), "--invalid-ratio", "0",
               "--output", str(root / day))  # fmt: skip
    assert made.returncode == 0, made.stderr


def test_a_process_backfill_isolates_a_failed_date_and_a_rerun_runs_only_that_date(
    tmp_path: Path,
) -> None:
    inputs, table, state = tmp_path / "input", tmp_path / "devices", tmp_path / "state"
    for n, day in enumerate(DATES):
        if day != "2024-01-03":
            generate(inputs, day, 10 + n)
    # 2024-01-03's input is there but broken: two partition layouts Spark cannot reconcile.
    for layout in ("a=1", "b=1"):
        generate(inputs / "2024-01-03", layout, 5)
    backfill = (
        SPARK_FLOW, "backfill", "devices_loader", "--start", DATES[0], "--end", DATES[-1],
        "--max-active-runs", "2", "--isolation", "process", "--",
        "--input", f"{inputs}/{{ds}}", "--output", str(table), "--batch-id", "{ds_nodash}",
        "--checkpoint-dir", str(tmp_path / "checkpoints"),
    )  # fmt: skip

    first = run(*backfill, state=state)

    assert first.returncode == 1, first.stderr[-3000:]
    (summary,) = reports(first.stdout)
    assert [r["status"] for r in summary["runs"]] == ["success", "success", "failed", "success"]
    assert "devices_loader exited with 1" in summary["runs"][2]["error"]
    assert "2024-01-03  failed" in first.stdout  # the summary table
    assert "4 done, 0 running, 0 queued" in first.stderr  # the progress display
    assert table_rows(table, "SELECT count(*) AS n FROM t")[0]["n"] == 10 + 11 + 13

    shutil.rmtree(inputs / "2024-01-03")
    generate(inputs, "2024-01-03", 12)
    second = run(*backfill, state=state)

    assert second.returncode == 0, second.stderr[-3000:]
    (summary,) = reports(second.stdout)
    assert [r["status"] for r in summary["runs"]] == [
        "already_done",
        "already_done",
        "success",
        "already_done",
    ]
    assert table_rows(table, "SELECT count(*) AS n FROM t")[0]["n"] == 10 + 11 + 12 + 13
    history = run(SPARK_FLOW, "runs", "devices_loader", state=state)
    assert history.returncode == 0
    attempts = [tuple(line.split()[:3]) for line in history.stdout.splitlines()[1:]]
    assert attempts[0] == ("2024-01-03", "2", "success")  # newest first
    assert ("2024-01-03", "1", "failed") in attempts
    assert len(attempts) == 5


def test_a_run_is_refused_at_once_while_another_process_holds_the_job(tmp_path: Path) -> None:
    state = RunState(tmp_path / "state")
    (tmp_path / "visits" / "date=2024-01-02").mkdir(parents=True)  # the arguments pass
    command = (
        SPARK_FLOW, "run", "--date", "2024-01-02", "--first", "visits_trends",
        "--input", str(tmp_path / "visits"), "--date", "{ds}", "--output", str(tmp_path / "t"),
    )  # fmt: skip

    with RunLock(state.lock_folder("visits_trends"), job="visits_trends", run_id="holder"):
        refused = run(*command, state=state.location)

    assert refused.returncode == 1
    (report,) = reports(refused.stdout)
    assert report["status"] == "failed"
    assert "visits_trends is already running: run holder" in report["error"]
    assert f"pid {os.getpid()}" in report["error"]
    assert report["error"].endswith("Pass --wait SECONDS to wait for it.")  # the CLI's flag
    assert RunState(state.location).history("visits_trends") == []  # it never started


def test_a_failed_run_reads_the_same_from_spark_submit_and_spark_flow_run(
    tmp_path: Path,
) -> None:
    # The arguments pass; the output's page column is a number: the run fails on the write.
    (tmp_path / "visits" / "date=2024-01-02").mkdir(parents=True)
    trends = {"date": [date(2024, 1, 1)], "page": [1], "visits": [3]}
    write_deltalake(str(tmp_path / "trends"), pa.table(trends))
    job_args = ("--input", str(tmp_path / "visits"), "--output", str(tmp_path / "trends"))

    submitted = submit("visits_trends", *job_args, "--date", "2024-01-02")
    ran = run(
        SPARK_FLOW, "run", "--date", "2024-01-02", "--first", "visits_trends", *job_args,
        "--date", "{ds}", state=tmp_path / "state",
    )  # fmt: skip

    assert (submitted.returncode, ran.returncode) == (1, 1)
    (by_submit,), (by_run,) = reports(submitted.stdout), reports(ran.stdout)
    assert "schema of the data does not match the table at" in by_run["error"]
    assert by_submit["error"] == by_run["error"]
    assert set(by_run) - {"logical_date"} == set(by_submit)
    # spark-submit's PythonRunner sends the Python process's stderr to its stdout.
    rendered = [
        [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("visits_")]
        for done in (submitted, ran)
    ]
    assert rendered == [[f"visits_trends: {by_run['error']}"]] * 2


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--start", "2024-01-05", "--end", "2024-01-01"),
         "argument --end: expected a date on or after --start 2024-01-05"),
        (("--start", "2024-13-01", "--end", "2024-12-01"), "'2024-13-01' is not a date"),
        (("--start", "2024-01-01", "--end", "2024-01-03", "--max-active-runs", "3"),
         "visits_trends is sequential"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2_saying_what_is_wrong(
    arguments: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    job_args = ("--", "--input", "x", "--date", "{ds}", "--output", "y")
    result = run(SPARK_FLOW, "backfill", "visits_trends", *arguments, *job_args, state=tmp_path)

    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "runs").exists()


def test_the_job_list_describes_visits_trends() -> None:
    listed = run(SPARK_FLOW, "jobs")

    assert listed.returncode == 0
    assert "visits_trends" in listed.stdout
    assert "day D against day D-1" in listed.stdout


def test_runs_of_a_job_that_never_ran_is_an_empty_table(tmp_path: Path) -> None:
    shown = run(SPARK_FLOW, "runs", "visits_trends", state=tmp_path)  # a job, no history yet

    assert shown.returncode == 0
    assert shown.stdout.splitlines()[0].split()[:3] == ["date", "attempt", "status"]
    assert len(shown.stdout.splitlines()) == 1


def test_a_date_after_the_job_s_name_is_the_run_s_logical_date(tmp_path: Path) -> None:
    visits = tmp_path / "visits"
    made = run(SPARK_FLOW, "generate", "visits", "--date", "2024-02-02", "--rows-per-hour", "2",
               "--output", str(visits))  # fmt: skip
    assert made.returncode == 0, made.stderr

    ran = run(SPARK_FLOW, "run", "--first", "visits_trends", "--input", str(visits),
              "--date", "2024-02-02", "--output", str(tmp_path / "t"),
              state=tmp_path / "state")  # fmt: skip

    assert ran.returncode == 0, ran.stderr[-3000:]
    (report,) = reports(ran.stdout)
    assert (report["logical_date"], report["status"]) == ("2024-02-02", "success")
    (record,) = RunState(tmp_path / "state").history("visits_trends")
    assert (record.logical_date.isoformat() if record.logical_date else None) == "2024-02-02"


# A driver that opens the FIFO it is given, writes its pid and keeps it open until it ends:
# the reader learns the driver's pid, then reads end-of-file when the driver is gone, or the
# driver's last words if it outlived its cancel (a minute, a long run's stand-in).
LONG_DRIVER = """
import os, sys, threading
with open(sys.argv[1], "w") as alive:
    alive.write(f"{os.getpid()}\\n")
    alive.flush()
    if not threading.Event().wait(60):
        alive.write("outlived its cancel\\n")
"""


def test_cancelling_a_process_run_stops_its_driver_not_only_spark_submit(tmp_path: Path) -> None:
    script, alive = tmp_path / "long_driver.py", tmp_path / "alive"
    script.write_text(LONG_DRIVER)
    os.mkfifo(alive)
    task = ProcessIsolation("devices_loader", [str(alive)])
    task.script = script  # a driver of our own in place of the job's, that runs until stopped
    run_ = RunContext(job="devices_loader", logical_date=date(2024, 1, 1), run_id="r", attempt=1)
    failures: list[BaseException] = []

    def submit_run() -> None:
        try:
            task(run_)
        except JobProcessError as exc:
            failures.append(exc)

    submitting = threading.Thread(target=submit_run)
    submitting.start()
    with alive.open() as driver:
        assert int(driver.readline()) > 0  # the Python driver runs (spark-submit's child)
        task.cancel(run_)  # fail-fast, or Ctrl-C on the backfill
        assert driver.read() == ""  # end of file: the driver ended, it was not left orphaned
    submitting.join(timeout=60)

    assert not submitting.is_alive()
    assert len(failures) == 1
