"""Single and Concurrent Runner on plain tasks: order, bounds, failures, resume, depends_on_past."""

from __future__ import annotations

import inspect
import logging
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from spark_flow.delta.records import read_records
from spark_flow.errors import ConcurrentRunError, DependsOnPastError, InvalidArgumentError
from spark_flow.runners import (
    BackfillReport,
    ConcurrentRunner,
    RunContext,
    RunLock,
    RunPolicy,
    SingleRunner,
    daily,
    runner_for,
)
from spark_flow.runners.attempt import RunOptions
from spark_flow.runners.state import RunState

WEEK = daily(date(2024, 1, 1), date(2024, 1, 7))


@pytest.fixture
def state(tmp_path: Path) -> RunState:
    return RunState(tmp_path / "state")


class Recorder:
    """A task that notes when runs start and end and how many overlap; fails on given dates."""

    def __init__(self, fail_on: tuple[date, ...] = ()) -> None:
        self.fail_on = fail_on
        self.started: list[date] = []
        self.active = 0
        self.most_active = 0
        self._guard = threading.Lock()

    def __call__(self, run: RunContext) -> Mapping[str, Any]:
        with self._guard:
            self.started.append(run.logical_date)
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            self.during(run)
            if run.logical_date in self.fail_on:
                raise ValueError(f"no input for {run.logical_date}")
            return {"rows_written": run.logical_date.day}
        finally:
            with self._guard:
                self.active -= 1

    def during(self, run: RunContext) -> None:
        """Hook for tests that hold runs open."""


def test_a_single_runner_backfills_in_date_order_and_stops_at_the_first_failure(
    state: RunState,
) -> None:
    task = Recorder(fail_on=(date(2024, 1, 4),))

    report = SingleRunner("trends", state=state).backfill(list(reversed(WEEK)), task)

    assert task.started == WEEK[:4]
    assert task.most_active == 1
    assert [run.status for run in report.runs] == ["success"] * 3 + ["failed"] + ["not_run"] * 3
    assert "no input for 2024-01-04" in (report.runs[3].error or "")
    assert "the run for 2024-01-04 failed" in (report.runs[4].reason or "")
    assert not report.ok
    assert {r.logical_date for r in state.history("trends")} == set(WEEK[:4])  # never started


def test_a_concurrent_runner_overlaps_runs_but_never_more_than_its_bound(
    state: RunState,
) -> None:
    all_three = threading.Barrier(3, timeout=60)

    class HeldOpen(Recorder):
        def during(self, run: RunContext) -> None:
            if run.logical_date in WEEK[:3]:
                all_three.wait()  # passes only if the first three dates run at the same time

    task = HeldOpen()
    report = ConcurrentRunner("loader", state=state, max_active_runs=3).backfill(WEEK, task)

    assert report.ok
    assert report.count("success") == 7
    assert task.most_active == 3
    assert [run.rows for run in report.runs] == [day.day for day in WEEK]


class SlotsWatch(logging.Handler):
    """Notes when a run waits for a run slot."""

    def __init__(self, event: threading.Event) -> None:
        super().__init__()
        self.event = event

    def emit(self, record: logging.LogRecord) -> None:
        if "run slots are all taken" in record.getMessage():
            self.event.set()


def test_the_bound_holds_across_backfills_of_the_job_as_airflow_s_max_active_runs(
    state: RunState,
) -> None:
    first_two_running, release = threading.Barrier(3), threading.Event()
    second_tried = threading.Event()

    class Held(Recorder):
        def during(self, run: RunContext) -> None:
            if run.logical_date in WEEK[:2]:  # the first backfill's runs hold their slots
                first_two_running.wait(timeout=60)
                release.wait(timeout=60)
            else:  # the second backfill's runs: they must not start while those run
                second_tried.set()

    def backfill(dates: list[date]) -> None:
        ConcurrentRunner("loader", state=state, max_active_runs=2).backfill(dates, task)

    task, watch = Held(), SlotsWatch(second_tried)
    logger = logging.getLogger("spark_flow.runners.attempt")
    logger.addHandler(watch)
    first = threading.Thread(target=backfill, args=(WEEK[:2],))
    second = threading.Thread(target=backfill, args=(WEEK[4:6],))
    try:
        first.start()
        first_two_running.wait(timeout=60)
        second.start()  # another process's backfill, as far as the locks can tell
        assert second_tried.wait(timeout=60)  # it waits for a slot (or, unbounded, runs)
    finally:
        release.set()
        first.join(timeout=60)
        second.join(timeout=60)
        logger.removeHandler(watch)

    assert task.most_active == 2
    assert sorted(task.started) == WEEK[:2] + WEEK[4:6]


