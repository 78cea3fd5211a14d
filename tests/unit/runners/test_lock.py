"""RunLock: real processes racing for one lock, waiting for it, and taking over stale leases."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spark_flow.errors import ConcurrentRunError, InvalidArgumentError, StorageError
from spark_flow.runners import RunLock
from spark_flow.runners._lease_store import LocalLeases

CHILD = Path(__file__).with_name("_lock_child.py")


def start(folder: Path, *wait: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(folder), *wait],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def tell(process: subprocess.Popen[str], line: str) -> None:
    assert process.stdin is not None
    process.stdin.write(line + "\n")
    process.stdin.flush()


def answer(process: subprocess.Popen[str]) -> dict[str, object]:
    assert process.stdout is not None
    return dict(json.loads(process.stdout.readline()))


def finish(process: subprocess.Popen[str]) -> int:
    tell(process, "release")
    return process.wait(timeout=30)


def test_of_two_racing_processes_exactly_one_gets_the_lock(tmp_path: Path) -> None:
    racers = [start(tmp_path), start(tmp_path)]
    for racer in racers:
        tell(racer, "go")
    answers = [answer(racer) for racer in racers]

    winners = [a for a in answers if a["acquired"]]
    losers = [a for a in answers if not a["acquired"]]
    assert len(winners) == 1
    assert len(losers) == 1
    holder = losers[0]["holder"]
    assert isinstance(holder, dict)
    assert holder["run_id"] == winners[0]["run_id"]
    winner, loser = racers[answers.index(winners[0])], racers[answers.index(losers[0])]
    assert holder["pid"] == winner.pid
    assert loser.wait(timeout=30) == 1
    assert finish(winner) == 0


def test_a_waiting_process_gets_the_lock_when_the_holder_releases_it(tmp_path: Path) -> None:
    holder, waiter = start(tmp_path), start(tmp_path, "60")
    tell(holder, "go")
    assert answer(holder)["acquired"] is True
    tell(waiter, "go")
    assert waiter.stderr is not None
    assert "waiting for run" in waiter.stderr.readline()  # it found the lock taken and waits

    assert finish(holder) == 0
    assert answer(waiter)["acquired"] is True
    assert finish(waiter) == 0


def test_waiting_gives_up_after_its_timeout_naming_the_holder(tmp_path: Path) -> None:
    with (
        RunLock(tmp_path, job="j", run_id="first") as first,
        pytest.raises(ConcurrentRunError) as caught,
    ):
        RunLock(tmp_path, job="j").acquire(wait=0.2, poll=0.05)

    error = caught.value
    assert error.job == "j"
    assert error.holder["run_id"] == "first"
    assert error.holder["pid"] == os.getpid()
    assert error.waited is not None
    assert error.waited >= 0.2
    assert "is already running after waiting" in str(error)
    assert "pass wait=SECONDS to the runner" in str(error)
    assert "--wait" not in str(error)  # library advice: the CLI adds its own flag
    assert not first.held


def test_a_killed_holder_is_taken_over_at_once_and_the_takeover_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    holder = start(tmp_path)
    tell(holder, "go")
    assert answer(holder)["acquired"] is True
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)

    with (
        caplog.at_level(logging.WARNING, "spark_flow.runners.lock"),
        RunLock(tmp_path, job="racer") as lock,
    ):
        assert lock.held
    assert "its process is gone" in caplog.text
    assert str(holder.pid) in caplog.text


def test_an_expired_lease_is_taken_over_and_its_stalled_holder_learns_it_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stalled = RunLock(tmp_path, job="j", run_id="stalled", lease_seconds=30, renew=False)
    stalled.acquire()
    with pytest.raises(ConcurrentRunError):
        RunLock(tmp_path, job="j").acquire()
    epoch_file = next(tmp_path.glob("*.lock"))
    long_ago = time.time() - 31  # the holder stopped renewing over a lease ago
    os.utime(epoch_file, (long_ago, long_ago))

    with caplog.at_level(logging.WARNING, "spark_flow.runners.lock"):
        taker = RunLock(tmp_path, job="j", run_id="taker")
        taker.acquire()
    assert "taking the lock over from run stalled" in caplog.text
    assert "lease expired" in caplog.text
    assert stalled.renew() is False
    assert stalled.lost
    taker.release()
    stalled.release()


def test_renewing_moves_the_lease_forward(tmp_path: Path) -> None:
    lock = RunLock(tmp_path, job="j", lease_seconds=30, renew=False)
    lock.acquire()
    epoch_file = next(tmp_path.glob("*.lock"))
    os.utime(epoch_file, (time.time() - 29, time.time() - 29))
    before = lock.holder()
    assert before is not None

    assert lock.renew()
    after = lock.holder()
    assert after is not None
    assert after.lease_until > before.lease_until
    lock.release()


def test_release_frees_the_lock_and_leaves_no_old_epochs(tmp_path: Path) -> None:
    for _ in range(3):
        with RunLock(tmp_path, job="j"):
            pass
    with RunLock(tmp_path, job="j") as lock:
        assert lock.holder() is not None
    assert lock.holder() is None
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "000000000004.lock",
        "000000000004.released",
    ]


def test_a_lock_folder_the_filesystem_refuses_is_a_storage_error_naming_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "state").write_text("a file where the state folder should be")
    folder = tmp_path / "state" / "locks" / "j" / "_job"

    with pytest.raises(StorageError) as caught:
        RunLock(folder, job="j").acquire()

    assert caught.value.path == str(folder)
    assert "could not read the lease in" in str(caught.value)
    assert "Not a directory" in caught.value.cause


def test_of_two_contenders_that_both_found_a_new_lock_free_only_one_claims_it(
    tmp_path: Path,
) -> None:
    # The interleaving of two processes racing for a lock no run ever took (each new date's):
    # both read "no lease", then both claim. Only the first claim may win.
    store = LocalLeases(tmp_path)
    seen_by_first, seen_by_second = store.current(), store.current()
    assert seen_by_first is None
    assert seen_by_second is None
    holder = {"run_id": "first", "host": "h", "pid": 1, "since": "2024-01-01T00:00:00+00:00",
              "lease_seconds": 60}  # fmt: skip

    assert store.claim(holder, over=seen_by_first) == "1"
    assert store.claim({**holder, "run_id": "second"}, over=seen_by_second) is None
    current = store.current()
    assert current is not None
    assert current.run_id == "first"


def test_a_lease_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="lease_seconds"):
        RunLock(tmp_path, job="j", lease_seconds=0)


def test_a_renewal_the_store_fails_is_tried_again_not_taken_for_a_takeover(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder, away = tmp_path / "lock", tmp_path / "away"
    lock = RunLock(folder, job="j", lease_seconds=0.6)  # renewed every 0.2 s
    with caplog.at_level(logging.WARNING, "spark_flow.runners.lock"):
        lock.acquire()
        folder.rename(away)
        folder.write_text("")  # a file where the folder goes: the store fails every request
        deadline = time.monotonic() + 20
        while "could not renew its lock" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "could not renew its lock" in caplog.text
        folder.unlink()
        away.rename(folder)
        restored = time.time()
        epoch_file = next(folder.glob("*.lock"))
        while epoch_file.stat().st_mtime < restored and time.monotonic() < deadline:
            time.sleep(0.05)  # the renewal thread goes on once the store answers again

    assert epoch_file.stat().st_mtime >= restored
    assert not lock.lost
    assert "lost its lock" not in caplog.text
    lock.release()
    assert lock.holder() is None


def test_a_lease_deleted_under_its_holder_is_taken_again_and_still_keeps_others_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "lock"
    holder = RunLock(folder, job="j", run_id="holder", renew=False)
    holder.acquire()
    shutil.rmtree(folder)  # a clean-up of the state folder while the run goes on

    with caplog.at_level(logging.WARNING, "spark_flow.runners.lock"):
        assert holder.renew()
    assert "lease deleted while it ran" in caplog.text
    assert not holder.lost
    with pytest.raises(ConcurrentRunError):
        RunLock(folder, job="j").acquire()
    holder.release()


def test_a_lease_deleted_and_claimed_by_another_run_is_lost_though_its_number_is_the_same(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "lock"
    holder = RunLock(folder, job="j", run_id="holder", renew=False)
    holder.acquire()
    shutil.rmtree(folder)
    other = RunLock(folder, job="j", run_id="other", renew=False)
    other.acquire()  # epoch 1 again, as the holder's was

    assert holder.renew() is False
    assert holder.lost
    other.release()
    holder.release()
