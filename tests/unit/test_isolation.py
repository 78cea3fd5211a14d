"""How a backfill's runs are kept apart, picked by `--isolation`, without a JVM."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pytest
from _probe import FakeSession

from spark_flow.errors import ConfigError, UnknownValueError
from spark_flow.isolation import (
    _ISOLATIONS,
    ISOLATION_MODES,
    ProcessIsolation,
    ThreadIsolation,
    isolation,
)
from spark_flow.jobs import LazySession
from spark_flow.runners import RunContext
from spark_flow.submit import spark_home

DAY = date(2024, 1, 2)


def no_session() -> FakeSession:
    raise AssertionError("the isolation started a session before any run")


def test_every_isolation_mode_has_its_class() -> None:
    assert set(_ISOLATIONS) == set(ISOLATION_MODES) == {"thread", "process"}


@pytest.mark.parametrize(
    ("mode", "kind"), [("thread", ThreadIsolation), ("process", ProcessIsolation)]
)
def test_the_flag_value_picks_the_isolation_without_starting_spark(
    mode: str, kind: type[object]
) -> None:
    chosen = isolation(mode, "devices_loader", ["--input", "x"], session=no_session)  # type: ignore[arg-type]

    assert isinstance(chosen, kind)


def test_an_unknown_isolation_lists_the_known_ones() -> None:
    with pytest.raises(UnknownValueError) as caught:
        isolation("fork", "devices_loader", [], session=no_session)  # type: ignore[arg-type]

    assert caught.value.valid_values == ISOLATION_MODES


def test_a_thread_run_starts_the_shared_session_once_and_tags_its_spark_jobs(
    probe: str, fake_spark: list[FakeSession]
) -> None:
    session = LazySession("backfill")
    task = isolation("thread", probe, ["--date", "{ds}"], session=session)
    task.check([DAY, date(2024, 1, 3)])
    assert fake_spark == []  # checking arguments needs no Spark

    reports = [
        task(RunContext(job=probe, logical_date=day, run_id=f"r{day.day}", attempt=1))
        for day in (DAY, date(2024, 1, 3))
    ]
    session.stop()

    assert reports == [{"rows_written": 3}] * 2
    (shared,) = fake_spark
    assert shared.stopped == 1
    assert shared.tags == []  # every run removed the tags it added


def test_a_thread_run_is_given_its_own_arguments_not_those_after_double_dash(
    probe: str,
) -> None:
    task = ThreadIsolation(probe, ["--date", "{ds}", "--", "--fail", "ours"], FakeSession())  # type: ignore[arg-type]

    assert task(RunContext(job=probe, logical_date=DAY, run_id="r1", attempt=1)) == {
        "rows_written": 3
    }


def test_a_process_run_submits_with_the_installed_spark_and_this_python(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A shell without the virtualenv: the first python3 on PATH would have no pyspark.
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.delenv("SPARK_HOME", raising=False)
    monkeypatch.setenv("PYSPARK_PYTHON", "/usr/bin/python3")

    task = ProcessIsolation("devices_loader", ["--input", "x"])

    assert task.environment["SPARK_HOME"] == str(spark_home())
    assert task.environment["PYSPARK_PYTHON"] == sys.executable
    assert task.environment["PYSPARK_DRIVER_PYTHON"] == sys.executable


def test_a_process_backfill_without_a_spark_to_submit_with_is_refused_before_any_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SPARK_HOME", str(tmp_path))  # no bin/spark-submit there

    with pytest.raises(ConfigError, match="SPARK_HOME"):
        isolation("process", "devices_loader", ["--input", "x"], session=no_session)  # type: ignore[arg-type]


@pytest.mark.parametrize(("master", "ships"), [("spark://h:7077", True), ("local[2]", False)])
def test_a_process_run_goes_to_the_profile_s_master_with_spark_flow_for_a_cluster(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, master: str, ships: bool
) -> None:
    """Before, every process run went to spark-submit's local[*] whatever the profile said,
    and one bound for a cluster would have left spark_flow behind."""
    profile = tmp_path / "prod.toml"
    profile.write_text(f'master = "{master}"\n')
    monkeypatch.setenv("SPARK_FLOW_PROFILE", str(profile))
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))  # no spark-defaults.conf naming one
    monkeypatch.delenv("MASTER", raising=False)

    task = ProcessIsolation("devices_loader", ["--batch-id", "{ds_nodash}"])  # holds the zip
    command = task.command(DAY)

    assert command[command.index("--master") + 1] == master
    assert command[-2:] == ["--batch-id", "20240102"]
    shipped = [command[i + 1] for i, v in enumerate(command) if v == "--py-files"]
    assert bool(shipped) is ships
    assert all(Path(zip_file).is_file() for zip_file in shipped)
