"""The run-state store: one row per attempt, concurrent appends from processes all kept."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

import pytest

from spark_flow.errors import ConfigError, UnknownValueError
from spark_flow.runners.state import STATE_ENV, RunRecord, RunState, latest_attempt, now
from spark_flow.session import load_profile

DAY = date(2024, 1, 2)


def test_an_attempt_reads_back_as_one_row_with_its_latest_status(tmp_path: Path) -> None:
    state = RunState(tmp_path)
    started = RunRecord("loader", DAY, "r1", 1, "running", now())
    state.record(started)
    assert [r.status for r in state.history("loader")] == ["running"]

    state.record(started.ended("success", report={"rows_written": 7, "table_version": 3}))
    state.record(RunRecord("other_job", DAY, "r2", 1, "failed", now(), now(), "boom"))

    (attempt,) = state.history("loader")
    assert (attempt.run_id, attempt.status, attempt.rows) == ("r1", "success", 7)
    assert attempt.report == {"rows_written": 7, "table_version": 3}
    assert attempt.seconds is not None
    assert attempt.seconds >= 0
    assert attempt.ended_at is not None
    assert attempt.ended_at >= attempt.started_at


def test_the_latest_attempt_follows_the_retries_of_a_date(tmp_path: Path) -> None:
    state = RunState(tmp_path)
    state.record(RunRecord("j", DAY, "r1", 1, "failed", now(), now(), "boom"))
    state.record(RunRecord("j", DAY, "r2", 2, "success", now(), now()))
    state.record(RunRecord("j", date(2024, 1, 3), "r3", 1, "failed", now(), now(), "x"))

    latest = state.latest("j", DAY)
    assert latest is not None
    assert (latest.attempt, latest.status) == (2, "success")
    assert latest_attempt(state.history("j"), DAY) == latest
    assert state.latest("j", date(2024, 1, 1)) is None
    assert [r.run_id for r in state.history("j")] == ["r3", "r2", "r1"]  # newest first


def test_an_empty_store_has_no_history(tmp_path: Path) -> None:
    assert RunState(tmp_path / "nothing").history("j") == []


APPENDER = """
import sys
from datetime import date
from spark_flow.runners.state import RunRecord, RunState, now
state, who = RunState(sys.argv[1]), sys.argv[2]
for n in range(8):
    state.record(RunRecord("j", date(2024, 1, 1 + n), f"{who}-{n}", 1, "success", now(), now()))
"""


def test_processes_appending_at_once_never_lose_each_others_rows(tmp_path: Path) -> None:
    writers = [
        subprocess.Popen([sys.executable, "-c", APPENDER, str(tmp_path), who])
        for who in ("a", "b", "c")
    ]
    assert [w.wait(timeout=120) for w in writers] == [0, 0, 0]

    run_ids = {r.run_id for r in RunState(tmp_path).history("j")}
    assert run_ids == {f"{who}-{n}" for who in "abc" for n in range(8)}


def test_the_location_comes_from_the_environment_then_the_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(STATE_ENV, raising=False)
    profiled = Path(load_profile("local").state_location).absolute()
    assert RunState.from_profile("local").location == str(profiled)

    monkeypatch.setenv(STATE_ENV, str(tmp_path))
    assert RunState.from_profile("local").location == str(tmp_path)


def test_a_profile_rejects_unknown_state_keys(tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text('[state]\nlocation = "x"\npath = "y"\n')

    with pytest.raises(ConfigError, match=r"state\.path"):
        load_profile(str(profile))
    profile.write_text('[state]\nlocation = "somewhere"\n')
    assert load_profile(str(profile)).state_location == "somewhere"


@pytest.mark.parametrize("word", ["done", "skipped", "already_done", "cancelled"])
def test_a_status_outside_the_run_records_words_is_refused(word: str) -> None:
    # A refusal is `not_run`; a date done before and a cancelled run are never recorded as such.
    with pytest.raises(UnknownValueError) as caught:
        RunRecord("j", DAY, "r", 1, word, now())  # type: ignore[arg-type]

    assert caught.value.value_received == word
    assert caught.value.valid_values == ("running", "success", "failed", "not_run")


def test_threads_creating_a_store_at_once_create_it_once_and_keep_every_row(
    tmp_path: Path,
) -> None:
    # A race, so run it on several fresh stores: before creation was made exclusive, about
    # one in seven had a second metadata commit and lost an append to "Metadata changed".
    for trial in range(8):
        state = RunState(tmp_path / str(trial))
        errors: list[BaseException] = []

        def record(who: int, state: RunState = state, errors: list[BaseException] = errors) -> None:
            try:
                for n in range(2):
                    state.record(RunRecord("j", DAY, f"{who}-{n}", 1, "success", now(), now()))
            except BaseException as exc:  # noqa: BLE001 - asserted below
                errors.append(exc)

        threads = [threading.Thread(target=record, args=(who,)) for who in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert errors == []
        assert len(state.history("j")) == 8
        log = sorted((Path(state.table) / "_delta_log").glob("*.json"))
        assert [commit.name for commit in log if "metaData" in commit.read_text()] == [log[0].name]
