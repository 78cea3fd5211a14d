"""Record tables (the run history's storage): local or mounted paths, any path form."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from spark_flow.delta.records import append_records, read_records
from spark_flow.errors import InvalidArgumentError

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


def test_record_tables_on_object_stores_are_refused_as_a_storage_fact() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        append_records("s3://bucket/runs", [], SCHEMA)

    assert "created with a folder rename" in caught.value.problem
    assert "local or mounted path" in caught.value.fix
    assert "delta-rs" not in str(caught.value)  # not a Delta backend's limit
