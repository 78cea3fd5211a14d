"""Record tables (the run history's storage): local or mounted paths, any path form.

On object stores: tests/s3/test_s3_state.py, against a real S3 server.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from spark_flow.delta.records import append_records, read_records

SCHEMA = pa.schema([("run_id", pa.string()), ("status", pa.string())])


def test_records_appended_through_a_file_uri_read_back_through_the_path(tmp_path: Path) -> None:
    uri = (tmp_path / "runs").as_uri()

    assert read_records(uri) == []
    assert append_records(uri, [{"run_id": "r1", "status": "running"}], SCHEMA) == 1
    append_records(uri, [{"run_id": "r1", "status": "success"}], SCHEMA)

    assert sorted(r["status"] for r in read_records(str(tmp_path / "runs"))) == [
        "running",
        "success",
    ]


def test_records_appended_through_a_file_uri_with_a_hash_land_in_the_folder_it_names(
    tmp_path: Path,
) -> None:
    append_records(f"file:{tmp_path}/runs#2", [{"run_id": "r1", "status": "success"}], SCHEMA)

    assert [r["run_id"] for r in read_records(str(tmp_path / "runs#2"))] == ["r1"]
    assert not (tmp_path / "runs").exists()