WAITING_BACKFILL = """
import logging, signal, sys
from datetime import date
from spark_flow.runners import ConcurrentRunner, RunState
signal.signal(signal.SIGINT, signal.default_int_handler)  # whatever the parent ignores
logging.basicConfig(format="%(message)s")
runner = ConcurrentRunner("loader", state=RunState(sys.argv[1]), max_active_runs=2)
runner.backfill([date(2024, 1, 1)], lambda run: {})
"""


def test_an_interrupted_backfill_stops_its_dates_waiting_for_a_run_slot(
    state: RunState,
) -> None:
    slots = [RunLock(state.lock_folder("loader", f"_slot{n}"), job="loader") for n in (0, 1)]
    for slot in slots:
        slot.acquire()  # another process's runs hold both slots
    backfill = subprocess.Popen(
        [sys.executable, "-c", WAITING_BACKFILL, state.location],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert backfill.stderr is not None
        while "run slots are all taken" not in (line := backfill.stderr.readline()):
            assert line, "the backfill ended without waiting for a slot"
        backfill.send_signal(signal.SIGINT)  # Ctrl-C
        _, err = backfill.communicate(timeout=60)  # a date waiting for a slot would never end
    finally:
        backfill.kill()
        for slot in slots:
            slot.release()

    assert "KeyboardInterrupt" in err
    assert state.history("loader") == []  # the waiting date never started


def test_a_failed_run_does_not_stop_the_others_without_fail_fast(state: RunState) -> None:
    task = Recorder(fail_on=(date(2024, 1, 2),))

    report = ConcurrentRunner("loader", state=state, max_active_runs=2).backfill(WEEK, task)

    assert sorted(task.started) == WEEK
    assert report.count("failed") == 1
    assert report.count("success") == 6
    assert report.as_dict()["status"] == "failed"
    (failed,) = [r for r in state.history("loader") if r.status == "failed"]
    assert failed.logical_date == date(2024, 1, 2)
    assert "no input" in (failed.error or "")


def test_fail_fast_cancels_the_running_runs_and_starts_no_more(state: RunState) -> None:
    first_started, cancelled = threading.Event(), threading.Event()

    class CancelledFirst(Recorder):
        def during(self, run: RunContext) -> None:
            if run.logical_date == WEEK[0]:
                first_started.set()
                assert cancelled.wait(60), "the failure should have cancelled this run"
                raise RuntimeError("job cancelled")
            assert first_started.wait(60)

    task = CancelledFirst(fail_on=(WEEK[1],))
    runner = ConcurrentRunner("loader", state=state, max_active_runs=2, fail_fast=True)
    report = runner.backfill(WEEK, task, cancel=lambda run: cancelled.set())

    assert [run.status for run in report.runs] == ["cancelled", "failed"] + ["not_run"] * 5
    assert task.started == WEEK[:2] or task.started == [WEEK[1], WEEK[0]]
    recorded = {r.logical_date: r for r in state.history("loader")}
    assert (recorded[WEEK[0]].error or "").startswith("cancelled: ")
    assert runner.run(WEEK[6], Recorder()).status == "success"  # the stop ended with it


def test_a_second_backfill_resumes_leaving_what_succeeded_already_done_unless_rerun(
    state: RunState,
) -> None:
    ConcurrentRunner("loader", state=state, max_active_runs=3).backfill(
        WEEK, Recorder(fail_on=(WEEK[2], WEEK[5]))
    )

    task = Recorder()
    report = ConcurrentRunner("loader", state=state, max_active_runs=3).backfill(WEEK, task)
    assert sorted(task.started) == [WEEK[2], WEEK[5]]
    assert report.count("already_done") == 5
    assert report.ok
    assert sorted(r.attempt for r in state.history("loader") if r.logical_date == WEEK[2]) == [1, 2]
    assert [run.rows for run in report.runs] == [day.day for day in WEEK]  # done keep theirs

    again = Recorder()
    ConcurrentRunner("loader", state=state, max_active_runs=3, rerun=True).backfill(WEEK, again)
    assert sorted(again.started) == WEEK


def test_depends_on_past_refuses_a_date_whose_previous_run_failed_or_never_ran(
    state: RunState,
) -> None:
    runner = SingleRunner("trends", state=state, depends_on_past=True)

    with pytest.raises(DependsOnPastError) as never_ran:
        runner.run(WEEK[1], Recorder())
    assert (never_ran.value.previous_date, never_ran.value.found) == ("2024-01-01", "never ran")

    with pytest.raises(ValueError, match="no input"):
        runner.run(WEEK[0], Recorder(fail_on=(WEEK[0],)), first=True)
    with pytest.raises(DependsOnPastError) as failed:
        runner.run(WEEK[1], Recorder())
    assert failed.value.found.startswith("is failed (run ")
    assert "Run (or fix and rerun) 2024-01-01 first" in str(failed.value)
    assert "pass first=True to the runner's run()" in str(failed.value)
    assert "--first" not in str(failed.value)  # library advice: the CLI adds its own flag
    refused = state.latest("trends", WEEK[1])
    assert refused is not None
    assert refused.status == "not_run"


def test_depends_on_past_runs_once_the_previous_date_succeeded(state: RunState) -> None:
    runner = SingleRunner("trends", state=state, depends_on_past=True)

    first = runner.run(WEEK[0], Recorder(), first=True)
    second = runner.run(WEEK[1], Recorder())

    assert (first.status, first.report) == ("success", {"rows_written": 1})
    assert (second.status, second.report, second.attempt) == ("success", {"rows_written": 2}, 1)


def test_a_backfill_exempts_its_first_date_from_depends_on_past(state: RunState) -> None:
    task = Recorder()

    report = SingleRunner("trends", state=state, depends_on_past=True).backfill(WEEK[3:], task)

    assert report.ok
    assert task.started == WEEK[3:]


def test_a_backfill_starting_after_a_failed_date_is_refused_unless_first(
    state: RunState,
) -> None:
    runner = SingleRunner("trends", state=state, depends_on_past=True)
    runner.backfill(WEEK[:3], Recorder(fail_on=(WEEK[2],)))  # 2024-01-03 failed

    refused = runner.backfill(WEEK[3:5], Recorder())  # a range starting after the failure
    forced = runner.backfill(WEEK[3:5], Recorder(), first=True)

    assert [run.status for run in refused.runs] == ["not_run", "not_run"]
    assert isinstance(refused.runs[0].exception, DependsOnPastError)
    assert refused.runs[0].exception.previous_date == "2024-01-03"
    assert [run.status for run in forced.runs] == ["success", "success"]


def test_depends_on_past_with_concurrency_still_waits_for_the_previous_date(
    state: RunState,
) -> None:
    task = Recorder(fail_on=(WEEK[2],))
    runner = ConcurrentRunner("loader", state=state, max_active_runs=4, depends_on_past=True)

    report = runner.backfill(WEEK, task)

    assert task.started == WEEK[:3]
    assert task.most_active == 1
    assert [run.status for run in report.runs] == ["success"] * 2 + ["failed"] + ["not_run"] * 4
    assert "is failed" in (report.runs[3].reason or "")


def test_a_run_records_itself_running_while_it_runs(state: RunState) -> None:
    seen: list[str] = []

    def task(run: RunContext) -> Mapping[str, Any]:
        latest = state.latest("j", run.logical_date)
        seen.append(latest.status if latest else "none")
        return {}

    SingleRunner("j", state=state).run(WEEK[0], task)

    assert seen == ["running"]
    latest = state.latest("j", WEEK[0])
    assert latest is not None
    assert latest.status == "success"


CRASHING_RUN = """
import os, sys
from datetime import date
from spark_flow.runners import RunState, SingleRunner
# The driver dies mid-run: no `finally` runs, the lock stays taken, the attempt stays running.
SingleRunner("j", state=RunState(sys.argv[1])).run(date(2024, 1, 1), lambda run: os._exit(9))
"""


def test_a_run_whose_process_died_is_recorded_failed_by_the_next_attempt(
    state: RunState,
) -> None:
    crashed = subprocess.run([sys.executable, "-c", CRASHING_RUN, state.location], check=False)
    assert crashed.returncode == 9
    (dead,) = state.history("j")
    assert dead.status == "running"

    outcome = SingleRunner("j", state=state).run(WEEK[0], Recorder())

    assert (outcome.status, outcome.attempt) == ("success", 2)
    second, first = state.history("j")
    assert (second.attempt, second.status) == (2, "success")
    assert (first.attempt, first.status, first.ended_at) == (1, "failed", None)
    assert (first.error or "").startswith(f"abandoned: run {dead.run_id} (host ")
    assert f"pid {dead.pid})" in (first.error or "")


INTERRUPTED_BACKFILL = """
import signal, sys, threading
from datetime import date
from spark_flow.runners import ConcurrentRunner, RunState, daily
signal.signal(signal.SIGINT, signal.default_int_handler)  # whatever the parent ignores
cancelled = threading.Event()

def task(run):
    sys.stdout.write("started\\n")  # one write: print's two could interleave with the other run's
    sys.stdout.flush()
    cancelled.wait()  # a long Spark job, until its cancel hook stops it
    raise RuntimeError("its Spark job was cancelled")

runner = ConcurrentRunner("j", state=RunState(sys.argv[1]), max_active_runs=2)
runner.backfill(daily(date(2024, 1, 1), date(2024, 1, 3)), task, cancel=lambda run: cancelled.set())
"""


def test_an_interrupted_backfill_cancels_its_running_runs_records_and_releases_them(
    state: RunState,
) -> None:
    backfill = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_BACKFILL, state.location],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert backfill.stdout is not None
        assert [backfill.stdout.readline() for _ in range(2)] == ["started\n"] * 2
        backfill.send_signal(signal.SIGINT)  # Ctrl-C
        _, err = backfill.communicate(timeout=60)  # without the cancel, it never ends
    finally:
        backfill.kill()

    assert "KeyboardInterrupt" in err
    runs = state.history("j")
    assert sorted(str(run.logical_date) for run in runs) == ["2024-01-01", "2024-01-02"]
    assert {(run.status, (run.error or "")[:11]) for run in runs} == {("failed", "cancelled: ")}
    for day in ("2024-01-01", "2024-01-02"):
        assert RunLock(state.lock_folder("j", day), job="j").holder() is None


