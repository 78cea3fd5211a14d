"""Readiness markers: written after the data, atomic, per logical date, waited for."""

from __future__ import annotations

import json
import threading
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest
from deltalake import write_deltalake

from spark_flow.errors import InputNotReadyError, InvalidArgumentError
from spark_flow.markers import mark_ready, marker_path, wait_until_ready


@pytest.fixture
def table(tmp_path: Path) -> str:
    path = str(tmp_path / "devices")
    write_deltalake(path, pd.DataFrame({"id": [1, 2]}))
    write_deltalake(path, pd.DataFrame({"id": [3]}), mode="append")
    return path


def test_a_marker_records_run_date_rows_time_and_the_table_version(table: str) -> None:
    marker = mark_ready(table, run_id="r1", logical_date="2024-01-01", row_count=3, batch=7)

    stored = json.loads(Path(marker_path(table, "2024-01-01")).read_text())
    assert stored["run_id"] == "r1"
    assert stored["logical_date"] == "2024-01-01"
    assert stored["row_count"] == 3
    assert stored["table_version"] == 1  # the version committed before marking
    assert stored["created_at"].endswith("+00:00")
    assert stored["metadata"]["batch"] == 7
    assert Path(marker_path(table)).is_file()  # latest.json too
    assert marker.table_version == 1


def test_the_marker_is_written_whole_by_a_rename(table: str) -> None:
    mark_ready(table, run_id="r1")

    folder = Path(marker_path(table)).parent
    assert [p.name for p in folder.iterdir()] == ["latest.json"]  # no temporary file left over
    json.loads((folder / "latest.json").read_text())


def test_marking_the_same_run_twice_keeps_the_first_marker(table: str) -> None:
    first = mark_ready(table, run_id="r1", table_version=0)
    second = mark_ready(table, run_id="r1", table_version=1)

    assert second == first
    assert json.loads(Path(marker_path(table)).read_text())["table_version"] == 0


def test_nothing_to_mark_without_committed_data(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="no committed data to mark ready"):
        mark_ready(str(tmp_path / "missing"), run_id="r1")


def test_waiting_returns_an_existing_marker_at_once(table: str) -> None:
    mark_ready(table, run_id="r1", logical_date="2024-01-01")

    marker = wait_until_ready(table, timeout=0, logical_date="2024-01-01")

    assert marker.run_id == "r1"


def test_a_marker_for_another_date_does_not_count(table: str) -> None:
    mark_ready(table, run_id="r1", logical_date="2024-01-01")

    with pytest.raises(InputNotReadyError) as caught:
        wait_until_ready(table, timeout=0.05, poke_interval=0.01, logical_date="2024-01-02")

    assert caught.value.logical_date == "2024-01-02"
    assert caught.value.marker.endswith("_spark_flow_ready/2024-01-02.json")
    assert caught.value.waited >= 0.05
    assert "for logical date 2024-01-02" in str(caught.value)


def test_a_marker_that_appears_while_waiting_is_returned(table: str) -> None:
    writer = threading.Timer(0.05, lambda: mark_ready(table, run_id="late"))
    writer.start()
    try:
        marker = wait_until_ready(table, timeout=30, poke_interval=0.01)
    finally:
        writer.join()

    assert marker.run_id == "late"


def test_bad_wait_arguments_are_refused(table: str) -> None:
    with pytest.raises(InvalidArgumentError, match="poke_interval > 0"):
        wait_until_ready(table, timeout=1, poke_interval=0)


def test_a_file_uri_output_is_marked_and_waited_for_like_its_path(table: str) -> None:
    uri = Path(table).as_uri()

    mark_ready(uri, run_id="r1", logical_date="2024-01-01")

    assert marker_path(uri, "2024-01-01") == marker_path(table, "2024-01-01")
    assert json.loads(Path(marker_path(table)).read_text())["table_version"] == 1
    assert wait_until_ready(table, timeout=0, logical_date="2024-01-01").output == table


def test_a_consumer_reads_the_table_where_it_found_the_marker(
    table: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The producer names its output relative to its own working folder; the consumer, in
    # another one, knows the table by its own path: that is the table it must read.
    monkeypatch.chdir(Path(table).parent)
    mark_ready(Path(table).name, run_id="r1")
    monkeypatch.chdir(tmp_path.parent)

    assert wait_until_ready(table, timeout=0).output == table


def test_marker_paths_of_object_store_outputs_are_uris() -> None:
    # No store is contacted to name a marker, and no Delta backend is involved.
    assert marker_path("s3://bucket/devices/", "2024-01-01") == (
        "s3://bucket/devices/_spark_flow_ready/2024-01-01.json"
    )
    assert marker_path("gs://bucket/devices") == "gs://bucket/devices/_spark_flow_ready/latest.json"


def test_a_file_where_the_output_folder_goes_is_named(tmp_path: Path) -> None:
    (tmp_path / "devices").write_text("not a folder")

    with pytest.raises(InvalidArgumentError, match="is a file, not a folder"):
        mark_ready(str(tmp_path / "devices"), run_id="r1")


def test_a_runs_logical_date_as_a_date_marks_and_finds_the_same_marker(table: str) -> None:
    # The runners hand a task `run.logical_date`, a date (Airflow's logical date is a datetime):
    # the Isolated Sequencer's producer marks with it and the consumer waits with `ds`.
    marker = mark_ready(table, run_id="r1", logical_date=date(2024, 1, 1))

    found = wait_until_ready(table, timeout=0, logical_date="2024-01-01")
    also = wait_until_ready(table, timeout=0, logical_date=datetime(2024, 1, 1, 6))

    assert marker.logical_date == found.logical_date == also.logical_date == "2024-01-01"
    assert json.loads(Path(marker_path(table, date(2024, 1, 1))).read_text())["run_id"] == "r1"


def test_a_logical_date_of_another_type_is_refused_by_name(table: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        mark_ready(table, run_id="r1", logical_date=20240101)  # type: ignore[arg-type]

    assert caught.value.argument == "logical_date"
