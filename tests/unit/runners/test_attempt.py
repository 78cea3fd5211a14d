"""One date's run: the history read once under the lock, attempts numbered from it."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from spark_flow.errors import LockLostError
from spark_flow.runners import ConcurrentRunner, RunContext, RunLock, SingleRunner
from spark_flow.runners.state import RunRecord, RunState

DAY = date(2024, 1, 2)


class CountingState(RunState):
    """A store that counts how often a job's history is read."""

    reads = 0

    def history(self, job: str, *, key: str | None = None) -> list[RunRecord]:
        self.reads += 1
        return super().history(job, key=key)


def report_rows(run: RunContext) -> Mapping[str, Any]:
    return {"rows_written": run.attempt}


def test_an_attempt_reads_the_history_once_for_every_decision(tmp_path: Path) -> None:
    state = CountingState(tmp_path)
    runner = SingleRunner("j", state=state, depends_on_past=True, rerun=True)
    runner.run(date(2024, 1, 1), report_rows, first=True)
    runner.run(DAY, report_rows)
    state.reads = 0

    rerun = runner.run(DAY, report_rows)  # rerun, depends_on_past, attempt number: one read

    assert state.reads == 1
    assert (rerun.status, rerun.attempt) == ("success", 2)
    assert rerun.run_id is not None


def test_a_date_whose_lock_is_held_fails_without_a_row_in_the_history(tmp_path: Path) -> None:
    state = RunState(tmp_path)
    with RunLock(state.lock_folder("j", DAY.isoformat()), job="j", key=DAY.isoformat()):
        report = ConcurrentRunner("j", state=state, max_active_runs=1).backfill([DAY], report_rows)

    (locked,) = report.runs
    assert (locked.status, locked.run_id) == ("failed", None)
    assert "j [2024-01-02] is already running" in (locked.error or "")
    assert state.history("j") == []


def test_a_run_whose_lock_was_taken_over_while_it_ran_fails(tmp_path: Path) -> None:
    state = RunState(tmp_path)
    folder = Path(state.lock_folder("j", None))

    def stall_past_the_lease(run: RunContext) -> Mapping[str, Any]:
        epoch_file = next(folder.glob("*.lock"))
        long_ago = time.time() - 120  # as if the run had stalled two leases long
        os.utime(epoch_file, (long_ago, long_ago))
        RunLock(folder, job="j", run_id="taker", renew=False).acquire()
        return {"rows_written": 1}

    runner = SingleRunner("j", state=state)
    with pytest.raises(LockLostError) as lost:
        runner.run(DAY, stall_past_the_lease)

    assert "lost its lock while it ran" in str(lost.value)
    (record,) = [r for r in state.history("j") if r.logical_date == DAY]
    assert record.status == "failed"
    assert "another run took it over" in (record.error or "")