def test_a_lock_that_cannot_be_released_leaves_the_run_s_success_standing(
    state: RunState, caplog: pytest.LogCaptureFixture
) -> None:
    def cleaned_up_meanwhile(run: RunContext) -> Mapping[str, Any]:
        shutil.rmtree(state.locks)  # someone clears the locks while the run goes on,
        Path(state.locks).write_text("")  # and leaves a file where they were
        return {"rows_written": 1}

    with caplog.at_level(logging.WARNING, "spark_flow.runners.lock"):
        outcome = SingleRunner("j", state=state).run(WEEK[0], cleaned_up_meanwhile)

    assert outcome.status == "success"
    assert "could not release its lock" in caplog.text
    latest = state.latest("j", WEEK[0])
    assert latest is not None
    assert latest.status == "success"


def test_a_date_locked_by_another_run_fails_alone(state: RunState) -> None:
    other = RunLock(state.lock_folder("loader", "2024-01-03"), job="loader", key="2024-01-03")
    with other:
        report = ConcurrentRunner("loader", state=state, max_active_runs=2).backfill(
            WEEK, Recorder()
        )

    (locked,) = [run for run in report.runs if run.status == "failed"]
    assert locked.logical_date == date(2024, 1, 3)
    assert isinstance(locked.exception, ConcurrentRunError)
    assert report.count("success") == 6


