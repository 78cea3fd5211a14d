"""The run history in a bucket: a Delta table there, written and read by drivers anywhere.

Against a real S3 server (moto, 127.0.0.1): the table is created once however many processes
race to create it, the runners keep their history and leases there, and `spark-flow runs` reads
it from another process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import obstore
import pytest
from deltalake import DeltaTable

from spark_flow import storage
from spark_flow.runners import ConcurrentRunner, RunContext, RunState, SingleRunner
from spark_flow.runners.state import STATE_ENV, RunRecord, now

SPARK_FLOW = str(Path(sys.executable).parent / "spark-flow")
DAYS = [date(2024, 1, 1) + timedelta(days=n) for n in range(3)]

APPENDER = """
import sys, time
from datetime import date
from pathlib import Path
from spark_flow.runners.state import RunRecord, RunState, now
state, who, meet = RunState(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
(meet / who).touch()
while len(list(meet.iterdir())) < 3:  # a rendezvous: all three create the table at once
    time.sleep(0.01)
for n in range(4):
    state.record(RunRecord("j", date(2024, 1, 1 + n), f"{who}-{n}", 1, "success", now(), now()))
"""


def report_day(context: RunContext) -> dict[str, Any]:
    return {"rows": context.logical_date.day}


@pytest.fixture
def state(s3_bucket: str) -> RunState:
    return RunState(f"{s3_bucket}/state")


def test_the_history_is_a_delta_table_in_the_bucket(state: RunState) -> None:
    started = RunRecord("loader", DAYS[0], "r1", 1, "running", now())
    state.record(started)
    state.record(started.ended("success", report={"rows_written": 7}))

    (attempt,) = state.history("loader")
    assert (attempt.run_id, attempt.status, attempt.rows) == ("r1", "success", 7)
    assert state.table == state.location + "/runs"
    assert DeltaTable(state.table).version() == 2  # created once, then two appends


def test_processes_creating_and_appending_at_once_never_lose_rows(
    state: RunState, tmp_path: Path
) -> None:
    writers = [
        subprocess.Popen([sys.executable, "-c", APPENDER, state.location, who, str(tmp_path)])
        for who in "abc"
    ]
    assert [w.wait(timeout=120) for w in writers] == [0, 0, 0]

    run_ids = {r.run_id for r in state.history("j")}
    assert run_ids == {f"{who}-{n}" for who in "abc" for n in range(4)}
    assert DeltaTable(state.table).version() == 12  # one create and twelve appends, no retry
    leftovers = obstore.list(storage.object_store(state.table), "_spark_flow_create").collect()
    assert leftovers == []  # the creators' scratch tables are gone


def test_the_state_location_comes_from_the_environment_or_the_profile(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = tmp_path / "bucket.toml"
    profile.write_text(f'[state]\nlocation = "{s3_bucket}/from-profile"\n')
    monkeypatch.delenv(STATE_ENV, raising=False)
    assert RunState.from_profile(str(profile)).location == f"{s3_bucket}/from-profile"

    monkeypatch.setenv(STATE_ENV, f"{s3_bucket}/from-env")
    assert RunState.from_profile(str(profile)).location == f"{s3_bucket}/from-env"


def test_spark_flow_runs_lists_the_history_in_the_bucket(state: RunState, tmp_path: Path) -> None:
    SingleRunner("loader", state=state).run(DAYS[0], report_day)

    listed = subprocess.run(
        [SPARK_FLOW, "runs", "loader"], cwd=tmp_path, capture_output=True, text=True,
        env={**os.environ, STATE_ENV: state.location}, timeout=120, check=False,
    )  # fmt: skip

    assert listed.returncode == 0, listed.stderr
    assert "2024-01-01" in listed.stdout
    assert "success" in listed.stdout


def test_a_single_runner_keeps_its_history_and_lease_in_the_bucket(state: RunState) -> None:
    runner = SingleRunner("loader", state=state)

    ran = runner.run(DAYS[0], report_day)
    again = runner.run(DAYS[0], report_day)

    assert (ran.status, again.status) == ("success", "already_done")
    assert storage.exists(storage.join(state.lock_folder("loader"), "lease.json"))


def test_a_concurrent_backfill_of_three_dates_with_its_state_in_the_bucket(
    state: RunState,
) -> None:
    runner = ConcurrentRunner("loader", state=state, max_active_runs=3)

    report = runner.backfill(DAYS, report_day)

    assert [run.status for run in report.runs] == ["success"] * 3
    assert {r.logical_date: r.status for r in state.history("loader")} == dict.fromkeys(
        DAYS, "success"
    )
    for day in DAYS:  # one lease per date, each released
        assert storage.exists(
            storage.join(state.lock_folder("loader", day.isoformat()), "lease.json")
        )
    replay = runner.backfill(DAYS, report_day)
    assert [run.status for run in replay.runs] == ["already_done"] * 3
