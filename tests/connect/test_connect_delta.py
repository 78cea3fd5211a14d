"""Delta writes from a Spark Connect client: the server plans and commits, the client is told."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from _sessions import time_zone
from pyspark.errors import PySparkException
from pyspark.sql import SparkSession

from spark_flow import delta
from spark_flow.errors import (
    InvalidArgumentError,
    NotADeltaTableError,
    StorageError,
    UnsupportedDeltaFeatureError,
)


def devices(spark: SparkSession, n: int = 10):  # type: ignore[no-untyped-def]
    return spark.range(n).selectExpr("id", "IF(id % 2 = 0, 'phone', 'tablet') AS type")


def test_an_idempotent_write_commits_once_and_its_replay_is_skipped(
    connect_spark: SparkSession, tmp_path: Path
) -> None:
    table = str(tmp_path / "devices")

    first = delta.write(devices(connect_spark), table, app_id="loader", txn_version=1)
    replay = delta.write(devices(connect_spark), table, app_id="loader", txn_version=1)
    second = delta.write(devices(connect_spark, 4), table, app_id="loader", txn_version=2)

    assert (first.committed, first.table_version, first.rows_written) == (True, 0, 10)
    assert first.files
    assert not replay.committed
    assert "already committed" in (replay.skipped_reason or "")
    assert (second.committed, second.table_version, second.rows_written) == (True, 1, 4)
    assert delta.read(connect_spark, table).count() == 14
    assert delta.read(connect_spark, table, version=0).count() == 10
    assert delta.transaction_version(table, "loader") == 2


def test_the_commit_runs_on_the_server_not_in_the_client(
    connect_spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spark_flow.delta import rs

    def no_commit_here(*args: object, **kwargs: object) -> None:
        raise AssertionError("the client committed")

    # This process's delta-rs commit path is broken: only the server's can commit.
    monkeypatch.setattr(rs, "commit_staged", no_commit_here)
    monkeypatch.setattr(rs, "write", no_commit_here)

    result = delta.write(devices(connect_spark), str(tmp_path / "t"), app_id="a", txn_version=1)

    assert result.committed
    assert delta.table_info(str(tmp_path / "t")).version == 0  # type: ignore[union-attr]


def test_overwrite_and_merge_schema_go_through_the_server(
    connect_spark: SparkSession, tmp_path: Path
) -> None:
    table = str(tmp_path / "t")
    delta.write(devices(connect_spark), table)

    delta.write(devices(connect_spark, 3), table, mode="overwrite")
    wider = devices(connect_spark, 2).selectExpr("*", "'x' AS extra")
    merged = delta.write(wider, table, merge_schema=True)

    assert merged.committed
    assert delta.read(connect_spark, table).count() == 5
    assert delta.table_info(table).schema.fieldNames() == ["id", "type", "extra"]  # type: ignore[union-attr]


def test_a_partitioned_write_is_partitioned_on_the_server(
    connect_spark: SparkSession, tmp_path: Path
) -> None:
    table = str(tmp_path / "by_type")

    result = delta.write(devices(connect_spark), table, partition_by=["type"])
    delta.write(
        devices(connect_spark, 4).where("type = 'phone'"),
        table,
        mode="overwrite",
        replace_where={"type": "phone"},
    )

    assert result.committed
    assert delta.table_info(table).partition_columns == ("type",)  # type: ignore[union-attr]
    rows = delta.read(connect_spark, table).groupBy("type").count().collect()
    assert {r["type"]: r["count"] for r in rows} == {"phone": 2, "tablet": 5}


def test_a_zoneless_timestamp_names_the_partition_in_the_clients_session_zone(
    connect_spark: SparkSession, tmp_path: Path
) -> None:
    # The server's data source reads it in the zone delta.write passes, not the server's own.
    table = str(tmp_path / "by_hour")
    events = (
        "SELECT * FROM VALUES (1, TIMESTAMP'2024-01-31 10:00:00+09:00'), "
        "(2, TIMESTAMP'2024-01-31 10:00:00Z') AS t(id, at)"
    )
    delta.write(connect_spark.sql(events), table, partition_by=["at"])

    with time_zone(connect_spark, "Asia/Tokyo"):
        again = connect_spark.sql("SELECT 7 AS id, TIMESTAMP'2024-01-31 10:00:00+09:00' AS at")
        delta.write(again, table, mode="overwrite", replace_where={"at": "2024-01-31 10:00:00"})

    assert sorted(r.id for r in delta.read(connect_spark, table).collect()) == [2, 7]


def test_a_table_the_server_refuses_is_refused_with_our_typed_error(
    connect_spark: SparkSession, tmp_path: Path
) -> None:
    table = tmp_path / "future"
    delta.write(devices(connect_spark), str(table))
    future = ["futureFeature"]
    protocol = {"minReaderVersion": 3, "minWriterVersion": 7,
                "readerFeatures": future, "writerFeatures": future}  # fmt: skip
    (table / "_delta_log" / f"{1:020d}.json").write_text(json.dumps({"protocol": protocol}) + "\n")

    with pytest.raises(UnsupportedDeltaFeatureError, match="futureFeature") as refused:
        delta.read(connect_spark, str(table))
    with pytest.raises(UnsupportedDeltaFeatureError, match="futureFeature"):
        delta.write(devices(connect_spark), str(table))
    with pytest.raises(NotADeltaTableError):
        delta.read(connect_spark, str(tmp_path / "nothing"))
    # A user's own format("delta"): our error, and still what pyspark would have raised.
    with pytest.raises(UnsupportedDeltaFeatureError, match="futureFeature") as through_source:
        connect_spark.read.format("delta").load(str(table)).collect()
    with pytest.raises(NotADeltaTableError) as missing:
        connect_spark.read.format("delta").load(str(tmp_path / "nothing")).collect()

    assert "futureFeature" in refused.value.feature  # the facts, not only the text
    assert through_source.value.feature == refused.value.feature
    assert isinstance(through_source.value, PySparkException)
    assert isinstance(missing.value, PySparkException)


def test_time_travel_by_timestamp_is_resolved_on_the_server(
    connect_spark: SparkSession, tmp_path: Path
) -> None:
    import os
    from datetime import datetime, timezone

    table = str(tmp_path / "t")
    for n in (3, 4):
        delta.write(devices(connect_spark, n), table)
    first = Path(table, "_delta_log", f"{0:020d}.json")
    at = datetime(2024, 1, 31, 10, tzinfo=timezone.utc).timestamp()
    os.utime(first, (at, at))  # version 0 committed on 2024-01-31 10:00 UTC

    # 12:00 in Paris is 11:00 UTC: after version 0, long before version 1.
    assert delta.read(connect_spark, table, timestamp="2024-01-31T12:00:00+01:00").count() == 3
    assert delta.read(connect_spark, table).count() == 7


def test_a_relative_path_is_the_clients_not_the_servers(
    connect_spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server's Python workers run in a session folder of Spark's, deleted with the session:
    # a table written there would be lost, and the client's log reads would never find it.
    monkeypatch.chdir(tmp_path)

    written = delta.write(devices(connect_spark), "devices", app_id="loader", txn_version=1)

    assert written.committed
    assert (tmp_path / "devices" / "_delta_log").is_dir()
    assert delta.transaction_version("devices", "loader") == 1
    assert delta.read(connect_spark, "devices").count() == 10
    assert not delta.write(devices(connect_spark), "devices", app_id="loader",
                           txn_version=1).committed  # fmt: skip


def test_a_store_the_server_cannot_reach_is_the_servers_to_fix(
    connect_spark: SparkSession,
) -> None:
    # The server's Python processes open the table, with the environment the server started
    # with: advice about this client's credentials would send the user the wrong way.
    with pytest.raises(StorageError) as failed:
        delta.write(devices(connect_spark), "gs://spark-flow-no-such-bucket/devices")

    assert failed.value.path == "gs://spark-flow-no-such-bucket/devices"
    assert "Spark Connect server" in failed.value.where
    assert "this process" not in str(failed.value)


def test_format_delta_refuses_a_path_the_server_would_resolve_in_its_session_folder(
    connect_spark: SparkSession, tmp_path: Path
) -> None:
    # Spark hands the data source the path as given; its Python processes run in a folder of
    # the Connect session's own, deleted with it: the table would be lost, silently.
    writer = devices(connect_spark).write.format("delta").mode("append")

    with pytest.raises(PySparkException, match=r"relative.*Spark Connect session"):
        writer.save("devices")
    with pytest.raises(PySparkException, match=r"relative.*Spark Connect session"):
        connect_spark.read.format("delta").load("devices").schema  # noqa: B018

    writer.save(str(tmp_path / "devices"))  # an absolute one is written where it says
    assert delta.table_info(str(tmp_path / "devices")).version == 0  # type: ignore[union-attr]


def test_a_filter_skips_files_on_the_server_too(
    connect_spark: SparkSession, tmp_path: Path
) -> None:
    table = tmp_path / "by_type"
    delta.write(devices(connect_spark), str(table), partition_by=["type"])
    for file in (table / "type=tablet").glob("*.parquet"):
        file.write_bytes(b"not parquet")  # read only if the filter does not skip it

    phones = delta.read(connect_spark, str(table), filter="type = 'phone'")

    assert phones.count() == 5


def test_a_local_table_path_with_a_percent_escape_is_refused_before_anything_is_written(
    connect_spark: SparkSession, tmp_path: Path
) -> None:
    # deltalake decodes %20, Spark and pyarrow do not: such a write committed a version whose
    # files were gone, and every later read failed.
    table = tmp_path / "sales%202024"

    with pytest.raises(InvalidArgumentError, match="%20") as refused:
        delta.write(devices(connect_spark), str(table), app_id="loader", txn_version=1)

    assert refused.value.argument == "path"
    assert not table.exists()


def test_a_column_mapped_table_is_appended_to_on_the_server_under_its_physical_names(
    connect_spark: SparkSession, tmp_path: Path
) -> None:
    from _delta_tables import PHYSICAL, TableBuilder

    table = TableBuilder(tmp_path, [("id", "long"), ("name", "string")], mapping="name")
    table.commit(table.add([{"id": 1, "name": "a"}]))
    table.rename("name", "label")  # a rename only column mapping makes possible
    before = set(tmp_path.glob("*.parquet"))

    df = connect_spark.createDataFrame([(2, "b")], "id long, label string")
    result = delta.write(df, str(tmp_path), app_id="loader", txn_version=1)

    assert result.committed
    rows = delta.read(connect_spark, str(tmp_path)).orderBy("id").collect()
    assert [tuple(r) for r in rows] == [(1, "a"), (2, "b")]
    (new,) = set(tmp_path.glob("*.parquet")) - before
    stored = pq.read_schema(new).names
    assert stored == [table.field(c)["metadata"][PHYSICAL] for c in ("id", "label")]


def test_a_filter_naming_no_column_of_the_table_is_refused_by_the_read_itself(
    connect_spark: SparkSession, tmp_path: Path
) -> None:
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    # As on a classic session, where Spark analyses the filtered read as it is built; Connect
    # only analysed the unfiltered one, and the error came at the first action, far away.
    table = str(tmp_path / "t")
    delta.write(devices(connect_spark), table)

    with pytest.raises(AnalysisException, match="nope"):
        delta.read(connect_spark, table, filter="nope = 1")
    with pytest.raises(AnalysisException, match="nope"):
        delta.read(connect_spark, table, filter=F.col("nope") == 1)