def test_a_single_run_holding_the_job_lock_blocks_another(state: RunState) -> None:
    runner = SingleRunner("trends", state=state)
    inner: list[BaseException] = []

    def task(run: RunContext) -> Mapping[str, Any]:
        try:
            SingleRunner("trends", state=state).run(WEEK[1], Recorder())
        except ConcurrentRunError as exc:
            inner.append(exc)
        return {}

    runner.run(WEEK[0], task)

    assert len(inner) == 1
    assert "trends is already running" in str(inner[0])


def test_a_single_run_and_a_concurrent_backfill_never_run_the_same_date_at_once(
    state: RunState,
) -> None:
    backfills: list[BackfillReport] = []

    def single(run: RunContext) -> Mapping[str, Any]:
        # `spark-flow run` of a date while a backfill covering it starts: they must not overlap.
        runner = ConcurrentRunner("loader", state=state, max_active_runs=2)
        backfills.append(runner.backfill(WEEK[:3], Recorder()))
        return {}

    SingleRunner("loader", state=state).run(WEEK[1], single)

    (report,) = backfills
    assert [run.status for run in report.runs] == ["success", "failed", "success"]
    assert isinstance(report.runs[1].exception, ConcurrentRunError)
    assert "loader [2024-01-02] is already running" in (report.runs[1].error or "")


