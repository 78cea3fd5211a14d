"""A log on an object store is checked like a local one, the same errors (moto S3 on 127.0.0.1)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from spark_flow import storage
from spark_flow.delta import _log
from spark_flow.errors import InvalidDeltaLogError


@pytest.fixture
def table(s3_bucket: str) -> str:
    path = f"{s3_bucket}/devices"
    for day in ("d0", "d1", "d2"):
        frame = pd.DataFrame({"id": [1], "day": [day]})
        write_deltalake(path, frame, mode="append", partition_by=["day"])
    return path


def delete(path: str, key: str) -> None:
    bucket = path.removeprefix("s3://").split("/")[0]
    boto3.client("s3").delete_object(Bucket=bucket, Key=key)


def test_a_healthy_table_on_a_store_is_readable(table: str) -> None:
    assert len(_log.readable_table(table).file_uris()) == 3
    assert len(_log.readable_table(f"s3a{table[2:]}", 1).file_uris()) == 2


def test_a_data_file_missing_from_the_store_is_named(table: str) -> None:
    gone = DeltaTable(table).file_uris()[0]
    delete(table, gone.removeprefix("s3://").split("/", 1)[1])

    with pytest.raises(InvalidDeltaLogError) as caught:
        _log.readable_table(table)

    assert caught.value.version == 2
    assert gone.rsplit("/", 2)[-2] in caught.value.defect  # its partition folder, e.g. day=d0


def test_a_commit_missing_from_the_store_is_named(table: str) -> None:
    delete(table, "devices/_delta_log/00000000000000000001.json")

    with pytest.raises(InvalidDeltaLogError) as caught:
        _log.readable_table(table)

    assert caught.value.version == 1


@pytest.mark.parametrize("where", ["local", "s3"])
def test_list_files_lists_a_folder_or_all_below_it(
    where: str, s3_bucket: str, tmp_path: Path
) -> None:
    root = str(tmp_path) if where == "local" else f"{s3_bucket}/folder"
    for name in ("a.json", "sub/b.parquet", "sub/deeper/c.parquet"):
        storage.write_text_atomically(storage.join(root, *name.split("/")), "x")

    assert storage.list_files(root) == ["a.json"]
    assert storage.list_files(root, recursive=True) == [
        "a.json", "sub/b.parquet", "sub/deeper/c.parquet"
    ]  # fmt: skip
    assert storage.list_files(storage.join(root, "nothing")) == []


def test_a_remove_spelling_the_file_by_its_absolute_uri_removes_it(table: str) -> None:
    # Several commits after the last checkpoint: read from the store at once, in order.
    logged = [str(p) for p in pa.table(DeltaTable(table).get_add_actions()).column("path")]
    gone = logged[0]
    remove = {"path": f"s3a{table[2:]}/{gone}", "deletionTimestamp": 1, "dataChange": True}
    bucket, prefix = table.removeprefix("s3://").split("/", 1)
    key = f"{prefix}/_delta_log/00000000000000000003.json"
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps({"remove": remove}))

    _, actions = _log.readable_files(table)

    assert sorted(a["path"] for a in actions) == sorted(logged[1:])
