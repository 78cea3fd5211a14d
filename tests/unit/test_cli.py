"""`spark-flow` in this process: handlers, usage errors, and runs that end as jobs' runs do."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from _probe import failure_lines, reports

from spark_flow import cli
from spark_flow._command_line import run_date
from spark_flow.jobs import load
from spark_flow.runners import RunLock
from spark_flow.runners.state import RunState

SOME_DATES = ("--start", "2024-01-01", "--end", "2024-01-02")
# Inputs are checked when the arguments are parsed: this folder exists wherever the tests run.
HERE = str(Path(__file__).parent)
LOADER_ARGS = ("--input", HERE, "--output", "out", "--batch-id", "{ds_nodash}")


@pytest.mark.parametrize(
    ("argv", "handler"),
    [
        (["demo"], cli._demo),
        (["generate", "devices", "--rows", "1", "--output", "x"], cli._generate_devices),
        (["generate", "visits", "--date", "2024-01-01", "--rows-per-hour", "1", "--output", "x"],
         cli._generate_visits),
        (["jobs"], cli._jobs),
        (["run", "devices_loader", "--input", "x"], cli._run),
        (["submit", "devices_loader", "--master", "local[1]"], cli._submit),
        (["backfill", "devices_loader", *SOME_DATES], cli._backfill),
        (["cluster", "up", "--port", "7078"], cli._cluster_up),
        (["cluster", "down"], cli._cluster_down),
        (["runs", "devices_loader"], cli._runs),
    ],
)  # fmt: skip
def test_each_subcommand_names_its_handler(argv: list[str], handler: Callable[..., int]) -> None:
    assert cli._parser().parse_args(argv).handler is handler


def test_main_calls_the_handler_of_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["jobs"]) == 0

    assert "devices_loader" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["run", "nope"], "job='nope' is not supported"),
        (["run", "--date", "2024-13-01", "devices_loader"], "'2024-13-01' is not a date"),
        (["run", "devices_loader", "--input", HERE], "the following arguments are required"),
        (["run", "visits_trends", "--input", HERE, "--date", "2024-02-30", "--output", "y"],
         "--date: '2024-02-30' is not a date"),
        (["run", "--date", "2024-02-01", "visits_trends", "--date", "2024-02-02"],
         "found ['2024-02-01', '2024-02-02']. Give it once: spark-flow run visits_trends --date"),
        (["run", "visits_trends", "--input", HERE, "--output", "y"],
         "visits_trends takes a date (--date) and the run was given none"),
        (["run", "visits_trends", "--date", "{ds}", "--input", HERE, "--output", "y"],
         "Give it: spark-flow run visits_trends --date YYYY-MM-DD [job args], or --date today"),
        (["submit", "nope"], "job='nope' is not supported; use one of 'devices_aggregator'"),
        (["submit", "nowhere/job.py"], "expected a bundled job's name or a .py script"),
        (["submit", "devices_loader", "--profile", "lcoal"], "profile 'lcoal': no such profile"),
        (["backfill", "nope", *SOME_DATES], "job='nope' is not supported"),
        (["backfill", "devices_loader", "--start", "2024-01-05", "--end", "2024-01-01"],
         "argument --end: expected a date on or after --start 2024-01-05, got 2024-01-01"),
        (["backfill", "devices_loader", "--start", "20240101", "--end", "2024-01-02"],
         "argument --start: '20240101' is not a date in YYYY-MM-DD form"),
        (["backfill", "devices_loader", *SOME_DATES, "--isolation", "fork"],
         "argument --isolation: invalid choice: 'fork'"),
        (["backfill", "devices_loader", *SOME_DATES, "--max-active-runs", "0"],
         "argument --max-active-runs: expected an integer >= 1, got '0'"),
        (["backfill", "visits_trends", *SOME_DATES, "--max-active-runs", "2"],
         "argument --max-active-runs: visits_trends is sequential"),
        (["backfill", "visits_trends", *SOME_DATES, "--max-active-runs", "2"],
         "Backfill it with --max-active-runs 1: slow, but correct."),
        (["run", "--date", "2024-02-01", "visits_trends", "--date", "2024-02-02"],
         "spark-flow run: error: argument --date: expected one logical date"),
        (["run", "visits_trends", "--input", HERE, "--output", "y", "--date"],
         "spark-flow run: error: argument --date: expected a value after it"),
        (["run", "--date", "2024-01-01", "devices_loader", *LOADER_ARGS[:4], "--batch-id",
          "1_000"], "devices_loader: error: argument --batch-id: expected an integer >= 0"),
        (["runs", "devices_loader", "--last", "-1"], "argument --last: expected an integer >= 1"),
        (["runs", "devices_loadr"], "job='devices_loadr' is not supported; use one of"),
        (["run", "--key", "../x", "devices_loader"], "argument --key: '../x' is not a usable name"),
        (["run", "--key", "", "devices_loader"], "argument --key: '' is not a usable name"),
        (["generate", "devices", "--rows", "-5", "--output", "x"],
         "argument --rows: expected an integer >= 0, got '-5'"),
        (["generate", "devices", "--rows", "5", "--output", "x", "--invalid-ratio", "2"],
         "argument --invalid-ratio: expected a fraction from 0 to 1"),
        (["generate", "visits", "--date", "2024-01-01", "--rows-per-hour", "-1", "--output", "x"],
         "argument --rows-per-hour: expected an integer >= 0"),
        (["backfill", "devices_loader", *SOME_DATES, "--", "--input", HERE],
         "the following arguments are required: --output"),
        (["backfill", "devices_loader", *SOME_DATES, "--", *LOADER_ARGS, "--trigger",
          "devices_aggregator", "--", "--input", "out"], "process isolation"),
        (["jobs", "--", "extra"], "unrecognized arguments: -- extra"),
        (["runs"], "the following arguments are required: job"),
        (["cluster", "sideways"], "invalid choice: 'sideways'"),
        (["generate", "visits", "--date", "2024-02-30", "--rows-per-hour", "1", "--output", "x"],
         "'2024-02-30' is not a date"),
    ],
)  # fmt: skip
def test_every_usage_error_exits_2_before_any_work(
    argv: list[str],
    fragment: str,
    probe: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(argv)

    assert caught.value.code == 2
    assert fragment in capsys.readouterr().err
    assert not (tmp_path / "state").exists()  # no run was recorded, no lock taken


@pytest.mark.parametrize("fail", ["ours", "theirs", "vanished"])
def test_a_failure_reads_the_same_from_the_job_and_from_spark_flow_run(
    fail: str, probe: str, capsys: pytest.CaptureFixture[str]
) -> None:
    submitted = load(probe).main(["--fail", fail])  # what `spark-submit jobs/probe.py` runs
    by_job = capsys.readouterr()
    ran = cli.main(["run", "--date", "2024-01-02", probe, "--fail", fail])
    by_cli = capsys.readouterr()

    (job_report,), (cli_report,) = reports(by_job.out), reports(by_cli.out)
    assert submitted == ran == 1
    assert cli_report["error"] == job_report["error"]
    assert set(cli_report) - {"logical_date"} == set(job_report)
    assert failure_lines(by_cli.err, probe) == failure_lines(by_job.err, probe)
    assert failure_lines(by_job.err, probe) == [f"{probe}: {job_report['error']}"]


def test_spark_flow_run_reports_the_date_and_triggers_the_next_job(
    probe: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["run", "--date", "2024-01-02", probe, "--trigger", "echo", "--", "-x"])

    report, triggered = reports(capsys.readouterr().out)
    assert code == 7
    assert list(report)[:3] == ["job", "logical_date", "status"]
    assert (report["logical_date"], report["triggered"]) == ("2024-01-02", "echo")
    assert triggered["argv"] == ["-x"]


@pytest.mark.parametrize(
    "argv",
    [
        ["--date", "2024-01-02", "{probe}", "--fail-on", "2024-01-02"],
        ["{probe}", "--fail-on", "2024-01-02", "--date", "2024-01-02"],
        ["{probe}", "--fail-on", "2024-01-02", "--date=2024-01-02"],
        ["--date", "2024-01-02", "{probe}", "--date", "{ds}", "--fail-on", "2024-01-02"],
    ],
)
def test_the_run_s_date_is_the_job_s_wherever_it_stands(
    argv: list[str], probe: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["run", *(a.format(probe=probe) if a != "{ds}" else a for a in argv)])

    (report,) = reports(capsys.readouterr().out)
    # The probe fails on its --fail-on date: it was handed the run's logical date.
    assert (code, report["logical_date"], report["status"]) == (1, "2024-01-02", "failed")


def test_today_is_a_logical_date_only_when_said(
    probe: str, capsys: pytest.CaptureFixture[str]
) -> None:
    today = datetime.now(timezone.utc).date().isoformat()

    assert cli.main(["run", probe, "--date", "today"]) == 0

    (report,) = reports(capsys.readouterr().out)
    assert report["logical_date"] == today


def test_a_missing_or_broken_spark_home_is_refused_before_spark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SPARK_HOME", str(tmp_path))

    with pytest.raises(SystemExit) as caught:
        cli.main(["submit", "devices_loader", "--master", "local[1]"])

    assert caught.value.code == 2
    error = capsys.readouterr().err
    assert f"expected a Spark installation (bin/spark-submit and jars/) at '{tmp_path}'" in error
    assert "Unset SPARK_HOME to use the installed pyspark's" in error


def test_a_run_refused_by_a_held_lock_adds_the_flag_that_waits(
    probe: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = RunState(tmp_path / "state")

    with RunLock(state.lock_folder(probe), job=probe, run_id="holder"):
        code = cli.main(["run", "--date", "2024-01-02", probe])

    out, err = capsys.readouterr()
    (report,) = reports(out)
    assert code == 1
    assert "probe is already running: run holder" in str(report["error"])
    assert str(report["error"]).endswith("Pass --wait SECONDS to wait for it.")
    assert "wait=SECONDS" not in str(report["error"])  # the library's way, not the CLI's
    assert failure_lines(err, probe) == [f"probe: {report['error']}"]


def test_a_run_refused_by_depends_on_past_adds_the_flag_that_starts(
    probe: str, capsys: pytest.CaptureFixture[str], fake_spark: list[object]
) -> None:
    code = cli.main(["run", "--date", "2024-01-02", "--depends-on-past", probe])

    (report,) = reports(capsys.readouterr().out)
    assert code == 1
    assert "the run for 2024-01-01 must have succeeded" in str(report["error"])
    assert str(report["error"]).endswith("Pass --first if this date is the job's first.")
    assert "first=True" not in str(report["error"])  # the library's way, not the CLI's
    assert fake_spark == []  # refused before the run: Spark never started


@pytest.mark.parametrize(
    "flags", [["--first"], ["--first", "--wait", "5"], ["--wait=0", "--first"]]
)
def test_the_flags_a_refusal_advises_work_after_the_job_name_too(
    flags: list[str], probe: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["run", "--date", "2024-01-02", "--depends-on-past", probe, *flags])

    (report,) = reports(capsys.readouterr().out)
    assert code == 0
    assert report["status"] == "success"


@pytest.mark.parametrize(
    "argv",
    [["--wait", "-1", "{probe}"], ["{probe}", "--wait", "inf"], ["{probe}", "--wait"]],
)
def test_a_bad_wait_is_a_usage_error_before_anything_runs(
    argv: list[str], probe: str, capsys: pytest.CaptureFixture[str], fake_spark: list[object]
) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["run", "--date", "2024-01-02", *(a.format(probe=probe) for a in argv)])

    assert caught.value.code == 2
    assert "--wait" in capsys.readouterr().err
    assert fake_spark == []


def test_a_backfill_date_refused_by_depends_on_past_says_how_to_go_on(
    probe: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["backfill", probe, *SOME_DATES, "--depends-on-past", "--",
                     "--date", "{ds}", "--fail-on", "2024-01-01"])  # fmt: skip

    out, err = capsys.readouterr()
    (summary,) = reports(out)
    assert code == 1
    assert [run["status"] for run in summary["runs"]] == ["failed", "not_run"]  # type: ignore[index]
    assert "spark-flow backfill: Rerun the backfill once the earlier date succeeds" in err
    refused = summary["runs"][1]  # type: ignore[index]
    assert "Rerun the backfill once the earlier date succeeds" in refused["reason"]
    assert "first=True" not in json.dumps(summary)  # the library's way, not the command line's


def test_a_backfill_starting_after_a_failed_date_runs_it_only_with_first(
    probe: str, capsys: pytest.CaptureFixture[str]
) -> None:
    backfill = ["backfill", probe, "--depends-on-past", "--start", "2024-01-02", "--end",
                "2024-01-02"]  # fmt: skip
    cli.main(["backfill", probe, "--start", "2024-01-01", "--end", "2024-01-01", "--",
              "--date", "{ds}", "--fail-on", "2024-01-01"])  # fmt: skip
    capsys.readouterr()

    refused = cli.main([*backfill, "--", "--date", "{ds}"])
    (summary,) = reports(capsys.readouterr().out)
    forced = cli.main([*backfill, "--first", "--", "--date", "{ds}"])

    assert (refused, forced) == (1, 0)
    (run,) = summary["runs"]  # type: ignore[misc]
    assert run["status"] == "not_run"
    assert "the run for 2024-01-01 must have succeeded" in run["reason"]
    assert run["reason"].endswith("with --first to run it regardless.")


def test_a_job_s_own_date_option_is_the_run_s_date_by_either_name() -> None:
    router = argparse.ArgumentParser(prog="router")
    router.add_argument("--run-date")

    day, job_args = run_date("router", None, ["--run-date", "2024-01-31", "-x"], router)
    assert (day.isoformat(), job_args) == ("2024-01-31", ["-x", "--run-date", "2024-01-31"])
    day, job_args = run_date("router", date(2024, 2, 1), ["-x"], router)
    assert job_args == ["-x", "--run-date", "2024-02-01"]
    # A job with no date of its own is keyed by the day it runs; a --date is the run's alone.
    day, job_args = run_date("plain", date(2024, 2, 2), ["-x"], argparse.ArgumentParser())
    assert (day, job_args) == (date(2024, 2, 2), ["-x"])


BLOCKER_JOB = '''
"""Test job: says it started on the FIFO it is given, then runs for a minute."""
import argparse, threading
from spark_flow.jobs import job_main

def parser():
    parser = argparse.ArgumentParser(prog="blocker")
    parser.add_argument("--fifo")
    return parser

def run(spark, args):
    with open(args.fifo, "w") as fifo:
        fifo.write("started\\n")
        fifo.flush()
        if not threading.Event().wait(60):
            fifo.write("outlived its stop\\n")
'''
# `spark-flow run` in a process of its own, with the stand-in session of this folder's tests.
CLI_PROCESS = """
import sys
sys.path.insert(0, sys.argv[1])
from _probe import FakeSession
import spark_flow.session
spark_flow.session.get_session = lambda *args, **kwargs: FakeSession()
from spark_flow import cli
raise SystemExit(cli.main(sys.argv[2:]))
"""


def test_a_run_stopped_by_sigterm_is_recorded_failed_and_releases_its_locks(
    probe: str, tmp_path: Path
) -> None:
    (tmp_path / "jobs" / "blocker.py").write_text(BLOCKER_JOB)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    argv = ["run", "--date", "2024-01-02", "blocker", "--fifo", str(fifo)]
    command = subprocess.Popen(
        [sys.executable, "-c", CLI_PROCESS, str(Path(__file__).parent), *argv],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    with fifo.open() as job:
        assert job.readline() == "started\n"
        command.send_signal(signal.SIGTERM)  # a scheduler stops the command
        assert job.read() == ""  # the job stopped at once: it did not run its minute out
    command.communicate(timeout=60)

    state = RunState(tmp_path / "state")
    (attempt,) = state.history("blocker")
    assert (attempt.status, attempt.error) == ("failed", "KeyboardInterrupt")
    for key in (None, "2024-01-02"):
        assert RunLock(state.lock_folder("blocker", key), job="blocker").holder() is None
    assert list(Path(state.lock_folder("blocker")).glob("*.released"))  # released, not expired
