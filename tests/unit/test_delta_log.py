"""What `spark_flow.delta` reads from a table's log alone: no Spark session, any path form."""

from __future__ import annotations

import pickle
from pathlib import Path

import pandas as pd
import pytest
from deltalake import write_deltalake
from deltalake.transaction import CommitProperties, Transaction

from spark_flow import delta
from spark_flow.delta import TableInfo
from spark_flow.errors import InvalidArgumentError, NotADeltaTableError, StorageError


def commit(path: str, app_id: str, txn_version: int, **kwargs: object) -> None:
    """One deltalake commit carrying `(app_id, txn_version)`, as a spark_flow writer leaves."""
    write_deltalake(
        path,
        pd.DataFrame({"id": [1, 2], "day": ["2024-01-01", "2024-01-02"]}),
        mode="append",
        commit_properties=CommitProperties(app_transactions=[Transaction(app_id, txn_version)]),
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def table(tmp_path: Path) -> str:
    path = str(tmp_path / "devices")
    commit(path, "loader", 3, partition_by=["day"])
    commit(path, "loader", 5)
    return path


def test_table_info_reads_version_schema_and_partitioning(table: str) -> None:
    info = delta.table_info(table)

    assert info is not None
    assert (info.path, info.version, info.partition_columns) == (table, 1, ("day",))
    assert [(f.name, f.dataType.simpleString()) for f in info.schema.fields] == [
        ("id", "bigint"),
        ("day", "string"),
    ]
    assert info.reader_features == ()


@pytest.mark.parametrize("form", ["path", "file_uri"])
def test_a_file_uri_reads_the_same_log_as_its_path(table: str, form: str) -> None:
    path = table if form == "path" else Path(table).as_uri()

    assert delta.table_info(path).version == 1  # type: ignore[union-attr]
    assert delta.transaction_version(path, "loader") == 5
    assert delta.already_committed(path, app_id="loader", txn_version=4) is not None


def test_where_no_table_exists_there_is_no_info_and_nothing_committed(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "part-0.json").write_text("{}")

    for path in (str(tmp_path / "missing"), str(tmp_path / "plain")):
        assert delta.table_info(path) is None
        assert delta.already_committed(path, app_id="loader", txn_version=1) is None
        with pytest.raises(NotADeltaTableError):
            delta.transaction_version(path, "loader")


@pytest.mark.parametrize(
    ("app_id", "txn_version", "committed"),
    [("loader", 4, True), ("loader", 5, True), ("loader", 6, False), ("other", 1, False)],
)
def test_already_committed_says_why_for_this_txn_version_or_an_older_one(
    table: str, app_id: str, txn_version: int, committed: bool
) -> None:
    reason = delta.already_committed(table, app_id=app_id, txn_version=txn_version)

    assert (reason is not None) is committed
    if committed:
        assert reason == f"txnAppId='loader' already committed txnVersion=5 >= {txn_version}"


def test_already_committed_validates_its_txn_like_a_write(table: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        delta.already_committed(table, app_id="loader", txn_version=-1)

    assert caught.value.argument == "txn_version"


def test_a_file_where_the_table_goes_is_named(tmp_path: Path) -> None:
    (tmp_path / "devices").write_text("not a table")

    with pytest.raises(InvalidArgumentError, match="is a file, not a folder"):
        delta.table_info(str(tmp_path / "devices"))


def test_a_log_this_process_cannot_reach_is_a_storage_error_naming_the_path() -> None:
    # An unknown scheme fails in deltalake before any network access.
    with pytest.raises(StorageError) as caught:
        delta.table_info("nosuchstore://bucket/devices")

    assert caught.value.path == "nosuchstore://bucket/devices"
    assert "nosuchstore" in caught.value.cause
    assert "credentials" in str(caught.value)
    assert pickle.loads(pickle.dumps(caught.value)).__dict__ == caught.value.__dict__


def test_table_info_refuses_a_negative_version() -> None:
    with pytest.raises(InvalidArgumentError, match="integer >= 0"):
        TableInfo(path="t", version=-1, schema=None)  # type: ignore[arg-type]
