"""Runner leases on an object store: drivers sharing nothing but a bucket race for one lock.

The lease is one object, `lease.json`, created with put-if-absent and then changed only by puts
conditional on its ETag; these tests run it against a real S3 server (moto, 127.0.0.1).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import obstore
import pytest

from spark_flow import storage
from spark_flow.errors import ConcurrentRunError
from spark_flow.runners import RunContext, RunLock, RunState, SingleRunner
from spark_flow.runners.state import STATE_ENV

CHILD = Path(__file__).with_name("_s3_runner_child.py")
DAY = date(2024, 1, 2)


def driver(state: str, cwd: Path) -> subprocess.Popen[str]:
    """A driver process of its own working folder, sharing only the state location."""
    cwd.mkdir()
    return subprocess.Popen(
        [sys.executable, str(CHILD)], cwd=cwd, env={**os.environ, STATE_ENV: state},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def tell(process: subprocess.Popen[str], line: str) -> None:
    assert process.stdin is not None
    process.stdin.write(line + "\n")
    process.stdin.flush()


def answer(process: subprocess.Popen[str]) -> dict[str, Any]:
    assert process.stdout is not None
    return dict(json.loads(process.stdout.readline()))


def lease_object(folder: str) -> dict[str, Any]:
    got = obstore.get(storage.object_store(folder), "lease.json")
    return dict(json.loads(bytes(got.bytes())))


def report_rows(context: RunContext) -> dict[str, Any]:
    return {"rows": 1}


@pytest.fixture
def state(s3_bucket: str) -> RunState:
    return RunState(f"{s3_bucket}/state")


def test_two_drivers_sharing_only_the_bucket_race_and_exactly_one_runs(
    state: RunState, tmp_path: Path
) -> None:
    racers = [driver(state.location, tmp_path / "a"), driver(state.location, tmp_path / "b")]
    for racer in racers:
        tell(racer, "go")
    answers = [answer(racer) for racer in racers]

    (won,) = [a for a in answers if a["ran"]]
    (lost,) = [a for a in answers if not a["ran"]]
    winner, loser = racers[answers.index(won)], racers[answers.index(lost)]
    assert lost["holder"]["run_id"] == won["run_id"]
    assert (lost["holder"]["host"], lost["holder"]["pid"]) == (socket.gethostname(), winner.pid)
    assert f"racer is already running: run {won['run_id']}" in lost["error"]
    assert loser.wait(timeout=60) == 1
    assert lease_object(state.lock_folder("racer"))["run_id"] == won["run_id"]

    tell(winner, "release")
    assert winner.wait(timeout=60) == 0
    (attempt,) = state.history("racer")  # the refused driver left no row
    assert (attempt.run_id, attempt.status) == (won["run_id"], "success")
    assert lease_object(state.lock_folder("racer"))["released"] is True


def test_a_killed_drivers_lease_is_taken_over_and_the_takeover_names_it(
    state: RunState, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    holder = driver(state.location, tmp_path / "holder")
    tell(holder, "go")
    killed_run = answer(holder)["run_id"]
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)

    with caplog.at_level(logging.WARNING, "spark_flow.runners.lock"):
        outcome = SingleRunner("racer", state=state).run(DAY, report_rows)

    assert (outcome.status, outcome.attempt) == ("success", 2)
    assert f"taking the lock over from run {killed_run}" in caplog.text
    assert f"pid {holder.pid}" in caplog.text
    assert "its process is gone" in caplog.text
    (_, abandoned) = state.history("racer")  # the killed run is no longer `running`
    assert (abandoned.run_id, abandoned.status) == (killed_run, "failed")
    assert (abandoned.error or "").startswith(f"abandoned: run {killed_run}")


def test_an_expired_lease_is_taken_over_and_its_stalled_holder_learns_it_lost(
    state: RunState, caplog: pytest.LogCaptureFixture
) -> None:
    folder = state.lock_folder("j")
    stalled = RunLock(folder, job="j", run_id="stalled", lease_seconds=1.0, renew=False)
    stalled.acquire()
    with pytest.raises(ConcurrentRunError) as refused:
        RunLock(folder, job="j").acquire()
    assert refused.value.holder["run_id"] == "stalled"

    taker = RunLock(folder, job="j", run_id="taker")
    with caplog.at_level(logging.WARNING, "spark_flow.runners.lock"):
        taker.acquire(wait=60, poll=0.05)  # the stalled holder's lease runs out meanwhile
    assert "taking the lock over from run stalled" in caplog.text
    assert "its lease expired" in caplog.text
    assert stalled.renew() is False
    assert stalled.lost

    stalled.release()  # conditional on its own version: the taker's lease stays
    holder = taker.holder()
    assert holder is not None
    assert holder.run_id == "taker"
    assert "had lost its lock before releasing it" in caplog.text
    taker.release()
    assert taker.holder() is None


def test_renewal_keeps_a_live_holders_lease_past_its_first_expiry(state: RunState) -> None:
    folder = state.lock_folder("j")
    with (
        RunLock(folder, job="j", run_id="alive", lease_seconds=1.0),
        pytest.raises(ConcurrentRunError) as caught,
    ):
        RunLock(folder, job="j").acquire(wait=2.5, poll=0.1)  # over two leases long

    assert caught.value.holder["run_id"] == "alive"
    assert caught.value.waited is not None
    assert caught.value.waited >= 2.5


def test_renewing_moves_the_lease_forward_with_a_new_version(state: RunState) -> None:
    folder = state.lock_folder("j")
    lock = RunLock(folder, job="j", lease_seconds=30, renew=False)
    lock.acquire()
    before, first = lock.holder(), lease_object(folder)

    assert lock.renew()
    after = lock.holder()
    assert before is not None
    assert after is not None
    assert after.lease_until > before.lease_until
    assert lease_object(folder)["nonce"] != first["nonce"]  # a new content, hence a new ETag
    lock.release()


def test_a_released_lease_is_claimed_by_the_next_run(state: RunState) -> None:
    folder = state.lock_folder("j")
    with RunLock(folder, job="j", run_id="first"):
        pass
    with RunLock(folder, job="j", run_id="second") as second:
        holder = second.holder()
        assert holder is not None
        assert holder.run_id == "second"
    assert second.holder() is None
    assert lease_object(folder)["released"] is True


def test_a_lease_object_deleted_under_its_holder_is_taken_again(
    state: RunState, caplog: pytest.LogCaptureFixture
) -> None:
    folder = state.lock_folder("j")
    holder = RunLock(folder, job="j", run_id="holder", renew=False)
    holder.acquire()
    store = storage.object_store(folder)
    obstore.delete(store, "lease.json")  # a clean-up of the state prefix while the run goes on

    with caplog.at_level(logging.WARNING, "spark_flow.runners.lock"):
        assert holder.renew()
    assert "lease deleted while it ran" in caplog.text
    assert not holder.lost
    assert lease_object(folder)["run_id"] == "holder"
    holder.release()
