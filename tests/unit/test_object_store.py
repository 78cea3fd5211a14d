"""Markers and Delta log reads on an object store: a real S3 API (moto) on 127.0.0.1.

No Spark and no Delta backend here: these are the paths that must work on an object store
whichever backend the session uses (the delta-rs backend refuses only to *commit* there).
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from deltalake import write_deltalake
from deltalake.transaction import CommitProperties, Transaction

from spark_flow import delta, storage
from spark_flow.errors import InputNotReadyError, InvalidArgumentError
from spark_flow.local_s3 import LocalS3
from spark_flow.markers import mark_ready, marker_path, wait_until_ready
from spark_flow.outputs import DeltaOutput

BUCKET = "spark-flow"


@pytest.fixture(scope="module")
def bucket(s3_server: LocalS3) -> Iterator[str]:
    """`s3://spark-flow` on the test run's S3 server, with the environment pointing at it."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in s3_server.environment().items():
            env.setenv(name, value)
        yield s3_server.create_bucket(BUCKET)


@pytest.fixture(scope="module")
def table(bucket: str) -> str:
    """A Delta table on the store with two commits, the second by app `loader`, txn 5."""
    path = f"{bucket}/devices"
    write_deltalake(path, pd.DataFrame({"id": [1, 2]}))
    write_deltalake(
        path,
        pd.DataFrame({"id": [3]}),
        mode="append",
        commit_properties=CommitProperties(app_transactions=[Transaction("loader", 5)]),
    )
    return path


def test_the_log_of_a_table_on_an_object_store_is_read_without_spark(table: str) -> None:
    info = delta.table_info(table)

    assert info is not None
    assert (info.version, info.schema.fieldNames()) == (1, ["id"])
    assert delta.transaction_version(table, "loader") == 5
    assert delta.already_committed(table, app_id="loader", txn_version=5) is not None
    assert delta.already_committed(table, app_id="loader", txn_version=6) is None
    assert delta.table_info(f"{table}-missing") is None


def test_hadoop_s3a_uris_reach_the_same_objects(table: str) -> None:
    s3a = table.replace("s3://", "s3a://")

    assert delta.table_info(s3a).version == 1  # type: ignore[union-attr]
    storage.write_text_atomically(f"{s3a}/_probe.txt", "hello")
    assert storage.read_text(f"{table}/_probe.txt") == "hello"


def test_a_delta_output_on_an_object_store_knows_a_replayed_batch(table: str) -> None:
    # What a Parallel Split asks before reading its input, whichever backend writes.
    reason = DeltaOutput().written(table, app_id="loader", txn_version=4)

    assert reason == "txnAppId='loader' already committed txnVersion=5 >= 4"


def test_an_output_on_an_object_store_is_marked_and_waited_for(table: str) -> None:
    marker = mark_ready(table, run_id="r1", logical_date="2024-01-01", row_count=3)

    assert marker.table_version == 1
    assert marker_path(table, "2024-01-01") == f"{table}/_spark_flow_ready/2024-01-01.json"
    assert storage.exists(marker_path(table))  # latest.json too
    assert wait_until_ready(table, timeout=0, logical_date="2024-01-01") == marker
    assert mark_ready(table, run_id="r1", logical_date="2024-01-01", row_count=9) == marker
    with pytest.raises(InputNotReadyError) as caught:
        wait_until_ready(table, timeout=0, logical_date="2024-01-02")
    assert caught.value.marker == f"{table}/_spark_flow_ready/2024-01-02.json"


def test_nothing_on_the_store_is_nothing_to_mark(bucket: str) -> None:
    with pytest.raises(InvalidArgumentError, match="no committed data to mark ready"):
        mark_ready(f"{bucket}/never-written", run_id="r1")