def test_each_key_of_a_single_runner_has_its_own_past(state: RunState) -> None:
    def runner(key: str | None) -> SingleRunner:
        return SingleRunner("loader", state=state, key=key, depends_on_past=True)

    done_by_a = runner("tenant_a").run(WEEK[0], Recorder(), first=True)
    with pytest.raises(DependsOnPastError) as refused:
        runner("tenant_b").run(WEEK[1], Recorder())  # tenant_a's 2024-01-01 is not b's past
    by_b = runner("tenant_b").run(WEEK[0], Recorder(), first=True)  # a's success: not b's
    keyless = runner(None).run(WEEK[0], Recorder(), first=True)

    assert [done_by_a.status, by_b.status, keyless.status] == ["success"] * 3
    assert (by_b.attempt, keyless.attempt) == (1, 1)
    assert refused.value.found == "never ran"
    assert {run.key for run in state.history("loader")} == {"tenant_a", "tenant_b", None}


def test_a_sequential_job_refuses_concurrent_runs_with_its_reason(state: RunState) -> None:
    policy = RunPolicy(sequential=True, depends_on_past=True, reason="reads yesterday's output")

    with pytest.raises(InvalidArgumentError) as caught:
        runner_for("trends", state=state, policy=policy, max_active_runs=3)
    assert "reads yesterday's output" in str(caught.value)
    assert "wrong results" in str(caught.value)

    single = runner_for("trends", state=state, policy=policy, max_active_runs=1)
    assert isinstance(single, SingleRunner)
    assert single.options.depends_on_past
    concurrent = runner_for("loader", state=state, policy=RunPolicy(), max_active_runs=3)
    assert isinstance(concurrent, ConcurrentRunner)
    assert not concurrent.options.depends_on_past


def test_bad_bounds_and_empty_backfills_are_refused(state: RunState) -> None:
    with pytest.raises(InvalidArgumentError, match="max_active_runs"):
        ConcurrentRunner("loader", state=state, max_active_runs=0)
    with pytest.raises(InvalidArgumentError, match="no logical dates"):
        SingleRunner("j", state=state).backfill([], Recorder())


def test_a_backfill_tells_dates_done_before_from_dates_refused_and_records_each_once(
    state: RunState,
) -> None:
    runner = ConcurrentRunner("loader", state=state, max_active_runs=2, depends_on_past=True)
    earlier = runner.run(WEEK[0], Recorder(), first=True)

    report = runner.backfill(WEEK[:4], Recorder(fail_on=(WEEK[2],)))

    done, ran, failed, refused = report.runs
    assert [run.status for run in report.runs] == ["already_done", "success", "failed", "not_run"]
    assert (done.reason, done.error) == (
        f"already succeeded (run {earlier.run_id}, attempt 1)",
        None,
    )
    assert done.report == {"rows_written": 1}  # the report of the run that succeeded
    assert (ran.reason, ran.error) == (None, None)
    assert "no input for 2024-01-03" in (failed.error or "")
    assert refused.error is None
    assert isinstance(refused.exception, DependsOnPastError)
    assert refused.exception.found.startswith("is failed (run ")
    assert report.as_dict() | {"runs": []} == {
        "job": "loader", "status": "failed", "max_active_runs": 2, "runs": [],
        "success": 1, "already_done": 1, "failed": 1, "cancelled": 0, "not_run": 1,
    }  # fmt: skip
    rows = sorted(read_records(state.table), key=lambda row: row["recorded_at"])
    statuses = {day: [r["status"] for r in rows if r["logical_date"] == day] for day in WEEK[:4]}
    assert statuses == {
        WEEK[0]: ["running", "success"],  # the earlier run only: already done adds nothing
        WEEK[1]: ["running", "success"],
        WEEK[2]: ["running", "failed"],
        WEEK[3]: ["not_run"],  # refused once, never started
    }


def test_a_run_of_a_date_done_before_returns_already_done_without_running_it(
    state: RunState,
) -> None:
    runner = SingleRunner("j", state=state)
    first = runner.run(WEEK[0], Recorder())
    task = Recorder()

    again = runner.run(WEEK[0], task)

    assert task.started == []
    assert (again.status, again.report, again.error) == ("already_done", first.report, None)
    assert again.reason == f"already succeeded (run {first.run_id}, attempt 1)"


@pytest.mark.parametrize("make", [SingleRunner, ConcurrentRunner, runner_for])
def test_runner_options_are_named_keyword_only_parameters(make: Callable[..., object]) -> None:
    parameters = inspect.signature(make).parameters.values()
    keyword_only = {p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}

    assert not [p for p in parameters if p.kind is inspect.Parameter.VAR_KEYWORD]
    assert {"state", "depends_on_past", "rerun", "wait", "lease_seconds", "on_progress"} <= (
        keyword_only
    )


def test_runner_for_passes_every_option_on(state: RunState) -> None:
    options = {"rerun": True, "wait": 5.0, "lease_seconds": 10.0}
    seen: list[object] = []
    sequential = RunPolicy(sequential=True, depends_on_past=True)

    single = runner_for("a", state=state, policy=sequential, on_progress=seen.append, **options)
    concurrent = runner_for("b", state=state, policy=RunPolicy(), max_active_runs=2, **options)

    assert single.options == RunOptions(depends_on_past=True, **options)
    assert concurrent.options == RunOptions(depends_on_past=False, **options)
    single.backfill(WEEK[:1], Recorder())
    assert seen  # its progress hook was called


@pytest.mark.parametrize(
    ("options", "argument"),
    [({"wait": -1.0}, "wait"), ({"lease_seconds": 0.0}, "lease_seconds")],
)
def test_options_that_cannot_work_are_refused_when_the_runner_is_made(
    state: RunState, options: dict[str, float], argument: str
) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        SingleRunner("j", state=state, **options)

    assert caught.value.argument == argument
    assert not Path(state.locks).exists()  # refused before any run


def test_a_task_returning_nothing_succeeds_and_depends_on_past_builds_on_it(
    state: RunState,
) -> None:
    # The book's Concurrent Runner task (devices_loader's load_new_devices_to_internal_storage)
    # copies a file and returns None; that run was recorded failed ("'NoneType' object is not
    # iterable") after its work was done, and depends_on_past then refused the next date.
    copied: list[date] = []
    runner = SingleRunner("devices_loader", state=state, depends_on_past=True)

    report = runner.backfill(list(WEEK[:3]), lambda run: copied.append(run.logical_date))

    assert [run.status for run in report.runs] == ["success"] * 3
    assert copied == list(WEEK[:3])
    assert [run.report for run in state.history("devices_loader")][-1] == {}
    assert runner.run(WEEK[3], lambda run: 7).report == {"result": 7}
